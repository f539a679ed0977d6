package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/ipvs"
)

// SchedulerFlags are ipvsadm's -b flags; sh-* belong to sh and mh-* to mh.
var SchedulerFlags = []string{"sh-fallback", "sh-port", "mh-fallback", "mh-port"}

// Forwardings are the packet-forwarding methods: direct routing (DSR), NAT, tunnel.
var Forwardings = []string{"dr", "nat", "tunnel"}

const (
	DefaultScheduler      = "wlc" // ipvsadm's default
	DefaultDrainTimeout   = 5 * time.Minute
	DefaultResyncInterval = 10 * time.Second
	DefaultStateFile      = "/run/director/ipvs-owned.json"
)

func (c *checker) ipvs(cfg *Config) {
	ip := &cfg.IPVS
	if !c.set("ipvs.drain_timeout") {
		ip.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if !c.set("ipvs.resync_interval") {
		ip.ResyncInterval = Duration(DefaultResyncInterval)
	} else if ip.ResyncInterval.D() < 100*time.Millisecond {
		c.errf("ipvs.resync_interval", "%s is shorter than 100ms", ip.ResyncInterval.D())
	}
	if ip.StateFile == "" {
		ip.StateFile = DefaultStateFile
	}
	want := ipvs.DefaultSysctls()
	for _, n := range slices.Sorted(maps.Keys(ip.Sysctl)) {
		if !ipvs.KnownSysctl(n) {
			c.errf("ipvs.sysctl."+n, "not an IPVS setting director manages (one of %s)", strings.Join(ipvs.Sysctls, ", "))
			continue
		}
		want[n] = ip.Sysctl[n]
	}
	ip.Sysctl = want
	if s := ip.Sync; s != nil {
		if s.Interface == "" {
			c.errf("ipvs.sync.interface", "required: the interface sync messages use")
		}
		if s.SyncID < 0 || s.SyncID > 255 {
			c.errf("ipvs.sync.sync_id", "must be 0-255, got %d", s.SyncID)
		}
	}
	instances := map[string]bool{}
	for _, in := range cfg.Instances {
		instances[in.Name] = true
	}
	if s := ip.Sync; s != nil && s.Instance != "" && !instances[s.Instance] {
		c.errf("ipvs.sync.instance", "no instance is named %q", s.Instance)
	}
	type key struct {
		fam   int
		proto string
		addr  netip.Addr
		port  int
		mark  int
	}
	seen := map[key]string{}
	names := map[string]string{}
	defer c.tracks(cfg) // needs the services validated
	for i := range cfg.Services {
		f := fmt.Sprintf("services[%d]", i)
		s := &cfg.Services[i]
		c.uniqueName(f, "service", s.Name, names)
		c.service(f, s)
		if s.Instance != "" && !instances[s.Instance] {
			c.errf(f+".instance", "no instance is named %q", s.Instance)
		}
		if !ip.BackupServices() && s.Instance == "" {
			if why := unfollowed(cfg, s); why != "" {
				c.errf(f+".instance", "services_on_backup is false, so name the VRRP instance this service follows (%s)", why)
			}
		}
		for _, e := range s.Endpoints {
			k := key{fam: s.AddrFamily, addr: e.Addr, port: e.Port, mark: e.FWMark}
			if e.FWMark == 0 {
				k.proto = s.Protocol
			}
			if prev, dup := seen[k]; dup {
				if s.IsGroup() {
					c.errf(f+".members", "%s is already a virtual service of %s", e, prev)
				} else {
					c.errf(f, "duplicate service: the same as %s", prev)
				}
				break // one is enough: a group may repeat a whole range
			}
			seen[k] = f
		}
	}
}

// hashFallback warns of sh or mh without its fallback flag while a failed
// real server is drained: the kernel keeps a weight-0 server's place in
// the hash (mh builds its table from the last non-zero weight) and
// answers the new flows that hash to it with ICMP port unreachable.
func (c *checker) hashFallback(f string, s *Service) {
	if (s.Scheduler != "sh" && s.Scheduler != "mh") || s.OnFailure == "remove" {
		return
	}
	flag := s.Scheduler + "-fallback"
	if slices.Contains(s.SchedulerFlags, flag) {
		return
	}
	field := f + ".scheduler_flags"
	if !c.set(field) {
		field = f + ".scheduler"
	}
	c.warnf(field, "%s without %s: a failed real server keeps its place in the hash at weight 0 (on_failure: drain) "+
		"and the kernel refuses the new flows that hash to it; add %s, or on_failure: remove", s.Scheduler, flag, flag)
}

func (c *checker) service(f string, s *Service) {
	if s.IsGroup() {
		c.group(f, s)
	} else if s.FWMark != 0 {
		if s.VIP != "" || s.Port != 0 || s.Protocol != "" {
			c.errf(f+".fwmark", "a firewall-mark service has no vip, port or protocol")
		}
		if s.FWMark < 1 || s.FWMark > 0xffffffff {
			c.errf(f+".fwmark", "must be 1-4294967295, got %d", s.FWMark)
		}
		switch s.Family {
		case 0, 4:
			s.AddrFamily = 4
		case 6:
			s.AddrFamily = 6
		default:
			c.errf(f+".family", "must be 4 or 6, got %d", s.Family)
		}
	} else {
		if s.Family != 0 {
			c.errf(f+".family", "only for firewall-mark services; the VIP gives the family")
		}
		a, err := netip.ParseAddr(s.VIP)
		switch {
		case s.VIP == "":
			c.errf(f+".vip", "required (or fwmark)")
		case err != nil || a.Zone() != "":
			c.errf(f+".vip", "%q is not an IP address", s.VIP)
		default:
			s.Addr = a
			s.AddrFamily = family(a)
		}
		if s.Port < 1 || s.Port > 65535 {
			c.errf(f+".port", "must be 1-65535, got %d", s.Port)
		}
		c.protocol(f, s)
	}
	if !s.IsGroup() && s.AddrFamily != 0 {
		s.Endpoints = []Endpoint{{Addr: s.Addr, Port: s.Port, FWMark: s.FWMark}}
	}
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	} else if scheds := ipvs.Schedulers(); !slices.Contains(scheds, s.Scheduler) {
		c.errf(f+".scheduler", "unknown scheduler %q; the kernel has %s", s.Scheduler, strings.Join(scheds, ", "))
	}
	for j, fl := range s.SchedulerFlags {
		field := fmt.Sprintf("%s.scheduler_flags[%d]", f, j)
		switch {
		case !slices.Contains(SchedulerFlags, fl):
			c.errf(field, "unknown flag %q; known: %s", fl, strings.Join(SchedulerFlags, ", "))
		case !strings.HasPrefix(fl, s.Scheduler+"-"):
			c.errf(field, "%q applies to the %s scheduler, not %s", fl, strings.SplitN(fl, "-", 2)[0], s.Scheduler)
		}
	}
	c.hashFallback(f, s)
	if s.Forwarding == "" {
		s.Forwarding = "dr"
	} else if !slices.Contains(Forwardings, s.Forwarding) {
		c.errf(f+".forwarding", "%q is not one of dr, nat, tunnel", s.Forwarding)
	}
	// A fwmark service (or group of marks only) has no protocol: it may
	// carry UDP, and ipvsadm allows ops and engines there.
	udpOrMark := s.Protocol == "udp" || s.Protocol == ""
	if s.OPS && !udpOrMark {
		c.errf(f+".ops", "one-packet scheduling is for UDP and firewall-mark services, not %s", s.Protocol)
	}
	if p := s.Persistence; p != nil {
		c.persistence(f+".persistence", p, s.AddrFamily)
		if p.Engine != "" {
			if engines := ipvs.PersistenceEngines(); !slices.Contains(engines, p.Engine) {
				c.errf(f+".persistence.engine", "unknown persistence engine %q; the kernel has %s", p.Engine, strings.Join(engines, ", "))
			} else if !udpOrMark {
				c.errf(f+".persistence.engine", "%s is for UDP and firewall-mark services, not %s", p.Engine, s.Protocol)
			}
		}
	}
	if s.Tunnel != nil {
		if s.Forwarding != "tunnel" {
			c.errf(f+".tunnel", "only with forwarding: tunnel (give it on the real servers that tunnel)")
		}
		c.tunnel(f+".tunnel", s.Tunnel)
	}
	if s.SorryServer != "" {
		ap, err := parseHostPort(s.SorryServer, s.Port)
		switch {
		case err != nil:
			c.errf(f+".sorry_server", "%v", err)
		case ap.Port() == 0 && s.groupPorts() > 1:
			c.errf(f+".sorry_server", "give the port (address:port): the group's members have different ports")
		case s.AddrFamily != 0 && family(ap.Addr()) != s.AddrFamily:
			c.errf(f+".sorry_server", "%s is not the same address family as the service", ap.Addr())
		default:
			s.Sorry = ap
		}
	}
	if len(s.RealServers) == 0 && s.Registration == nil {
		c.errf(f+".real_servers", "at least one real server is needed (or registration, for a pool that fills itself)")
	}
	if s.Registration != nil {
		c.registration(f+".registration", s)
	}
	c.serviceChecks(f, s)
	c.command(f+".quorum_up", s.QuorumUp)
	c.command(f+".quorum_down", s.QuorumDown)
	seen := map[netip.AddrPort]string{}
	// Direct-routed and tunnelled real servers are destinations of the
	// virtual service's port whatever their own (see the dataplane), so
	// IPVS knows them by address alone.
	routed := map[netip.Addr]string{}
	for j := range s.RealServers {
		rf := fmt.Sprintf("%s.real_servers[%d]", f, j)
		r := &s.RealServers[j]
		c.command(rf+".notify_up", r.NotifyUp)
		c.command(rf+".notify_down", r.NotifyDown)
		a, err := netip.ParseAddr(r.Address)
		if err != nil || a.Zone() != "" {
			c.errf(rf+".address", "%q is not an IP address", r.Address)
			continue
		}
		r.Addr = a
		if s.AddrFamily != 0 && family(a) != s.AddrFamily && (s.Forwarding != "tunnel" && r.Forwarding != "tunnel") {
			c.errf(rf+".address", "%s is not the same address family as the service (only tunnel forwarding may mix)", a)
		}
		if r.Port == 0 {
			r.Port = s.Port
			if r.Port == 0 && s.groupPorts() > 1 {
				c.errf(rf+".port", "required: the group's members have different ports")
			}
		}
		if r.Port < 0 || r.Port > 65535 {
			c.errf(rf+".port", "must be 1-65535, got %d", r.Port)
		}
		if r.Weight != nil && (*r.Weight < 0 || *r.Weight > 65535) {
			c.errf(rf+".weight", "must be 0-65535, got %d", *r.Weight)
		}
		if r.UpperThreshold < 0 {
			c.errf(rf+".upper_threshold", "must not be negative")
		}
		if r.LowerThreshold < 0 {
			c.errf(rf+".lower_threshold", "must not be negative")
		}
		if r.UpperThreshold > 0 && r.LowerThreshold > r.UpperThreshold {
			c.errf(rf+".lower_threshold", "%d is above upper_threshold %d", r.LowerThreshold, r.UpperThreshold)
		}
		if r.Forwarding != "" && !slices.Contains(Forwardings, r.Forwarding) {
			c.errf(rf+".forwarding", "%q is not one of dr, nat, tunnel", r.Forwarding)
		}
		if r.Tunnel != nil {
			if cmp.Or(r.Forwarding, s.Forwarding) != "tunnel" {
				c.errf(rf+".tunnel", "only with forwarding: tunnel")
			}
			c.tunnel(rf+".tunnel", r.Tunnel)
		}
		ap := netip.AddrPortFrom(a, uint16(r.Port))
		if prev, dup := seen[ap]; dup {
			c.errf(rf+".address", "real server %s is listed twice (also %s)", ap, prev)
			continue
		}
		seen[ap] = rf
		if fwd := cmp.Or(r.Forwarding, s.Forwarding); fwd == "dr" || fwd == "tunnel" {
			if prev, dup := routed[a]; dup {
				c.errf(rf+".address", "%s is already a real server (%s): with %s forwarding packets keep the virtual service's port, so IPVS has one destination per address; use nat to reach several ports", a, prev, fwd)
			}
			routed[a] = rf
		}
	}
}

// TunnelTypes and TunnelChecksums are a tunnel's encapsulations and
// checksum options, defaults first.
var (
	TunnelTypes     = []string{"ipip", "gue", "gre"}
	TunnelChecksums = []string{"nocsum", "csum", "remcsum"}
)

// tunnel checks an encapsulation as ipvsadm and keepalived do, and fills
// in the defaults.
func (c *checker) tunnel(f string, t *Tunnel) {
	if t.Type == "" {
		t.Type = TunnelTypes[0]
	}
	if t.Checksum == "" {
		t.Checksum = TunnelChecksums[0]
	}
	switch {
	case !slices.Contains(TunnelTypes, t.Type):
		c.errf(f+".type", "%q is not one of %s", t.Type, strings.Join(TunnelTypes, ", "))
	case t.Type == "gue" && (t.Port < 1 || t.Port > 65535):
		c.errf(f+".port", "a gue tunnel needs its UDP port, 1-65535, got %d", t.Port)
	case t.Type != "gue" && t.Port != 0:
		c.errf(f+".port", "only a gue tunnel has a port")
	}
	switch {
	case !slices.Contains(TunnelChecksums, t.Checksum):
		c.errf(f+".checksum", "%q is not one of %s", t.Checksum, strings.Join(TunnelChecksums, ", "))
	case t.Type == "ipip" && t.Checksum != "nocsum":
		c.errf(f+".checksum", "an ipip tunnel has no checksum option (gue and gre do)")
	case t.Type == "gre" && t.Checksum == "remcsum":
		c.errf(f+".checksum", "remote checksum offload is for gue tunnels only")
	}
}

// protocol checks and defaults a service's protocol.
func (c *checker) protocol(f string, s *Service) {
	switch s.Protocol {
	case "":
		s.Protocol = "tcp"
	case "tcp", "udp", "sctp":
	default:
		c.errf(f+".protocol", "%q is not one of tcp, udp, sctp", s.Protocol)
	}
}

func (c *checker) persistence(f string, p *Persistence, fam int) {
	if !c.set(f + ".timeout") {
		p.Timeout = Duration(300 * time.Second) // ipvsadm's default
	}
	if t := p.Timeout.D(); t < time.Second || t%time.Second != 0 || t > 0xffffffff*time.Second {
		c.errf(f+".timeout", "must be whole seconds, at least 1s, got %s", t)
	}
	max := 32
	if fam == 6 {
		max = 128
	}
	if p.Netmask == "" {
		p.Bits = max
		return
	}
	if n, err := strconv.Atoi(p.Netmask); err == nil {
		if n < 1 || n > max {
			c.errf(f+".netmask", "prefix length must be 1-%d, got %d", max, n)
		}
		p.Bits = n
		return
	}
	m, err := netip.ParseAddr(p.Netmask)
	if err != nil || !m.Is4() || fam == 6 {
		c.errf(f+".netmask", "%q: write a prefix length, or a dotted IPv4 mask like 255.255.255.0", p.Netmask)
		return
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for v&0x80000000 != 0 {
		ones++
		v <<= 1
	}
	if v != 0 || ones == 0 {
		c.errf(f+".netmask", "%s is not a contiguous mask", p.Netmask)
	}
	p.Bits = ones
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// parseHostPort accepts "addr", "addr:port" or "[v6]:port"; a missing port is def.
func parseHostPort(s string, def int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an address or address:port", s)
	}
	return netip.AddrPortFrom(a, uint16(def)), nil
}

// unfollowed says why a service without an explicit instance cannot be
// tied to one, or "" if it can: there is only one instance, or one holds
// its VIP (for a group, every address of its members).
func unfollowed(cfg *Config, s *Service) string {
	if len(cfg.Instances) == 1 {
		return ""
	}
	holder := map[netip.Addr]string{}
	for _, in := range cfg.Instances {
		for _, p := range in.Placed { // excluded VIPs too
			holder[p.Prefix.Addr()] = in.Name
		}
	}
	first, ok := holder[s.Addr]
	if !ok {
		return "its VIP is in none"
	}
	for _, e := range s.Endpoints {
		if e.FWMark == 0 && holder[e.Addr] != first {
			return fmt.Sprintf("%s is not a VIP of %s, which holds the group's first address", e.Addr, first)
		}
	}
	return ""
}

// tracks checks every instance's track list against the services and the
// track objects (scripts, track_files, track_processes).
func (c *checker) tracks(cfg *Config) {
	servers := map[string]bool{}
	services := map[string]bool{}
	for _, s := range cfg.Services {
		services[s.Name] = true
		for _, r := range s.RealServers {
			servers[fmt.Sprintf("%s/%s", s.Name, netip.AddrPortFrom(r.Addr, uint16(r.Port)))] = true
		}
	}
	objects := trackObjectNames(cfg)
	for i, in := range cfg.Instances {
		for j, t := range in.Track {
			c.track(fmt.Sprintf("instances[%d].track[%d]", i, j), t, services, servers, objects)
		}
	}
	if r := cfg.Routing; r != nil {
		for j, t := range r.Track {
			c.track(fmt.Sprintf("routing.track[%d]", j), t, services, servers, objects)
		}
	}
	for i, g := range cfg.SyncGroups {
		for j, t := range g.Track {
			f := fmt.Sprintf("sync_groups[%d].track[%d]", i, j)
			c.track(f, t, services, servers, objects)
			if t.Weight != nil && *t.Weight != 0 {
				c.errf(f+".weight", "a sync group's track puts the whole group in FAULT while down (weight 0); to lower a priority instead, track with a weight in the member instances")
			}
		}
	}
}

// track checks one track entry at field f.
func (c *checker) track(f string, t Track, services, servers map[string]bool, objects map[string]map[string]bool) {
	n := 0
	for _, s := range []string{t.Service, t.RealServer, t.Script, t.File, t.Process, t.Interface} {
		if s != "" {
			n++
		}
	}
	kind, name := t.Kind()
	switch {
	case n != 1:
		c.errf(f, "name exactly one of service, real_server, script, file, process or interface")
	case t.Service != "" && !services[t.Service]:
		c.errf(f+".service", "no service is named %q", t.Service)
	case t.RealServer != "" && !servers[t.RealServer]:
		c.errf(f+".real_server", "%q is not service/address:port of a configured real server", t.RealServer)
	case kind == "interface":
		if len(name) > 15 || strings.ContainsAny(name, "/ \t") {
			c.errf(f+".interface", "%q is not a valid interface name", name)
		}
	case objects[kind] != nil && !objects[kind][name]:
		c.errf(f+"."+kind, "%q is not the name of any of %s", name, trackObjectList[kind])
	}
	lim := 253
	if kind == "file" {
		lim = 254 // keepalived's: a file's value can be negative
	}
	if t.WeightReverse != nil && (kind == "service" || kind == "real_server") {
		c.errf(f+".weight_reverse", "only scripts, files, processes and interfaces take weight_reverse")
	}
	if t.Weight != nil && (*t.Weight < -lim || *t.Weight > lim) {
		c.errf(f+".weight", "must be -%d to %d, got %d", lim, lim, *t.Weight)
	}
}
