package ipvsadm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Usage is the help text of `director status`.
const Usage = `Usage:
  director status [-L|-l] [-n] [virtual-service] [options]
  director status -L|-l -c [--persistent-conn]
  director status -L|-l --timeout | --daemon
  director status -S [-n]

Prints the kernel's IPVS table exactly as ipvsadm 1.31 does, read straight
from the kernel (no daemon needed). Addresses and ports are always numeric,
as with ipvsadm -n; -n is accepted and changes nothing.

virtual-service:
  --tcp-service|-t  address:port
  --udp-service|-u  address:port
  --sctp-service    address:port
  --fwmark-service|-f fwmark        add -6 for an IPv6 fwmark service

Options:
  --list         -L|-l   list the table (the default)
  --save         -S      print the table as ipvsadm-restore rules
  --numeric      -n      numeric output (always on)
  --connection   -c      list connections from /proc/net/ip_vs_conn
  --timeout              print the tcp, tcpfin and udp timeouts
  --daemon               print the connection sync daemons
  --stats                packet and byte counters
  --rate                 rates
  --exact        -X      exact numbers, no K/M/G/T scaling
  --thresholds           upper and lower connection thresholds
  --persistent-conn      persistent connection counts (with -c: pe data)
  --tun-info             tunnel type, port and checksum flags
  --nosort               kernel order instead of ipvsadm's sort
  --sort                 no-op, as in ipvsadm
  --ipv6         -6      the -f fwmark service is IPv6
  --json                 print JSON instead (schema in package doc)
  --snapshot             print the raw state as JSON (with -c: and the raw
                         connection table), for tests and bug reports
  --help         -h      this help
`

// Option indexes follow ipvsadm's optnames so conflicts read the same.
const (
	optNumeric        = 0
	optConnection     = 1
	optService        = 2
	optTimeout        = 12
	optDaemon         = 13
	optStats          = 14
	optRate           = 15
	optThresholds     = 16
	optPersistentConn = 17
	optNoSort         = 18
	optExact          = 20
	optTunInfo        = 28
	optJSON           = 40
	optSnapshot       = 41
)

var optNames = map[int]string{
	optNumeric: "numeric", optConnection: "connection", optService: "service-address",
	optTimeout: "timeout", optDaemon: "daemon", optStats: "stats", optRate: "rate",
	optThresholds: "thresholds", optPersistentConn: "persistent-conn", optNoSort: "nosort",
	optExact: "exact", optTunInfo: "tun-info", optJSON: "json", optSnapshot: "snapshot",
}

type command int

const (
	cmdNone command = iota
	cmdList
	cmdSave
	cmdHelp
)

type flagSpec struct {
	long  string
	short byte
	arg   bool
	// apply records the option; a non-nil error is a usage error.
	apply func(o *cliOptions, arg string) error
}

type cliOptions struct {
	cmd     command
	set     uint64
	format  Format
	sel     *selector
	ipv6    bool
	jsonOut bool
}

// selector is the -t/-u/--sctp-service/-f choice of one service.
type selector struct {
	fam    Family
	proto  Protocol
	addr   netip.Addr
	port   uint16
	fwmark uint32
}

func (s *selector) matches(svc *Service) bool {
	if s.fwmark != 0 {
		return svc.FWMark == s.fwmark && svc.Family == s.fam
	}
	return svc.FWMark == 0 && svc.Family == s.fam && svc.Protocol == s.proto &&
		svc.Port == s.port && familyAddr(s.fam, svc.Address) == familyAddr(s.fam, s.addr)
}

// usageError is a bad command line: exit status 2, like ipvsadm's fail(2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

func (o *cliOptions) setCommand(c command) error {
	if o.cmd != cmdNone && o.cmd != c {
		return usagef("multiple commands specified")
	}
	o.cmd = c
	return nil
}

func (o *cliOptions) setOption(id int) error {
	if o.set&(1<<id) != 0 {
		return usagef("multiple '%s' options specified", optNames[id])
	}
	o.set |= 1 << id
	return nil
}

func flagOpt(id int, apply func(o *cliOptions)) func(*cliOptions, string) error {
	return func(o *cliOptions, _ string) error {
		if err := o.setOption(id); err != nil {
			return err
		}
		if apply != nil {
			apply(o)
		}
		return nil
	}
}

func serviceOpt(proto Protocol) func(*cliOptions, string) error {
	return func(o *cliOptions, arg string) error {
		if err := o.setOption(optService); err != nil {
			return err
		}
		sel, ok := parseService(arg, proto)
		if !ok {
			return usagef("illegal virtual server address[:port] specified")
		}
		o.sel = sel
		return nil
	}
}

func commandOpt(c command) func(*cliOptions, string) error {
	return func(o *cliOptions, _ string) error { return o.setCommand(c) }
}

var flagSpecs = []flagSpec{
	{"list", 'L', false, commandOpt(cmdList)},
	{"", 'l', false, commandOpt(cmdList)},
	{"save", 'S', false, commandOpt(cmdSave)},
	{"help", 'h', false, commandOpt(cmdHelp)},
	{"numeric", 'n', false, flagOpt(optNumeric, nil)},
	{"connection", 'c', false, flagOpt(optConnection, nil)},
	{"tcp-service", 't', true, serviceOpt(TCP)},
	{"udp-service", 'u', true, serviceOpt(UDP)},
	{"sctp-service", 0, true, serviceOpt(SCTP)},
	{"fwmark-service", 'f', true, func(o *cliOptions, arg string) error {
		if err := o.setOption(optService); err != nil {
			return err
		}
		mark, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || mark <= 0 || mark > 1<<32-1 {
			return usagef("invalid fwmark value `%s' specified", arg)
		}
		o.sel = &selector{fam: INet, fwmark: uint32(mark)}
		return nil
	}},
	{"ipv6", '6', false, func(o *cliOptions, _ string) error {
		if o.sel == nil || o.sel.fwmark == 0 {
			return usagef("-6 used before -f")
		}
		o.sel.fam = INet6
		return nil
	}},
	{"timeout", 0, false, flagOpt(optTimeout, nil)},
	{"daemon", 0, false, flagOpt(optDaemon, nil)},
	{"stats", 0, false, flagOpt(optStats, func(o *cliOptions) { o.format.Stats = true })},
	{"rate", 0, false, flagOpt(optRate, func(o *cliOptions) { o.format.Rate = true })},
	{"thresholds", 0, false, flagOpt(optThresholds, func(o *cliOptions) { o.format.Thresholds = true })},
	{"persistent-conn", 0, false, flagOpt(optPersistentConn, func(o *cliOptions) { o.format.PersistentConn = true })},
	{"nosort", 0, false, flagOpt(optNoSort, func(o *cliOptions) { o.format.NoSort = true })},
	{"sort", 0, false, func(*cliOptions, string) error { return nil }},
	{"exact", 'X', false, flagOpt(optExact, func(o *cliOptions) { o.format.Exact = true })},
	{"tun-info", 0, false, flagOpt(optTunInfo, func(o *cliOptions) { o.format.TunInfo = true })},
	{"json", 0, false, flagOpt(optJSON, func(o *cliOptions) { o.jsonOut = true })},
	{"snapshot", 0, false, flagOpt(optSnapshot, nil)},
}

// ipvsadm's commands that change state; named so the error is clear.
var changingOpts = map[string]bool{
	"A": true, "E": true, "D": true, "C": true, "R": true, "Z": true, "a": true, "e": true, "d": true,
	"add-service": true, "edit-service": true, "delete-service": true, "clear": true,
	"restore": true, "zero": true, "add-server": true, "edit-server": true, "delete-server": true,
	"set": true, "start-daemon": true, "stop-daemon": true,
}

func findLong(name string) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].long == name {
			return &flagSpecs[i]
		}
	}
	return nil
}

func findShort(c byte) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].short == c {
			return &flagSpecs[i]
		}
	}
	return nil
}

// parseArgs reads popt-style options: clustered short options (-Ln),
// -tADDR or -t ADDR, --opt=value or --opt value.
func parseArgs(args []string) (*cliOptions, error) {
	o := &cliOptions{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func(name string) (string, error) {
			if i+1 >= len(args) {
				return "", usagef("%s: missing argument", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec := findLong(name)
			if spec == nil {
				if changingOpts[name] {
					return nil, usagef("--%s changes IPVS; director status only reads it", name)
				}
				return nil, usagef("%s: unknown option", a)
			}
			if spec.arg && !hasVal {
				v, err := next(a)
				if err != nil {
					return nil, err
				}
				val = v
			} else if !spec.arg && hasVal {
				return nil, usagef("%s: option does not take an argument", a)
			}
			if err := spec.apply(o, val); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1 && a != "--":
			for j := 1; j < len(a); j++ {
				spec := findShort(a[j])
				if spec == nil {
					if changingOpts[a[j:j+1]] {
						return nil, usagef("-%c changes IPVS; director status only reads it", a[j])
					}
					return nil, usagef("-%c: unknown option", a[j])
				}
				var val string
				if spec.arg {
					if j+1 < len(a) {
						val = a[j+1:]
					} else {
						v, err := next("-" + string(a[j]))
						if err != nil {
							return nil, err
						}
						val = v
					}
					j = len(a)
				}
				if err := spec.apply(o, val); err != nil {
					return nil, err
				}
			}
		default:
			return nil, usagef("unexpected argument %s", a)
		}
	}
	if o.cmd == cmdNone {
		o.cmd = cmdList
	}
	return o, o.check()
}

// check applies ipvsadm's rules for which options go together.
func (o *cliOptions) check() error {
	switch o.cmd {
	case cmdSave:
		for id := 0; id < 64; id++ {
			if o.set&(1<<id) != 0 && id != optNumeric {
				return usagef("Illegal '%s' option with the 'save' command", optNames[id])
			}
		}
	case cmdList:
		exclusive := []int{optConnection, optService, optTimeout, optDaemon}
		first := -1
		for _, id := range exclusive {
			if o.set&(1<<id) == 0 {
				continue
			}
			if first >= 0 {
				return usagef("The option '%s' conflicts with the '%s' option in the 'list' command",
					optNames[id], optNames[first])
			}
			first = id
		}
		has := func(ids ...int) bool {
			for _, id := range ids {
				if o.set&(1<<id) != 0 {
					return true
				}
			}
			return false
		}
		if (has(optConnection, optTimeout, optDaemon) && has(optStats, optRate, optThresholds)) ||
			(has(optTimeout, optDaemon) && has(optPersistentConn)) {
			return usagef("options conflicts in the list command")
		}
		if has(optSnapshot) && o.set&^(1<<optSnapshot|1<<optNumeric|1<<optConnection) != 0 {
			return usagef("--snapshot takes no options but -n and -c")
		}
	}
	return nil
}

// parseService reads host[:port], [v6addr]:port or a bare IPv6 address as
// ipvsadm's parse_service does. Host names resolve to IPv4 as with
// gethostbyname; port names come from /etc/services.
func parseService(s string, proto Protocol) (*selector, bool) {
	if s == "" || strings.Trim(s, "0123456789") == "" {
		return nil, false
	}
	sel := &selector{proto: proto}
	host, port, hasPort := s, "", false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' {
			return nil, false
		}
		host, port, hasPort = s[1:end], s[end+2:], true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && a.Zone() == "" {
		sel.fam, sel.addr = INet6, a
	} else {
		// As in ipvsadm, the port is whatever follows the last ':' of
		// what is left, so "[1.2.3.4]:80" means port 0.
		port, hasPort = "", false
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port, hasPort = host[:i], host[i+1:], true
		}
		a, ok := inetAton(host)
		if !ok {
			a, ok = lookupIPv4(host)
		}
		if !ok {
			return nil, false
		}
		sel.fam, sel.addr = INet, a
	}
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil && port == "" {
			return nil, false
		}
		if err != nil {
			p, lerr := net.LookupPort(strings.ToLower(protocolName(proto)), port)
			if lerr != nil || proto == 0 {
				return nil, false
			}
			n = uint64(p)
		}
		sel.port = uint16(n)
	}
	return sel, true
}

func lookupIPv4(host string) (netip.Addr, bool) {
	if host == "" {
		return netip.Addr{}, false
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			return netip.AddrFrom4([4]byte(v4)), true
		}
	}
	return netip.Addr{}, false
}

// inetAton accepts what C's inet_aton does: one to four parts in
// decimal, octal (leading 0) or hex (0x), the last part filling the
// remaining bytes.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := uint64(10)
		switch {
		case len(p) > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" && base != 16 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, int(base), 32)
		if err != nil && !(p == "" && base == 16) {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var v uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		v |= vals[i] << (24 - 8*i)
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	v |= vals[last]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// Main implements `director status`: args are the words after "status".
// It returns the process exit status: 0 on success, 1 when IPVS cannot
// be read or the service does not exist, 2 for a bad command line.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, KernelSource{}, stdout, stderr)
}

func run(args []string, src Source, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		if errors.As(err, new(usageError)) {
			fmt.Fprint(stderr, "Try `director status -h' for more information.\n")
			return 2
		}
		return 1
	}
	if o.cmd == cmdHelp {
		fmt.Fprint(stdout, Usage)
		return 0
	}
	if err := execute(o, src, stdout); err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
	return 0
}

// errNoService is ipvsadm's message for a missing -t/-u/-f service.
var errNoService = errors.New("No such service")

func execute(o *cliOptions, src Source, w io.Writer) error {
	has := func(id int) bool { return o.set&(1<<id) != 0 }
	var parts Part
	switch {
	case has(optSnapshot):
		parts = PartServices | PartTimeouts | PartDaemons
		if has(optConnection) {
			parts |= PartConns
		}
	case has(optConnection):
		parts = PartConns
	case has(optTimeout):
		parts = PartTimeouts
	case has(optDaemon):
		parts = PartDaemons
	default:
		parts = PartServices
	}
	s, err := src.Read(parts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && parts != PartConns {
			return fmt.Errorf("cannot read IPVS (is the ip_vs module loaded?): %w", err)
		}
		return fmt.Errorf("cannot read IPVS: %w", err)
	}
	switch {
	case has(optSnapshot):
		return writeJSON(w, s)
	case o.cmd == cmdSave:
		f := o.format
		f.Rule = true
		return WriteList(w, s, f)
	case has(optConnection):
		if o.jsonOut {
			conns := Conns([]byte(s.ConnTable))
			if conns == nil {
				conns = []Conn{}
			}
			return writeJSON(w, struct {
				Connections []Conn `json:"connections"`
			}{conns})
		}
		return WriteConns(w, []byte(s.ConnTable), o.format.PersistentConn)
	case has(optTimeout):
		if s.Timeouts == nil {
			return errors.New("cannot read IPVS timeouts")
		}
		if o.jsonOut {
			return writeJSON(w, struct {
				Timeouts *Timeouts `json:"timeouts"`
			}{s.Timeouts})
		}
		return WriteTimeouts(w, *s.Timeouts)
	case has(optDaemon):
		if o.jsonOut {
			ds := s.Daemons
			if ds == nil {
				ds = []Daemon{}
			}
			return writeJSON(w, struct {
				Daemons []Daemon `json:"daemons"`
			}{ds})
		}
		return WriteDaemons(w, s.Daemons)
	}

	svcs := sortedServices(s.Services, o.format.NoSort)
	if o.sel != nil {
		svcs = slices.DeleteFunc(svcs, func(svc *Service) bool { return !o.sel.matches(svc) })
		if len(svcs) == 0 {
			return errNoService
		}
		svcs = svcs[:1]
	}
	if o.jsonOut {
		out := listJSON{Version: s.Version, ConnTableSize: s.ConnTableSize, Services: []Service{}}
		for _, svc := range svcs {
			out.Services = append(out.Services, sortedCopy(svc, o.format.NoSort))
		}
		return writeJSON(w, out)
	}
	if o.sel != nil {
		return WriteService(w, svcs[0], o.format)
	}
	return WriteList(w, s, o.format)
}

// listJSON is the --json form of a listing: services and their
// destinations in the order the table prints them.
type listJSON struct {
	Version       string    `json:"version"`
	ConnTableSize uint32    `json:"conn_table_size"`
	Services      []Service `json:"services"`
}

// sortedCopy is svc with its destinations in listing order.
func sortedCopy(svc *Service, noSort bool) Service {
	c := *svc
	c.Destinations = make([]Destination, 0, len(svc.Destinations))
	for _, d := range sortedDests(svc.Destinations, noSort) {
		c.Destinations = append(c.Destinations, *d)
	}
	return c
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
