package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Defaults, chosen to match keepalived where keepalived has one, so that an
// imported configuration behaves the same.
const (
	DefaultPriority       = 100
	DefaultVersion        = 3
	DefaultAdvertInterval = time.Second
	DefaultGARPCount      = 5
	DefaultGARPInterval   = 10 * time.Millisecond
	DefaultLogLevel       = "info"
	DefaultControlSocket  = "/run/director/director.sock"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

type checker struct {
	file string
	pos  map[string]int
	ps   Problems
	ws   Problems // warnings: kept only if there is no error
}

func (c *checker) errf(field, format string, args ...any) {
	c.ps = append(c.ps, c.problem(field, format, args...))
}

// warnf notes a setting that loads but is likely wrong.
func (c *checker) warnf(field, format string, args ...any) {
	c.ws = append(c.ws, c.problem(field, format, args...))
}

func (c *checker) problem(field, format string, args ...any) Problem {
	return Problem{File: c.file, Line: lineOf(c.pos, field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// set reports whether field was written in the file, so that an explicit 0
// is checked rather than mistaken for "absent".
func (c *checker) set(field string) bool {
	_, ok := c.pos[field]
	return ok
}

// validate fills in defaults and checks meaning; decoding has already
// checked shape. It returns the errors, and sets cfg.Warnings.
func validate(cfg *Config, pos map[string]int) Problems {
	c := &checker{file: cfg.File, pos: pos}
	switch cfg.LogLevel {
	case "":
		cfg.LogLevel = DefaultLogLevel
	case "debug", "info", "warn", "error":
	default:
		c.errf("log_level", "%q is not one of debug, info, warn, error", cfg.LogLevel)
	}
	if cfg.ControlSocket == "" {
		cfg.ControlSocket = DefaultControlSocket
	} else if !filepath.IsAbs(cfg.ControlSocket) {
		c.errf("control_socket", "%q must be an absolute path", cfg.ControlSocket)
	}
	if l := cfg.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil || port == "" {
			c.errf("metrics.listen", "%q is not host:port (like 127.0.0.1:9105)", l)
		}
	}
	c.api(cfg)
	c.decisions(cfg)
	if len(cfg.Instances) == 0 && len(cfg.Services) == 0 {
		c.errf("instances", "at least one instance or service is needed")
	}
	names := map[string]string{}
	vrids := map[string]string{} // interface/family/vrid -> field
	vips := map[netip.Addr]string{}
	for i := range cfg.Instances {
		f := fmt.Sprintf("instances[%d]", i)
		in := &cfg.Instances[i]
		c.uniqueName(f, "instance", in.Name, names)
		c.instance(f, in)
		if fam := in.Family(); fam != 0 && in.VRID >= 1 && in.VRID <= 255 {
			// RFC 5798: a VRID identifies a router per interface and family.
			k := fmt.Sprintf("%s/%d/%d", in.Interface, fam, in.VRID)
			if prev, dup := vrids[k]; dup {
				c.errf(f+".vrid", "vrid %d on %s (IPv%d) is already used by %s", in.VRID, in.Interface, fam, prev)
			}
			vrids[k] = f
		}
		for j, p := range in.Placed {
			if prev, dup := vips[p.Prefix.Addr()]; dup {
				field := fmt.Sprintf("%s.vips[%d]", f, j)
				if j >= len(in.Addresses) {
					field = fmt.Sprintf("%s.vips_excluded[%d]", f, j-len(in.Addresses))
				}
				c.errf(field, "VIP %s is already in %s", p.Prefix.Addr(), prev)
			}
			vips[p.Prefix.Addr()] = f
		}
	}
	c.trackObjects(cfg) // before ipvs, whose deferred tracks check refers to them
	c.syncGroups(cfg)
	vmacs := map[string]string{}
	for i := range cfg.Instances {
		in := &cfg.Instances[i]
		if !in.VMAC || in.VMACName == "" {
			continue
		}
		f := fmt.Sprintf("instances[%d]", i)
		if prev, dup := vmacs[in.VMACName]; dup {
			c.errf(f+".vmac_name", "%s is already the VMAC of %s; set vmac_name", in.VMACName, prev)
		}
		vmacs[in.VMACName] = f
	}
	c.routing(cfg, vips)
	c.routedDefaults(cfg) // before ipvs, which defaults the scheduler
	c.ipvs(cfg)
	if r := cfg.Routing; r != nil {
		for _, a := range r.Addrs {
			vips[a] = "routing.vips"
		}
	}
	c.apiListen(cfg, vips)
	c.hooks(cfg)
	cfg.Warnings = c.ws
	return c.ps
}

// uniqueName checks the form of an instance's or service's name and that
// no earlier one uses it.
func (c *checker) uniqueName(f, kind, name string, seen map[string]string) {
	switch {
	case name == "":
		c.errf(f+".name", "required")
	case !nameRE.MatchString(name):
		c.errf(f+".name", "%q: use 1-64 letters, digits, '_', '.' or '-'", name)
	default:
		if prev, dup := seen[name]; dup {
			c.errf(f+".name", "%s name %q is already used by %s", kind, name, prev)
		}
		seen[name] = f
	}
}

func (c *checker) instance(f string, in *Instance) {
	switch {
	case in.Interface == "":
		c.errf(f+".interface", "required")
	case len(in.Interface) > 15 || strings.ContainsAny(in.Interface, "/ \t"):
		c.errf(f+".interface", "%q is not a valid interface name", in.Interface)
	}
	if in.VRID < 1 || in.VRID > 255 {
		c.errf(f+".vrid", "must be 1-255, got %d", in.VRID)
	}
	if !c.set(f + ".priority") {
		in.Priority = DefaultPriority
	} else if in.Priority < 1 || in.Priority > 254 {
		// 255 is reserved for the address owner, which a floating VIP never has.
		c.errf(f+".priority", "must be 1-254, got %d", in.Priority)
	}
	if !c.set(f + ".version") {
		in.Version = DefaultVersion
	}
	if in.Version != 2 && in.Version != 3 {
		c.errf(f+".version", "must be 2 or 3, got %d", in.Version)
	}
	if !c.set(f + ".advert_interval") {
		in.AdvertInterval = Duration(DefaultAdvertInterval)
	}
	c.interval(f+".advert_interval", in.Version, in.AdvertInterval.D())
	if in.PreemptDelay.D() > time.Hour {
		c.errf(f+".preempt_delay", "%s is longer than 1h", in.PreemptDelay.D())
	}
	if !in.PreemptEnabled() && in.PreemptDelay > 0 {
		c.errf(f+".preempt_delay", "has no effect with preempt: false")
	}
	c.vmac(f, in) // before vips: VIPs without dev go on the VMAC
	c.vips(f, in)
	if in.Unicast != nil {
		c.unicast(f+".unicast", in)
	}
	c.allowedSources(f+".allowed_sources", in)
	if in.AuthPass != "" {
		if in.Version != 2 {
			c.errf(f+".auth_pass", "authentication exists only in VRRP version 2 (RFC 5798 removed it)")
		}
		if len(in.AuthPass) > 8 {
			c.errf(f+".auth_pass", "at most 8 bytes, got %d", len(in.AuthPass))
		}
	}
	c.routes(f, in)
	c.rules(f, in)
	c.garp(f+".garp", &in.GARP)
	switch {
	case in.EC2 == nil:
	case len(in.Addresses) > 0 || in.EC2.MoveExcluded && len(in.VIPsExcluded) > 0:
		c.ec2(f+".ec2", in)
	case len(in.VIPs) == 0:
		c.errf(f+".ec2", "moves the VIPs listed under vips; this instance has none")
	}
	c.stateHooks(f, &in.StateHooks)
}

// interval checks what the wire format can carry: v2 has whole seconds in 8
// bits, v3 has centiseconds in 12 bits.
func (c *checker) interval(field string, version int, d time.Duration) {
	switch version {
	case 2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			c.errf(field, "VRRP version 2 needs whole seconds from 1s to 255s, got %s", d)
		}
	case 3:
		if d%(10*time.Millisecond) != 0 || d < 10*time.Millisecond || d > 40950*time.Millisecond {
			c.errf(field, "VRRP version 3 needs a multiple of 10ms from 10ms to 40.95s, got %s", d)
		}
	}
}

func (c *checker) vips(f string, in *Instance) {
	if len(in.VIPs) == 0 && in.Version != 2 {
		// As keepalived: a v3 advert carries at least one address (RFC
		// 5798 5.2.5); v2 allows none.
		c.errf(f+".vips", "at least one VIP is needed with VRRP version 3 (RFC 5798); an instance without advertised VIPs must use version 2")
	}
	if len(in.VIPs) > 255 {
		c.errf(f+".vips", "at most 255 VIPs fit in an advertisement, got %d: list the others under vips_excluded", len(in.VIPs))
	}
	// A duplicate is refused: keepalived tolerates one (the importer
	// converts it once, with a warning), but a list that says the same
	// thing twice is a mistake to fix, not to guess at.
	seen := map[netip.Addr]string{}
	for j, s := range in.VIPs {
		field := fmt.Sprintf("%s.vips[%d]", f, j)
		p, dev, err := parseVIP(s)
		if err != nil {
			c.errf(field, "%v", err)
			continue
		}
		if len(in.Addresses) > 0 && p.Addr().Is4() != in.Addresses[0].Addr().Is4() {
			c.errf(field, "%s is not the same address family as %s: use one family per instance (or list it under vips_excluded)", p.Addr(), in.Addresses[0].Addr())
			continue
		}
		if prev, dup := seen[p.Addr()]; dup {
			c.errf(field, "%s is listed twice (also %s): remove one", p.Addr(), prev)
			continue
		}
		seen[p.Addr()] = field
		in.Addresses = append(in.Addresses, p)
		in.Placed = append(in.Placed, PlacedVIP{Prefix: p, Dev: cmp.Or(dev, in.AddressInterface())})
	}
	// An IPv6 advert must fit an Ethernet frame: 1500 bytes less the IPv6
	// and VRRP headers leave room for 90 addresses.
	if in.Family() == 6 && len(in.Addresses) > maxV6InAdvert {
		c.errf(f+".vips", "at most %d IPv6 VIPs fit in an advertisement of 1500 bytes, got %d: list the others under vips_excluded", maxV6InAdvert, len(in.Addresses))
	}
	// Excluded VIPs are never in adverts, so any family goes.
	for j, s := range in.VIPsExcluded {
		field := fmt.Sprintf("%s.vips_excluded[%d]", f, j)
		p, dev, err := parseVIP(s)
		if err != nil {
			c.errf(field, "%v", err)
			continue
		}
		if prev, dup := seen[p.Addr()]; dup {
			c.errf(field, "%s is listed twice (also %s): remove one", p.Addr(), prev)
			continue
		}
		seen[p.Addr()] = field
		in.Placed = append(in.Placed, PlacedVIP{Prefix: p, Dev: cmp.Or(dev, in.AddressInterface())})
	}
	if in.Version == 2 && in.Family() == 6 {
		c.errf(f+".version", "VRRP version 2 carries only IPv4; use version 3 for IPv6 VIPs")
	}
}

// routes checks and parses the routes that follow mastership.
func (c *checker) routes(f string, in *Instance) {
	for j := range in.Routes {
		r := &in.Routes[j]
		field := fmt.Sprintf("%s.routes[%d]", f, j)
		var fam int // of via or src, which "default" follows
		if r.Via != "" {
			a, err := netip.ParseAddr(r.Via)
			if err != nil || a.Zone() != "" {
				c.errf(field+".via", "%q is not an IP address", r.Via)
			} else {
				r.ViaAddr, fam = a, family(a)
			}
		}
		if r.Src != "" {
			a, err := netip.ParseAddr(r.Src)
			if err != nil || a.Zone() != "" {
				c.errf(field+".src", "%q is not an IP address", r.Src)
			} else {
				r.SrcAddr = a
				if fam == 0 {
					fam = family(a)
				}
			}
		}
		switch {
		case r.To == "":
			c.errf(field+".to", "required: a prefix, an address or default")
		case r.To == "default":
			r.ToPrefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if cmp.Or(fam, in.Family()) == 6 {
				r.ToPrefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		default:
			p, err := parsePrefix(r.To)
			if err != nil {
				c.errf(field+".to", "%v", err)
			} else {
				r.ToPrefix = p.Masked()
			}
		}
		if r.ToPrefix.IsValid() {
			to := family(r.ToPrefix.Addr())
			if r.ViaAddr.IsValid() && family(r.ViaAddr) != to {
				c.errf(field+".via", "%s is not of the family of %s", r.ViaAddr, r.ToPrefix)
			}
			if r.SrcAddr.IsValid() && family(r.SrcAddr) != to {
				c.errf(field+".src", "%s is not of the family of %s", r.SrcAddr, r.ToPrefix)
			}
		}
		if r.Dev != "" && !validIfName(r.Dev) {
			c.errf(field+".dev", "%q is not a valid interface name", r.Dev)
		}
		if r.Dev == "" && r.Via == "" {
			r.Dev = in.Interface
		}
		if r.Table < 0 || r.Table > maxTable {
			c.errf(field+".table", "must be 0 (main) to %d, got %d", maxTable, r.Table)
		}
		if r.Metric < 0 || r.Metric > maxTable {
			c.errf(field+".metric", "must be 0 to %d, got %d", maxTable, r.Metric)
		}
	}
}

// rules checks and parses the policy routing rules that follow mastership.
func (c *checker) rules(f string, in *Instance) {
	for j := range in.Rules {
		r := &in.Rules[j]
		field := fmt.Sprintf("%s.rules[%d]", f, j)
		parse := func(name, s string, to *netip.Prefix) {
			if s == "" || s == "all" {
				return
			}
			p, err := parsePrefix(s)
			if err != nil {
				c.errf(field+"."+name, "%v", err)
				return
			}
			*to = p.Masked()
		}
		parse("from", r.From, &r.FromPrefix)
		parse("to", r.To, &r.ToPrefix)
		r.Family = in.Family()
		switch {
		case r.FromPrefix.IsValid() && r.ToPrefix.IsValid() && r.FromPrefix.Addr().Is4() != r.ToPrefix.Addr().Is4():
			c.errf(field+".to", "%s is not of the family of %s", r.ToPrefix, r.FromPrefix)
		case r.FromPrefix.IsValid():
			r.Family = family(r.FromPrefix.Addr())
		case r.ToPrefix.IsValid():
			r.Family = family(r.ToPrefix.Addr())
		}
		if r.Table < 1 || r.Table > maxTable {
			c.errf(field+".table", "required: 1 to %d, got %d", maxTable, r.Table)
		}
		if r.Priority < 0 || r.Priority > maxTable {
			c.errf(field+".priority", "must be 0 (the kernel picks) to %d, got %d", maxTable, r.Priority)
		}
	}
}

// maxTable is the largest routing table ID, metric or rule priority: the
// kernel's are 32 bits.
const maxTable = 1<<32 - 1

// maxV6InAdvert is how many IPv6 addresses fit in a VRRPv3 advert in a
// 1500-byte packet: (1500 - 40 IPv6 - 8 VRRP) / 16.
const maxV6InAdvert = 90

// vmac checks the virtual-MAC settings and names the interface.
func (c *checker) vmac(f string, in *Instance) {
	if !in.VMAC {
		if in.VMACName != "" {
			c.errf(f+".vmac_name", "needs vmac: true")
		}
		if in.VMACXmitBase {
			c.errf(f+".vmac_xmit_base", "needs vmac: true")
		}
		return
	}
	if in.VMACName == "" {
		in.VMACName = fmt.Sprintf("vrrp.%d", in.VRID)
	}
	switch {
	case !validIfName(in.VMACName):
		c.errf(f+".vmac_name", "%q is not a valid interface name", in.VMACName)
	case in.VMACName == in.Interface:
		c.errf(f+".vmac_name", "%q is the VRRP interface itself", in.VMACName)
	}
	if in.EC2 != nil {
		c.errf(f+".vmac", "EC2 delivers only to the ENI's own MAC; a virtual MAC cannot work there")
	}
}

// parseVIP reads keepalived's form "address[/len] [dev IFACE]"; dev is
// empty if not given.
func parseVIP(s string) (netip.Prefix, string, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return netip.Prefix{}, "", fmt.Errorf("%q is not an address or address/prefix", s)
	}
	p, err := parsePrefix(fields[0])
	if err != nil {
		return p, "", err
	}
	switch {
	case len(fields) == 1:
		return p, "", nil
	case len(fields) == 3 && fields[1] == "dev":
		if !validIfName(fields[2]) {
			return p, "", fmt.Errorf("%q: %q is not a valid interface name", s, fields[2])
		}
		return p, fields[2], nil
	}
	return p, "", fmt.Errorf("%q: want \"address[/len]\" or \"address[/len] dev IFACE\"", s)
}

// validIfName is what the kernel accepts as an interface name.
func validIfName(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t")
}

// parsePrefix accepts "10.0.0.100/24" or a bare "10.0.0.100" (a host route).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or address/prefix", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: a VIP takes no zone", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or address/prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// allowedSources checks a multicast instance's allowed_sources.
func (c *checker) allowedSources(f string, in *Instance) {
	if len(in.AllowedSources) == 0 {
		return
	}
	if in.Unicast != nil {
		c.errf(f, "with unicast, the peers are the allowed sources: leave this out")
		return
	}
	in.SourceAddrs = c.addrList(f, in.AllowedSources, in.Family(), netip.Addr{})
}

func (c *checker) unicast(f string, in *Instance) {
	u := in.Unicast
	fam := in.Family()
	// Without a source, adverts go out from the interface's own address
	// of the family, picked when the socket opens (as keepalived does).
	if u.Source != "" {
		if a, err := netip.ParseAddr(u.Source); err != nil {
			c.errf(f+".source", "%q is not an IP address", u.Source)
		} else if fam != 0 && a.Is4() != (fam == 4) {
			c.errf(f+".source", "%s is not the same address family as the VIPs", a)
		} else {
			u.SourceAddr = a
		}
	}
	if len(u.Peers) == 0 {
		c.errf(f+".peers", "at least one peer is needed")
	}
	u.PeerAddrs = c.addrList(f+".peers", u.Peers, fam, u.SourceAddr)
}

// addrList checks a list of other nodes' unicast addresses at field f:
// of family fam (0: any), none twice, none our own (self).
func (c *checker) addrList(f string, list []string, fam int, self netip.Addr) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for j, s := range list {
		field := fmt.Sprintf("%s[%d]", f, j)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			c.errf(field, "%q is not an IP address", s)
		case fam != 0 && a.Is4() != (fam == 4):
			c.errf(field, "%s is not the same address family as the VIPs", a)
		case self.IsValid() && a == self:
			c.errf(field, "%s is this node's own source address", a)
		case seen[a]:
			c.errf(field, "%s is listed twice", a)
		case a.IsMulticast() || a.IsUnspecified():
			c.errf(field, "%s is not a unicast address", a)
		default:
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func (c *checker) garp(f string, g *GARP) {
	if !c.set(f + ".count") {
		g.Count = DefaultGARPCount
	} else if g.Count < 1 || g.Count > 100 {
		c.errf(f+".count", "must be 1-100, got %d", g.Count)
	}
	if !c.set(f + ".interval") {
		g.Interval = Duration(DefaultGARPInterval)
	} else if g.Interval.D() > 10*time.Second {
		c.errf(f+".interval", "%s is longer than 10s", g.Interval.D())
	}
	if g.Refresh > 0 && g.Refresh.D() < time.Second {
		c.errf(f+".refresh", "%s is shorter than 1s; that would flood the segment", g.Refresh.D())
	}
}
