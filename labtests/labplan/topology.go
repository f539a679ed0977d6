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
)

// Addresses on the shared segment.
var (
	VIP4 = netip.MustParsePrefix("10.0.0.100/24")
	VIP6 = netip.MustParsePrefix("fd00::100/64")
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
}

// Hosts returns the lab topology: a client, two load balancers and two real
// servers on one L2 segment.
func Hosts() []Host {
	return []Host{
		{Name: Client, IPv4: p4("10.0.0.2/24"), IPv6: p6("fd00::2/64")},
		{Name: LB1, IPv4: p4("10.0.0.11/24"), IPv6: p6("fd00::11/64"), HTTP: true},
		{Name: LB2, IPv4: p4("10.0.0.12/24"), IPv6: p6("fd00::12/64"), HTTP: true},
		{Name: RS1, IPv4: p4("10.0.0.21/24"), IPv6: p6("fd00::21/64"), HTTP: true, RealServer: true},
		{Name: RS2, IPv4: p4("10.0.0.22/24"), IPv6: p6("fd00::22/64"), HTTP: true, RealServer: true},
		{Name: Sorry, IPv4: p4("10.0.0.30/24"), IPv6: p6("fd00::30/64"), HTTP: true, RealServer: true},
		// The fake EC2 region (EC2 plans only run something there).
		{Name: AWS, IPv4: p4("10.0.0.40/24"), IPv6: p6("fd00::40/64")},
	}
}

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
