package ipvsadm

import (
	"io"
	"strconv"
)

// Format selects an ipvsadm listing form. The zero value is plain `-L -n`.
// When several forms are set, the one ipvsadm gives precedence wins:
// Stats, Rate, Thresholds, PersistentConn, TunInfo.
type Format struct {
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	Exact          bool // --exact: no K/M/G/T scaling
	NoSort         bool // --nosort: kernel order
	Rule           bool // -S: print as ipvsadm-restore rules
}

// WriteList prints the whole table like `ipvsadm -L -n` (or `-S -n` when
// f.Rule is set).
func WriteList(w io.Writer, s *Snapshot, f Format) error {
	// About 80 bytes a line; growing a 1 MB buffer by doubling costs more
	// than the formatting.
	lines := 3 + len(s.Services)
	for i := range s.Services {
		lines += len(s.Services[i].Destinations)
	}
	b := make([]byte, 0, 80*lines)
	if !f.Rule {
		b = append(b, "IP Virtual Server version "...)
		b = append(b, s.Version...)
		b = append(b, " (size="...)
		b = strconv.AppendInt(b, int64(int32(s.ConnTableSize)), 10)
		b = append(b, ")\n"...)
	}
	b = appendTitle(b, f)
	for _, svc := range sortedServices(s.Services, f.NoSort) {
		b = appendService(b, svc, f)
	}
	_, err := w.Write(b)
	return err
}

// WriteService prints one service like `ipvsadm -L -n -t addr:port`.
func WriteService(w io.Writer, svc *Service, f Format) error {
	b := appendTitle(nil, f)
	b = appendService(b, svc, f)
	_, err := w.Write(b)
	return err
}

// WriteTimeouts prints like `ipvsadm -L --timeout`.
func WriteTimeouts(w io.Writer, t Timeouts) error {
	b := append([]byte(nil), "Timeout (tcp tcpfin udp): "...)
	b = strconv.AppendInt(b, int64(int32(t.TCP)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(int32(t.TCPFin)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(int32(t.UDP)), 10)
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

// WriteDaemons prints like `ipvsadm -L --daemon`.
func WriteDaemons(w io.Writer, ds []Daemon) error {
	var b []byte
	for _, d := range ds {
		switch {
		case d.State&Master != 0:
			b = append(b, "master"...)
		case d.State&Backup != 0:
			b = append(b, "backup"...)
		default:
			continue
		}
		b = append(b, " sync daemon (mcast="...)
		b = append(b, d.Interface...)
		b = append(b, ", syncid="...)
		b = strconv.AppendInt(b, int64(int32(d.SyncID)), 10)
		if d.MaxLen != 0 {
			b = append(b, ", maxlen="...)
			b = strconv.AppendUint(b, uint64(d.MaxLen), 10)
		}
		if d.Group.IsValid() {
			b = append(b, ", group="...)
			b = appendIP(b, d.Group)
		}
		if d.Port != 0 {
			b = append(b, ", port="...)
			b = strconv.AppendUint(b, uint64(d.Port), 10)
		}
		if d.TTL != 0 {
			b = append(b, ", ttl="...)
			b = strconv.AppendUint(b, uint64(d.TTL), 10)
		}
		b = append(b, ")\n"...)
	}
	_, err := w.Write(b)
	return err
}

func appendTitle(b []byte, f Format) []byte {
	// Column layouts of ipvsadm's print_title.
	cols := func(b []byte, names []string, width int, right bool) []byte {
		b = appendPadRight(b, "Prot LocalAddress:Port", 33)
		for _, n := range names {
			b = append(b, ' ')
			if right {
				b = appendPadLeft(b, n, width)
			} else {
				b = appendPadRight(b, n, width)
			}
		}
		return append(b, "\n  -> RemoteAddress:Port\n"...)
	}
	switch {
	case f.Stats:
		return cols(b, []string{"Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"}, 8, true)
	case f.Rate:
		return cols(b, []string{"CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"}, 8, true)
	case f.Thresholds:
		return cols(b, []string{"Uthreshold", "Lthreshold", "ActiveConn", "InActConn"}, 10, false)
	case f.PersistentConn:
		b = appendPadRight(b, "Prot LocalAddress:Port", 33)
		b = append(b, ' ')
		b = appendPadRight(b, "Weight", 9)
		b = append(b, ' ')
		b = appendPadRight(b, "PersistConn", 11)
		b = append(b, ' ')
		b = appendPadRight(b, "ActiveConn", 10)
		b = append(b, ' ')
		b = appendPadRight(b, "InActConn", 10)
		return append(b, "\n  -> RemoteAddress:Port\n"...)
	case f.TunInfo:
		return append(b, "Prot LocalAddress:Port Scheduler Flags\n"+
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"...)
	case f.Rule:
		return b
	}
	return append(b, "Prot LocalAddress:Port Scheduler Flags\n"+
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"...)
}

// appendService prints a service line and its destinations, following
// ipvsadm's print_service_entry.
func appendService(b []byte, svc *Service, f Format) []byte {
	name := serviceName(svc, f.Rule)
	switch {
	case f.Rule:
		b = append(b, "-A "...)
		b = append(b, name...)
		b = append(b, " -s "...)
		b = append(b, svc.Scheduler...)
		if svc.Flags&FlagPersistent != 0 {
			b = append(b, " -p "...)
			b = strconv.AppendUint(b, uint64(svc.Timeout), 10)
			if m, ok := nonDefaultMask(svc); ok {
				b = append(b, " -M "...)
				b = append(b, m...)
			}
		}
		if svc.PE != "" {
			b = append(b, " --pe "...)
			b = append(b, svc.PE...)
		}
		if svc.Flags&FlagOnePacket != 0 {
			b = append(b, " -o"...)
		}
		if svc.Flags&flagSchedAny != 0 {
			b = append(b, " -b "...)
			b = appendSchedFlags(b, svc)
		}
	case f.Stats || f.Rate:
		b = appendPadRight(b, name, 33)
		st := &svc.Stats
		if f.Stats {
			b = appendLargeNums(b, f.Exact, st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes)
		} else {
			b = appendLargeNums(b, f.Exact, st.CPS, st.InPPS, st.OutPPS, st.InBPS, st.OutBPS)
		}
	default:
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, svc.Scheduler...)
		if svc.Flags&flagSchedAny != 0 {
			b = append(b, " ("...)
			b = appendSchedFlags(b, svc)
			b = append(b, ')')
		}
		if svc.Flags&FlagPersistent != 0 {
			b = append(b, " persistent "...)
			b = strconv.AppendUint(b, uint64(svc.Timeout), 10)
			if m, ok := nonDefaultMask(svc); ok {
				b = append(b, " mask "...)
				b = append(b, m...)
			}
			if svc.PE != "" {
				b = append(b, " pe "...)
				b = append(b, svc.PE...)
			}
		}
		if svc.Flags&FlagOnePacket != 0 {
			b = append(b, " ops"...)
		}
	}
	b = append(b, '\n')

	for _, d := range sortedDests(svc.Destinations, f.NoSort) {
		b = appendDest(b, name, d, f)
	}
	return b
}

func appendDest(b []byte, svcName string, d *Destination, f Format) []byte {
	var nbuf [64]byte
	var buf [24]byte
	dname := appendAddrPort(nbuf[:0], d.Family, d.Address, d.Port)
	if f.Rule {
		return appendDestRule(b, svcName, dname, d)
	}
	// ipvsadm cuts non-IPv6 names to 28 bytes; only resolved names are
	// that long, but keep the rule.
	if d.Family != INet6 && len(dname) > 28 {
		dname = dname[:28]
	}
	b = append(b, "  -> "...)
	b = appendPadRight(b, dname, 28)
	// ipvsadm reads a destination's 64-bit counters with its 32-bit
	// parser, so packet and connection counters and all rates keep only
	// their low 32 bits; byte counters are read in full.
	st := &d.Stats
	switch {
	case f.Stats:
		b = appendLargeNums(b, f.Exact, low32(st.Conns), low32(st.InPkts), low32(st.OutPkts), st.InBytes, st.OutBytes)
	case f.Rate:
		for _, v := range []uint64{low32(st.CPS), low32(st.InPPS), low32(st.OutPPS)} {
			b = append(b, ' ')
			b = appendPadLeft(b, strconv.AppendUint(buf[:0], v, 10), 8)
		}
		b = appendLargeNums(b, f.Exact, low32(st.InBPS), low32(st.OutBPS))
	case f.Thresholds:
		for _, v := range []uint32{d.UpperThreshold, d.LowerThreshold, d.ActiveConns, d.InactiveConns} {
			b = append(b, ' ')
			b = appendPadRight(b, strconv.AppendUint(buf[:0], uint64(v), 10), 10)
		}
	case f.PersistentConn:
		b = append(b, ' ')
		b = appendPadRight(b, strconv.AppendUint(buf[:0], uint64(d.Weight), 10), 9)
		b = append(b, ' ')
		b = appendPadRight(b, strconv.AppendUint(buf[:0], uint64(d.PersistConns), 10), 11)
		b = appendConns(b, d)
	case f.TunInfo:
		b = append(b, ' ')
		b = appendPadRight(b, forwardName(d.Forward), 7)
		b = append(b, ' ')
		b = appendPadRight(b, tunnelInfo(d), 13)
		b = appendWeight(b, d)
		b = appendConns(b, d)
	default:
		b = append(b, ' ')
		b = appendPadRight(b, forwardName(d.Forward), 7)
		b = appendWeight(b, d)
		b = appendConns(b, d)
	}
	return append(b, '\n')
}

func appendWeight(b []byte, d *Destination) []byte {
	var buf [16]byte
	b = append(b, ' ')
	return appendPadRight(b, strconv.AppendInt(buf[:0], int64(int32(d.Weight)), 10), 6)
}

func appendConns(b []byte, d *Destination) []byte {
	var buf [16]byte
	b = append(b, ' ')
	b = appendPadRight(b, strconv.AppendUint(buf[:0], uint64(d.ActiveConns), 10), 10)
	b = append(b, ' ')
	return appendPadRight(b, strconv.AppendUint(buf[:0], uint64(d.InactiveConns), 10), 10)
}

// appendDestRule prints a destination as an `ipvsadm -a` rule.
func appendDestRule(b []byte, svcName string, dname []byte, d *Destination) []byte {
	b = append(b, "-a "...)
	b = append(b, svcName...)
	b = append(b, " -r "...)
	b = append(b, dname...)
	b = append(b, ' ')
	b = append(b, forwardSwitch(d.Forward)...)
	b = append(b, " -w "...)
	b = strconv.AppendInt(b, int64(int32(d.Weight)), 10)
	if d.Forward == Tunnel {
		switch d.TunnelType {
		case GRE:
			b = append(b, " --tun-type gre "...)
			b = append(b, tunnelFlagOption(d.TunnelFlags)...)
		case GUE:
			b = append(b, " --tun-type gue --tun-port "...)
			b = strconv.AppendUint(b, uint64(d.TunnelPort), 10)
			b = append(b, ' ')
			b = append(b, tunnelFlagOption(d.TunnelFlags)...)
		case IPIP:
			b = append(b, " --tun-type ipip"...)
		}
	}
	return append(b, '\n')
}

// serviceName is the service's first column, or its -t/-u/-f option in
// rule form.
func serviceName(svc *Service, rule bool) string {
	var b []byte
	if svc.FWMark != 0 {
		// ipvsadm 1.31 prints the mark with %d: marks above 2^31-1 come
		// out negative.
		if rule {
			b = append(b, "-f "...)
		} else {
			b = append(b, "FWM  "...)
		}
		b = strconv.AppendInt(b, int64(int32(svc.FWMark)), 10)
		if svc.Family == INet6 {
			if rule {
				b = append(b, " -6"...)
			} else {
				b = append(b, " IPv6"...)
			}
		}
		return string(b)
	}
	if rule {
		switch svc.Protocol {
		case TCP:
			b = append(b, "-t "...)
		case UDP:
			b = append(b, "-u "...)
		case SCTP:
			b = append(b, "--sctp-service "...)
		default:
			b = append(b, "--xxx-service "...)
		}
		b = appendAddrPort(b, svc.Family, svc.Address, svc.Port)
		return string(b)
	}
	b = appendPadRight(b, protocolName(svc.Protocol), 4)
	b = append(b, ' ')
	b = appendAddrPort(b, svc.Family, svc.Address, svc.Port)
	if svc.Family != INet6 && len(b) > 33 {
		b = b[:33]
	}
	return string(b)
}

// nonDefaultMask returns the persistence mask when it is not the host
// granularity (255.255.255.255 or /128) that ipvsadm leaves unprinted.
func nonDefaultMask(svc *Service) (string, bool) {
	switch svc.Family {
	case INet:
		return svc.Netmask, svc.Netmask != "255.255.255.255"
	case INet6:
		return svc.Netmask, svc.Netmask != "128"
	}
	return "", false
}

func appendSchedFlags(b []byte, svc *Service) []byte {
	var names [3]string
	switch svc.Scheduler {
	case "sh":
		names = [3]string{"sh-fallback", "sh-port", ""}
	case "mh":
		names = [3]string{"mh-fallback", "mh-port", ""}
	default:
		names = [3]string{"flag-1", "flag-2", "flag-3"}
	}
	first := true
	for i, bit := range []uint32{FlagSched1, FlagSched2, FlagSched3} {
		if svc.Flags&bit == 0 || names[i] == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		b = append(b, names[i]...)
		first = false
	}
	return b
}

func protocolName(p Protocol) string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "?"
}

// forwardName is ipvsadm's fwd_name; glibc prints a NULL string as "(null)".
func forwardName(f Forward) string {
	switch f & 7 {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return "(null)"
}

func forwardSwitch(f Forward) string {
	switch f & 7 {
	case Masq:
		return "-m"
	case Tunnel:
		return "-i"
	case Local, Route:
		return "-g"
	}
	return "(null)"
}

var tunnelFlagNames = [...]string{"-c", "+c", "r+c"}

func tunnelInfo(d *Destination) string {
	if d.Forward&7 != Tunnel {
		return "n/a"
	}
	flags := "?"
	if int(d.TunnelFlags) < len(tunnelFlagNames) {
		flags = tunnelFlagNames[d.TunnelFlags]
	}
	switch d.TunnelType {
	case IPIP:
		return "ipip"
	case GUE:
		return "gue:" + strconv.Itoa(int(d.TunnelPort)) + ":" + flags
	case GRE:
		return "gre:" + flags
	}
	return "n/a"
}

func tunnelFlagOption(flags uint16) string {
	switch flags {
	case 0:
		return "--tun-nocsum"
	case 1:
		return "--tun-csum"
	case 2:
		return "--tun-remcsum"
	}
	return "(null)"
}

func low32(v uint64) uint64 { return v & 0xffffffff }

// appendLargeNums prints counters the way ipvsadm's print_largenum does:
// a 9-wide column, scaled to K/M/G/T above 8 digits unless exact.
func appendLargeNums(b []byte, exact bool, vs ...uint64) []byte {
	for _, v := range vs {
		b = AppendLargeNum(b, v, exact)
	}
	return b
}

// AppendLargeNum appends one counter as ipvsadm prints it: right-aligned
// in 9 columns, values of 10^8 and more divided down and suffixed with
// K (10^3), M (10^6, from 10^9), G (10^9, from 10^11) or T (10^12, from
// 10^14). With exact, the full value with one leading space at least.
func AppendLargeNum(b []byte, v uint64, exact bool) []byte {
	var buf [24]byte
	if exact {
		digits := strconv.AppendUint(buf[:0], v, 10)
		width := 9
		if len(digits) > 8 {
			width = len(digits) + 1
		}
		return appendPadLeft(b, digits, width)
	}
	var suffix byte
	switch {
	case v < 100_000_000:
	case v < 1_000_000_000:
		v, suffix = v/1_000, 'K'
	case v < 100_000_000_000:
		v, suffix = v/1_000_000, 'M'
	case v < 100_000_000_000_000:
		v, suffix = v/1_000_000_000, 'G'
	default:
		v, suffix = v/1_000_000_000_000, 'T'
	}
	if suffix == 0 {
		return appendPadLeft(b, strconv.AppendUint(buf[:0], v, 10), 9)
	}
	b = appendPadLeft(b, strconv.AppendUint(buf[:0], v, 10), 8)
	return append(b, suffix)
}

func appendPadLeft[S ~string | ~[]byte](b []byte, s S, width int) []byte {
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func appendPadRight[S ~string | ~[]byte](b []byte, s S, width int) []byte {
	b = append(b, s...)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return b
}
