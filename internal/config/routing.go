package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Routing puts the node in routed (active/active) mode: its VIPs live on a
// local device and reach it through the upstream router, which learns them
// by BGP from director's own speaker (mode bgp) or from a routing daemon
// that exports the kernel table director installs them in (mode table).
type Routing struct {
	// Mode is bgp or table.
	Mode string `yaml:"mode,omitempty"`
	// VIPs are the addresses this node serves, IPv4 and IPv6; each is
	// put on Device and announced as a host route (/32, /128).
	VIPs []string `yaml:"vips,omitempty"`
	// Device is the interface the VIPs live on: lo (the default), or a
	// dummy interface director creates if absent and owns.
	Device string `yaml:"device,omitempty"`
	// RouterID (an IPv4 address) and ASN are this node's BGP identity
	// (mode bgp).
	RouterID string `yaml:"router_id,omitempty"`
	ASN      uint32 `yaml:"asn,omitempty"`
	// Table, Protocol and Metric place the VIP routes in the kernel
	// (mode table): table 1-4294967295 other than local (255), the
	// route protocol (default 249), the metric (default 0).
	Table    int `yaml:"table,omitempty"`
	Protocol int `yaml:"protocol,omitempty"`
	Metric   int `yaml:"metric,omitempty"`
	// DrainTimeout bounds drain-node's (and a stop's) wait for the
	// traffic to leave (default 60s).
	DrainTimeout Duration `yaml:"drain_timeout,omitempty"`
	// Drain is what drain-node does to the routes: withdraw (the
	// default) or deprefer (announce them less preferred).
	Drain string `yaml:"drain,omitempty"`
	// Track are what the node's fitness follows besides its services'
	// quorum: any of them down withdraws every VIP. Same shape as an
	// instance's track, without weights.
	Track []Track `yaml:"track,omitempty"`
	// Announce sets per-VIP route attributes (mode bgp).
	Announce []Announce `yaml:"announce,omitempty"`
	// Peers are the BGP neighbours (mode bgp).
	Peers []BGPPeer `yaml:"peers,omitempty"`

	// Addrs is VIPs parsed, in order; filled in by validation.
	Addrs []netip.Addr `yaml:"-"`
}

// Announce is the attributes of one VIP's route.
type Announce struct {
	VIP         string   `yaml:"vip,omitempty"`
	Communities []string `yaml:"communities,omitempty"`
	// LocalPref and MED are pointers: absent sends none.
	LocalPref *uint32 `yaml:"local_pref,omitempty"`
	MED       *uint32 `yaml:"med,omitempty"`

	// Filled in by validation.
	Addr  netip.Addr `yaml:"-"`
	Comms []uint32   `yaml:"-"`
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address string `yaml:"address,omitempty"`
	ASN     uint32 `yaml:"asn,omitempty"`
	// PasswordFile holds the TCP MD5 password (root's, mode 0600); read
	// by the daemon, never logged.
	PasswordFile string `yaml:"password_file,omitempty"`
	// Multihop is the eBGP multihop TTL; 0: directly connected.
	Multihop  int      `yaml:"multihop,omitempty"`
	Hold      Duration `yaml:"hold,omitempty"`
	Keepalive Duration `yaml:"keepalive,omitempty"`
	// Families are ipv4 and/or ipv6 (unicast); default both.
	Families []string `yaml:"families,omitempty"`
	BFD      *BFD     `yaml:"bfd,omitempty"`

	Addr netip.Addr `yaml:"-"`
}

// BFD is a peer's BFD session (GoBGP's), for detection in well under a
// second instead of a hold time.
type BFD struct {
	Enabled    bool     `yaml:"enabled,omitempty"`
	MinRx      Duration `yaml:"min_rx,omitempty"`
	MinTx      Duration `yaml:"min_tx,omitempty"`
	Multiplier int      `yaml:"multiplier,omitempty"`
}

// Routing defaults.
const (
	DefaultRoutingDevice   = "lo"
	DefaultRouteProtocol   = 249
	DefaultRoutingDrain    = 60 * time.Second
	DefaultBGPHold         = 90 * time.Second // RFC 4271's suggestion, GoBGP's default
	DefaultBFDInterval     = 300 * time.Millisecond
	DefaultBFDMultiplier   = 3
	DefaultRoutedScheduler = "mh"
)

// DefaultRoutedSchedulerFlags are the flags a routed service's default
// scheduler gets. mh-fallback: a failed real server keeps weight 0 (its
// connections finish), and mh keeps its slots in the table (the kernel
// builds the table from the last non-zero weight, so that the other
// servers' flows do not move); without the flag the kernel answers a
// new flow that hashes to such a slot with ICMP port unreachable, the
// client's "connection refused" (seen in the lab: half the new flows
// refused after a death). With it the flow is hashed again, alike on
// every director, to a server that is up. mh-port hashes the source
// port too, so that one client's connections spread over the servers.
var DefaultRoutedSchedulerFlags = []string{"mh-fallback", "mh-port"}

// RoutedSysctls are the IPVS settings routed mode defaults (ipvs.sysctl
// overrides them): a director that ECMP hands an established flow to
// takes it up from any packet, not only a SYN.
var RoutedSysctls = map[string]int{"sloppy_tcp": 1, "sloppy_sctp": 1}

// Families of a BGP peer.
var BGPFamilies = []string{"ipv4", "ipv6"}

// Routed reports whether the node is in routed mode.
func (c *Config) Routed() bool { return c.Routing != nil }

// routing checks and fills in the routing section; vips are the
// instances' VIPs, which a routed VIP may not be.
func (c *checker) routing(cfg *Config, vips map[netip.Addr]string) {
	r := cfg.Routing
	if r == nil {
		return
	}
	const f = "routing"
	switch r.Mode {
	case "bgp", "table":
	case "":
		c.errf(f+".mode", "required: bgp or table")
	default:
		c.errf(f+".mode", "%q is not one of bgp, table", r.Mode)
	}
	if len(r.VIPs) == 0 {
		c.errf(f+".vips", "at least one VIP is needed")
	}
	seen := map[netip.Addr]string{}
	for i, s := range r.VIPs {
		field := fmt.Sprintf("%s.vips[%d]", f, i)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			c.errf(field, "%q is not an IP address (a routed VIP is a host route: no /len)", s)
			continue
		case !a.IsGlobalUnicast() && !a.IsPrivate():
			c.errf(field, "%s is not a unicast address", a)
			continue
		}
		if prev, dup := seen[a]; dup {
			c.errf(field, "%s is listed twice (also %s)", a, prev)
			continue
		}
		if in, dup := vips[a]; dup {
			c.errf(field, "%s is also a VIP of %s: a VIP is either routed or moved by VRRP, not both", a, in)
		}
		seen[a] = field
		r.Addrs = append(r.Addrs, a)
	}
	if r.Device == "" {
		r.Device = DefaultRoutingDevice
	} else if !validIfName(r.Device) {
		c.errf(f+".device", "%q is not a valid interface name", r.Device)
	}
	for _, in := range cfg.Instances {
		if in.Interface == r.Device || in.AddressInterface() == r.Device {
			c.errf(f+".device", "%s is an interface of instance %s; the routed VIPs need a device of their own", r.Device, in.Name)
		}
	}
	if !c.set(f + ".drain_timeout") {
		r.DrainTimeout = Duration(DefaultRoutingDrain)
	} else if d := r.DrainTimeout.D(); d < time.Second || d > time.Hour {
		c.errf(f+".drain_timeout", "must be 1s to 1h, got %s", d)
	}
	switch r.Drain {
	case "":
		r.Drain = "withdraw"
	case "withdraw":
	case "deprefer":
		if r.Mode == "table" {
			c.errf(f+".drain", "deprefer needs mode bgp; in table mode drain withdraws the routes")
		}
	default:
		c.errf(f+".drain", "%q is not one of withdraw, deprefer", r.Drain)
	}
	for i, t := range r.Track {
		if t.Weight != nil && *t.Weight != 0 {
			c.errf(fmt.Sprintf("%s.track[%d].weight", f, i), "a routing track withdraws the VIPs while down; it has no weight (leave it out)")
		}
	}
	if !cfg.IPVS.BackupServices() {
		c.errf("ipvs.services_on_backup", "routed mode serves on every node at once: leave services_on_backup out (or true)")
	}
	if r.Mode == "bgp" {
		c.routingBGP(r, seen)
	} else if r.Mode == "table" {
		c.routingTable(r)
	}
}

// routingBGP checks the BGP fields.
func (c *checker) routingBGP(r *Routing, vips map[netip.Addr]string) {
	const f = "routing"
	if r.RouterID == "" {
		c.errf(f+".router_id", "required in mode bgp: an IPv4 address, usually this node's own")
	} else if a, err := netip.ParseAddr(r.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
		c.errf(f+".router_id", "%q is not an IPv4 address", r.RouterID)
	}
	if r.ASN == 0 {
		c.errf(f+".asn", "required in mode bgp: this node's AS number")
	}
	for _, k := range []string{"table", "protocol", "metric"} {
		if c.set(f + "." + k) {
			c.errf(f+"."+k, "only in mode table")
		}
	}
	if len(r.Peers) == 0 {
		c.errf(f+".peers", "at least one peer is needed in mode bgp")
	}
	annSeen := map[netip.Addr]string{}
	for i := range r.Announce {
		a := &r.Announce[i]
		field := fmt.Sprintf("%s.announce[%d]", f, i)
		addr, err := netip.ParseAddr(a.VIP)
		switch {
		case err != nil:
			c.errf(field+".vip", "%q is not an IP address", a.VIP)
		case vips[addr] == "":
			c.errf(field+".vip", "%s is not one of routing.vips", addr)
		case annSeen[addr] != "":
			c.errf(field+".vip", "%s already has attributes in %s", addr, annSeen[addr])
		default:
			annSeen[addr] = field
			a.Addr = addr
		}
		for j, s := range a.Communities {
			v, err := parseCommunity(s)
			if err != nil {
				c.errf(fmt.Sprintf("%s.communities[%d]", field, j), "%v", err)
				continue
			}
			a.Comms = append(a.Comms, v)
		}
	}
	peers := map[netip.Addr]string{}
	for i := range r.Peers {
		p := &r.Peers[i]
		field := fmt.Sprintf("%s.peers[%d]", f, i)
		a, err := netip.ParseAddr(p.Address)
		switch {
		case p.Address == "":
			c.errf(field+".address", "required")
		case err != nil:
			c.errf(field+".address", "%q is not an IP address", p.Address)
		case peers[a] != "":
			c.errf(field+".address", "%s is already %s", a, peers[a])
		default:
			peers[a] = field
			p.Addr = a
		}
		if p.ASN == 0 {
			c.errf(field+".asn", "required: the peer's AS number")
		}
		if p.PasswordFile != "" && !filepath.IsAbs(p.PasswordFile) {
			c.errf(field+".password_file", "%q must be an absolute path", p.PasswordFile)
		}
		if p.Multihop < 0 || p.Multihop > 255 {
			c.errf(field+".multihop", "must be 0 (directly connected) to 255, got %d", p.Multihop)
		}
		if p.Multihop > 0 && p.ASN == r.ASN {
			c.errf(field+".multihop", "is for eBGP; an iBGP peer (same ASN) needs none")
		}
		if !c.set(field + ".hold") {
			p.Hold = Duration(DefaultBGPHold)
		} else if h := p.Hold.D(); h%time.Second != 0 || h < 3*time.Second || h > 65535*time.Second {
			c.errf(field+".hold", "must be whole seconds, at least 3s (RFC 4271), got %s", h)
		}
		if !c.set(field + ".keepalive") {
			p.Keepalive = Duration(p.Hold.D() / 3)
		} else if k := p.Keepalive.D(); k%time.Second != 0 || k < time.Second || k > p.Hold.D() {
			c.errf(field+".keepalive", "must be whole seconds from 1s to the hold time, got %s", k)
		}
		if len(p.Families) == 0 {
			p.Families = slices.Clone(BGPFamilies)
		}
		fams := map[string]bool{}
		for j, fam := range p.Families {
			ff := fmt.Sprintf("%s.families[%d]", field, j)
			switch {
			case !slices.Contains(BGPFamilies, fam):
				c.errf(ff, "%q is not one of ipv4, ipv6", fam)
			case fams[fam]:
				c.errf(ff, "%s is listed twice", fam)
			}
			fams[fam] = true
		}
		if b := p.BFD; b != nil {
			bf := field + ".bfd"
			if !c.set(bf + ".min_rx") {
				b.MinRx = Duration(DefaultBFDInterval)
			}
			if !c.set(bf + ".min_tx") {
				b.MinTx = Duration(DefaultBFDInterval)
			}
			for k, d := range map[string]time.Duration{"min_rx": b.MinRx.D(), "min_tx": b.MinTx.D()} {
				if d < 10*time.Millisecond || d > time.Minute || d%time.Millisecond != 0 {
					c.errf(bf+"."+k, "must be whole milliseconds from 10ms to 1m, got %s", d)
				}
			}
			if !c.set(bf + ".multiplier") {
				b.Multiplier = DefaultBFDMultiplier
			} else if b.Multiplier < 1 || b.Multiplier > 255 {
				c.errf(bf+".multiplier", "must be 1-255, got %d", b.Multiplier)
			}
		}
	}
}

// routingTable checks the kernel table fields.
func (c *checker) routingTable(r *Routing) {
	const f = "routing"
	for _, k := range []string{"router_id", "asn", "peers", "announce"} {
		if c.set(f + "." + k) {
			c.errf(f+"."+k, "only in mode bgp")
		}
	}
	switch {
	case !c.set(f + ".table"):
		c.errf(f+".table", "required in mode table: the kernel routing table the VIP routes go in, for BIRD or FRR to export")
	case r.Table < 1 || r.Table > maxTable || r.Table == 253 || r.Table == 254 || r.Table == 255:
		c.errf(f+".table", "must be 1-%d, not default (253), main (254) or local (255): a table of its own; got %d", maxTable, r.Table)
	}
	if !c.set(f + ".protocol") {
		r.Protocol = DefaultRouteProtocol
	} else if r.Protocol < 1 || r.Protocol > 255 {
		c.errf(f+".protocol", "must be 1-255, got %d", r.Protocol)
	}
	if r.Metric < 0 || r.Metric > maxTable {
		c.errf(f+".metric", "must be 0 to %d, got %d", maxTable, r.Metric)
	}
}

// parseCommunity reads a standard community, "ASN:VALUE" (each 0-65535),
// or one of the well-known names.
func parseCommunity(s string) (uint32, error) {
	switch strings.ToLower(s) {
	case "no-export":
		return 0xFFFFFF01, nil
	case "no-advertise":
		return 0xFFFFFF02, nil
	case "no-export-subconfed":
		return 0xFFFFFF03, nil
	case "graceful-shutdown":
		return 0xFFFF0000, nil
	case "blackhole":
		return 0xFFFF029A, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		a, err1 := strconv.ParseUint(hi, 10, 16)
		b, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return uint32(a)<<16 | uint32(b), nil
		}
	}
	return 0, fmt.Errorf("%q is not a community: write ASN:VALUE (each 0-65535) or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole", s)
}

// routedDefaults gives routed services their defaults: the mh scheduler
// (with mh-fallback and mh-port) unless one is named, and sloppy TCP/SCTP unless the
// operator set them, so that any director picks the same real server for
// a flow and takes up a flow ECMP moves to it mid-stream.
func (c *checker) routedDefaults(cfg *Config) {
	if cfg.Routing == nil {
		return
	}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if !c.set(fmt.Sprintf("services[%d].scheduler", i)) && s.Scheduler == "" {
			s.Scheduler = DefaultRoutedScheduler
			if !c.set(fmt.Sprintf("services[%d].scheduler_flags", i)) {
				s.SchedulerFlags = slices.Clone(DefaultRoutedSchedulerFlags)
			}
		}
	}
	if cfg.IPVS.Sysctl == nil {
		cfg.IPVS.Sysctl = map[string]int{}
	}
	for k, v := range RoutedSysctls {
		if !c.set("ipvs.sysctl." + k) {
			cfg.IPVS.Sysctl[k] = v
		}
	}
}

// RoutedServices are the services whose VIP (for a group, any address
// member) is vip: those whose quorum decides whether vip is announced.
func (c *Config) RoutedServices(vip netip.Addr) []string {
	var out []string
	for _, s := range c.Services {
		for _, e := range s.Endpoints {
			if e.FWMark == 0 && e.Addr == vip {
				out = append(out, s.Name)
				break
			}
		}
	}
	return out
}

// diffRouting lists what a reload changes in the routing section.
func diffRouting(old, new *Config) []Change {
	o, n := old.Routing, new.Routing
	switch {
	case o == nil && n == nil:
		return nil
	case o == nil:
		return []Change{{What: "routing", How: "added: routed mode (mode " + n.Mode + ")"}}
	case n == nil:
		return []Change{{What: "routing", How: "removed: the VIPs are withdrawn"}}
	}
	var out []Change
	add := func(how string, args ...any) {
		out = append(out, Change{What: "routing", How: fmt.Sprintf(how, args...)})
	}
	if o.Mode != n.Mode {
		add("mode %s -> %s (the routes are moved to the new mode)", o.Mode, n.Mode)
	}
	if !slices.Equal(o.Addrs, n.Addrs) {
		add("vips %v -> %v", o.VIPs, n.VIPs)
	}
	if o.RouterID != n.RouterID || o.ASN != n.ASN {
		add("router_id/asn %s/%d -> %s/%d (the BGP speaker restarts: sessions drop)", o.RouterID, o.ASN, n.RouterID, n.ASN)
	}
	if o.Device != n.Device {
		add("device %s -> %s", o.Device, n.Device)
	}
	if o.Table != n.Table || o.Protocol != n.Protocol || o.Metric != n.Metric {
		add("table/protocol/metric changed")
	}
	if o.DrainTimeout != n.DrainTimeout || o.Drain != n.Drain {
		add("drain settings changed")
	}
	if !reflect.DeepEqual(o.Track, n.Track) {
		add("track changed")
	}
	if !reflect.DeepEqual(o.Announce, n.Announce) {
		add("announce attributes changed (re-announced)")
	}
	op := map[netip.Addr]BGPPeer{}
	for _, p := range o.Peers {
		op[p.Addr] = p
	}
	np := map[netip.Addr]bool{}
	for _, p := range n.Peers {
		np[p.Addr] = true
		q, ok := op[p.Addr]
		switch {
		case !ok:
			add("peer %s added", p.Addr)
		case !reflect.DeepEqual(q, p):
			add("peer %s changed (updated in place)", p.Addr)
		}
	}
	for _, p := range o.Peers {
		if !np[p.Addr] {
			add("peer %s removed", p.Addr)
		}
	}
	return out
}
