package labplan

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Routed plans (Params.Routed): N active directors behind a router's
// ECMP, each announcing the VIP by BGP, with direct server return. The
// client sits on its own network (ClientBridge) behind the router; the
// router, the directors and the real servers share the main segment, and
// the real servers answer the client through the router.
//
//	client 10.2.0.2 --br2-- 10.2.0.1 router 10.0.0.1 --br0-- lb1..lb3 10.0.0.11-13
//	                                                         rs1, rs2 10.0.0.21-22
//
// The router runs FRR (zebra, bgpd, bfdd) from Debian with Linux ECMP and
// layer-4 hashing (fib_multipath_hash_policy=1), AS RouterASN; director
// lbN is AS 65010+N and peers with 10.0.0.1.
type Routed struct {
	// Announcer is who speaks BGP for a director: AnnounceDirector
	// (director's own routing: block) or AnnounceFRR, a stand-in FRR in
	// each director's namespace announcing the VIP while it is on the
	// director's vip0, where director holds it by a VRRP instance of its
	// own (for a director without routed mode).
	Announcer string `json:"announcer"`
	// BFD at 100 ms x BFDMultiplier (zero: 3) between the router and
	// each director.
	BFD           bool `json:"bfd,omitempty"`
	BFDMultiplier int  `json:"bfd_multiplier,omitempty"`
	// Hold and Keepalive are the BGP timers (zero: 9 s and 3 s).
	Hold      Duration `json:"hold,omitempty"`
	Keepalive Duration `json:"keepalive,omitempty"`
	// Directors is how many directors the plan starts (1-3; zero: 3).
	Directors int `json:"directors,omitempty"`
}

// Who speaks BGP for the directors (Routed.Announcer).
const (
	AnnounceDirector = "director"
	AnnounceFRR      = "frr"
)

// RouterASN is the router's AS; director lbN's is 65010+N.
const RouterASN = 65000

// Addresses of routed plans.
var (
	// RouterClientSide is the router's eth1 on the client network,
	// RoutedClientIPv4 the client's address there.
	RouterClientSide = p4("10.2.0.1/24")
	RoutedClientIPv4 = p4("10.2.0.2/24")
	// RouterAddr is the router's address on the main segment: the
	// directors' BGP peer and the real servers' default gateway.
	RouterAddr = netip.MustParseAddr("10.0.0.1")
)

// VIPDevice is the dummy device holding the VIP on a director in FRR
// stand-in plans; VIPDeviceAddr(node) is its own address there.
const VIPDevice = "vip0"

// VIPDeviceAddr is an address of node's vip0 besides the VIP, so that a
// VRRP instance on it has a source address.
func VIPDeviceAddr(node string) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(routedIndex(node))}), 32)
}

// routedIndex is 1 for lb1, 2 for lb2, 3 for lb3, 0 otherwise.
func routedIndex(node string) int {
	switch node {
	case LB1:
		return 1
	case LB2:
		return 2
	case LB3:
		return 3
	}
	return 0
}

// ASN is director node's AS in routed plans.
func ASN(node string) int { return 65010 + routedIndex(node) }

// LBs are the load balancers plans with params p run: lb1 and lb2, and
// lb3 in routed plans.
func (p Params) LBs() []string {
	if p.Routed != nil {
		return []string{LB1, LB2, LB3}
	}
	return []string{LB1, LB2}
}

// FRRHosts are the hosts whose namespace runs FRR: the router, and with
// the FRR stand-in every director.
func (p Params) FRRHosts() []string {
	if p.Routed == nil {
		return nil
	}
	if p.Routed.Announcer == AnnounceFRR {
		return []string{Router, LB1, LB2, LB3}
	}
	return []string{Router}
}

// FRRConfigFile is host's FRR configuration in the run directory.
func FRRConfigFile(host string) string { return host + ".frr.conf" }

func (r *Routed) timers() (hold, keepalive time.Duration) {
	hold, keepalive = 9*time.Second, 3*time.Second
	if r.Hold > 0 {
		hold = r.Hold.D()
	}
	if r.Keepalive > 0 {
		keepalive = r.Keepalive.D()
	}
	return hold, keepalive
}

func (r *Routed) validate(p Params) error {
	var errs []error
	if r.Announcer != AnnounceDirector && r.Announcer != AnnounceFRR {
		errs = append(errs, fmt.Errorf("routed: announcer %q: want %q or %q", r.Announcer, AnnounceDirector, AnnounceFRR))
	}
	if r.Directors < 0 || r.Directors > 3 {
		errs = append(errs, fmt.Errorf("routed: %d directors: want 1-3", r.Directors))
	}
	hold, ka := r.timers()
	if hold < 3*time.Second || ka <= 0 || ka > hold {
		errs = append(errs, fmt.Errorf("routed: hold %v, keepalive %v: want hold >= 3s and 0 < keepalive <= hold", hold, ka))
	}
	if p.IPVS == nil {
		errs = append(errs, errors.New("routed: the directors need IPVS services"))
	}
	if p.Gateway || p.EC2 || p.VMAC || p.Idle != nil {
		errs = append(errs, errors.New("routed: no gateway, EC2, VMAC or idle services"))
	}
	return errors.Join(errs...)
}

// multiplier is the BFD detection multiplier.
func (r *Routed) multiplier() int {
	if r.BFDMultiplier > 0 {
		return r.BFDMultiplier
	}
	return 3
}

// bfdProfile is FRR's BFD profile of routed plans: 100 ms x multiplier.
func (r *Routed) bfdProfile() string {
	return fmt.Sprintf("bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier %d\n !\n!\n", r.multiplier())
}

// RouterFRRConf is the router's FRR configuration: eBGP with each
// director, multipath across different ASes (as-path multipath-relax),
// no policy needed to accept (ebgp-requires-policy off), BFD when asked.
func RouterFRRConf(p Params) string {
	r := p.Routed
	hold, ka := r.timers()
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname %s\nlog stdout informational\n!\n", Router)
	if r.BFD {
		b.WriteString(r.bfdProfile())
	}
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n", RouterASN, RouterAddr)
	for _, n := range []string{LB1, LB2, LB3} {
		h, _ := HostByName(n)
		a := h.IPv4.Addr()
		// Passive: the directors connect, so the two sides never
		// collide opening the session (which in a loaded guest kept
		// sessions from coming up for tens of seconds).
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s passive\n neighbor %s timers %d %d\n neighbor %s advertisement-interval 0\n",
			a, ASN(n), a, a, int(ka.Seconds()), int(hold.Seconds()), a)
		if r.BFD {
			fmt.Fprintf(&b, " neighbor %s bfd profile fast\n", a)
		}
	}
	b.WriteString(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n")
	return b.String()
}

// DirectorFRRConf is the FRR stand-in's configuration on director node:
// it announces the VIP while the VIP is on the node (a connected route
// from vip0; FRR's import check).
func DirectorFRRConf(p Params, node string) string {
	r := p.Routed
	hold, ka := r.timers()
	h, _ := HostByName(node)
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname %s\nlog stdout informational\n!\n", node)
	if r.BFD {
		b.WriteString(r.bfdProfile())
	}
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n", ASN(node), h.IPv4.Addr())
	fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers %d %d\n neighbor %s timers connect 1\n neighbor %s advertisement-interval 0\n",
		RouterAddr, RouterASN, RouterAddr, int(ka.Seconds()), int(hold.Seconds()), RouterAddr, RouterAddr)
	if r.BFD {
		fmt.Fprintf(&b, " neighbor %s bfd profile fast\n", RouterAddr)
	}
	fmt.Fprintf(&b, " address-family ipv4 unicast\n  network %s/32\n exit-address-family\n!\n", VIP4.Addr())
	return b.String()
}

// FRRConfigs are the FRR configuration files of plans with params p, by
// file name in the run directory.
func FRRConfigs(p Params) map[string]string {
	out := map[string]string{}
	for _, h := range p.FRRHosts() {
		if h == Router {
			out[FRRConfigFile(h)] = RouterFRRConf(p)
		} else {
			out[FRRConfigFile(h)] = DirectorFRRConf(p, h)
		}
	}
	return out
}

// directorRouting renders a routed director's VIP part: with the FRR
// stand-in, a VRRP instance alone on vip0 (always master: nobody else is
// there) holding the VIP as a /32; with director's own BGP, the routing:
// block.
func directorRouting(b *strings.Builder, p Params, node string) {
	r := p.Routed
	h, _ := HostByName(node)
	if r.Announcer == AnnounceFRR {
		fmt.Fprintf(b, "instances:\n  - name: %s\n    interface: %s\n    vrid: %d\n    priority: 150\n    version: 3\n    advert_interval: 1s\n", InstanceName, VIPDevice, VRID)
		fmt.Fprintf(b, "    vips: [%s/32]\n", VIP4.Addr())
		return
	}
	hold, ka := r.timers()
	fmt.Fprintf(b, "routing:\n  mode: bgp\n  vips: [%s]\n  router_id: %s\n  asn: %d\n  drain_timeout: %s\n", VIP4.Addr(), h.IPv4.Addr(), ASN(node), RoutedDrainTimeout)
	fmt.Fprintf(b, "  announce: [{vip: %s}]\n", VIP4.Addr())
	fmt.Fprintf(b, "  peers:\n    - {address: %s, asn: %d, hold: %s, keepalive: %s, families: [ipv4]", RouterAddr, RouterASN, hold, ka)
	if r.BFD {
		fmt.Fprintf(b, ", bfd: {enabled: true, min_rx: 100ms, min_tx: 100ms, multiplier: %d}", r.multiplier())
	}
	b.WriteString("}\n")
}

// RoutedDrainTimeout is the directors' routing.drain_timeout in routed
// plans.
const RoutedDrainTimeout = 20 * time.Second
