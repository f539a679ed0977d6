package labplan

import "net/netip"

// Hosts of the lab. Each lives in its own network namespace inside the guest;
// its segment interface is always eth0 and the bridge side of its veth is
// "v"+name (for example vlb1).
const (
	Client = "client"
	LB1    = "lb1"
	LB2    = "lb2"
	RS1    = "rs1"
	RS2    = "rs2"
	// Sorry is the sorry server: a real server (VIP on lo) that no
	// service balances to until quorum is lost.
	Sorry = "sorry"
	// Inside is the one host of the inside segment, the network behind
	// the load balancers when they are a gateway pair (Params.Gateway).
	Inside = "inside"
	// LB3 is the third director and Router the BGP router in front of
	// the directors, built only in routed plans (Params.Routed).
	LB3    = "lb3"
	Router = "router"
)

// BridgeMain is the shared segment's bridge; InsideBridge the inside
// segment's, built only for gateway plans; ClientBridge the client
// network's, built only for routed plans (the router joins it to the
// shared segment).
const (
	BridgeMain   = "br0"
	InsideBridge = "br1"
	ClientBridge = "br2"
)

// Addresses on the shared segment.
var (
	VIP4 = netip.MustParsePrefix("10.0.0.100/24")
	VIP6 = netip.MustParsePrefix("fd00::100/64")
	// InsideVIP4 is the gateway pair's inside VIP: the inside host's
	// default gateway.
	InsideVIP4 = netip.MustParsePrefix("10.1.0.1/24")
)

// Host is one namespace of the lab topology.
type Host struct {
	Name string
	IPv4 netip.Prefix
	IPv6 netip.Prefix
	// HTTP is true when the host runs the lab's HTTP server on :80, which
	// answers every request with the host name.
	HTTP bool
	// RealServer hosts hold the VIPs on lo for direct server return.
	RealServer bool
	// Bridge is the segment of the host's eth0: BridgeMain unless set.
	Bridge string
	// InsideIPv4 is the address of a load balancer's eth1 on the inside
	// segment, in gateway plans.
	InsideIPv4 netip.Prefix
	// RoutedOnly hosts exist only in routed plans.
	RoutedOnly bool
}

// Segment is the bridge h's eth0 is on.
func (h Host) Segment() string {
	if h.Bridge == "" {
		return BridgeMain
	}
	return h.Bridge
}

// Hosts returns the lab topology: a client, two load balancers, the real
// servers, the sorry server and the fake EC2 region on one L2 segment; in
// gateway plans also the inside segment, with the load balancers' eth1 and
// one inside host.
func Hosts() []Host {
	return []Host{
		{Name: Client, IPv4: p4("10.0.0.2/24"), IPv6: p6("fd00::2/64")},
		{Name: LB1, IPv4: p4("10.0.0.11/24"), IPv6: p6("fd00::11/64"), HTTP: true, InsideIPv4: p4("10.1.0.11/24")},
		{Name: LB2, IPv4: p4("10.0.0.12/24"), IPv6: p6("fd00::12/64"), HTTP: true, InsideIPv4: p4("10.1.0.12/24")},
		{Name: RS1, IPv4: p4("10.0.0.21/24"), IPv6: p6("fd00::21/64"), HTTP: true, RealServer: true},
		{Name: RS2, IPv4: p4("10.0.0.22/24"), IPv6: p6("fd00::22/64"), HTTP: true, RealServer: true},
		{Name: Sorry, IPv4: p4("10.0.0.30/24"), IPv6: p6("fd00::30/64"), HTTP: true, RealServer: true},
		// The fake EC2 region (EC2 plans only run something there).
		{Name: AWS, IPv4: p4("10.0.0.40/24"), IPv6: p6("fd00::40/64")},
		// Behind the gateway pair (gateway plans only build its segment).
		{Name: Inside, IPv4: p4("10.1.0.2/24"), HTTP: true, Bridge: InsideBridge},
		// Routed plans only: the third director and the router (its
		// eth1 on the client network is RouterClientSide).
		{Name: LB3, IPv4: p4("10.0.0.13/24"), IPv6: p6("fd00::13/64"), HTTP: true, RoutedOnly: true},
		{Name: Router, IPv4: p4("10.0.0.1/24"), RoutedOnly: true},
	}
}

// Built reports whether plans with params p build host h: the inside
// segment exists only in gateway plans, the router and lb3 only in routed
// ones.
func (h Host) Built(p Params) bool {
	if h.RoutedOnly {
		return p.Routed != nil
	}
	return h.Segment() == BridgeMain || p.Gateway
}

// In is h as plans with params p place it: in routed plans the client
// sits on the client network, behind the router.
func (h Host) In(p Params) Host {
	if p.Routed != nil && h.Name == Client {
		h.IPv4, h.IPv6, h.Bridge = RoutedClientIPv4, netip.Prefix{}, ClientBridge
	}
	return h
}

// HostsFor lists the hosts plans with params p build, placed as they
// place them.
func HostsFor(p Params) []Host {
	var out []Host
	for _, h := range Hosts() {
		if h.Built(p) {
			out = append(out, h.In(p))
		}
	}
	return out
}

// InsidePort is the bridge side of a load balancer's eth1 veth on the
// inside segment (cut it to cut only that link).
func InsidePort(host string) string { return "i" + host }

// HostByName returns the topology entry for name.
func HostByName(name string) (Host, bool) {
	for _, h := range Hosts() {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// BridgePort is the name of the bridge side of a host's veth.
func BridgePort(host string) string { return "v" + host }

func p4(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func p6(s string) netip.Prefix { return netip.MustParsePrefix(s) }
