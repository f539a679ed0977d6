package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/labtests/labplan"
)

// guestPath is the PATH for every command: the guest starts with an empty
// environment.
const guestPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run executes argv in the guest's root namespace and returns its combined
// output, failing with that output when the command fails.
func run(ctx context.Context, argv ...string) (string, error) {
	return runIn(ctx, "", nil, argv...)
}

// runIn executes argv inside namespace ns ("" = guest root), with stdin.
func runIn(ctx context.Context, ns string, stdin []byte, argv ...string) (string, error) {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{guestPath}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// buildTopology creates bridge br0 in the guest's root namespace and one
// namespace per lab host, joined to br0 by a veth (host side eth0, bridge
// side v<host>); in gateway plans also br1, the inside segment, with the
// inside host on it and each load balancer's eth1 (bridge side i<host>).
// It uses netlink directly: each "ip" command would cost about 0.1 s in
// the guest.
func buildTopology(p labplan.Params, sysctls map[string]map[string]string) error {
	root, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer root.Close()
	bridges := map[string]*netlink.Bridge{}
	names := []string{labplan.BridgeMain}
	if p.Gateway {
		names = append(names, labplan.InsideBridge)
	}
	if p.Routed != nil {
		names = append(names, labplan.ClientBridge)
	}
	for _, name := range names {
		// Snooping off: VRRP multicast (224.0.0.18, ff02::12) must reach
		// every port whatever the bridge learnt from IGMP/MLD.
		off := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
		if err := root.LinkAdd(br); err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
		if err := root.LinkSetUp(br); err != nil {
			return fmt.Errorf("%s up: %w", name, err)
		}
		bridges[name] = br
	}
	for _, h := range labplan.HostsFor(p) {
		if err := addHost(root, bridges[h.Segment()], h); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if p.Gateway && h.InsideIPv4.IsValid() {
			if err := addInsideLink(root, bridges[labplan.InsideBridge], h); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
		if kv := sysctls[h.Name]; len(kv) > 0 {
			if err := writeSysctls(h.Name, kv); err != nil {
				return err
			}
		}
	}
	if p.Gateway {
		return gatewayRoutes(root)
	}
	if p.Routed != nil {
		return routedTopology(root, bridges[labplan.ClientBridge], p)
	}
	return nil
}

// addInsideLink gives load balancer h its eth1 on the inside segment and
// turns on forwarding: a gateway pair routes between the segments.
func addInsideLink(root *netlink.Handle, br *netlink.Bridge, h labplan.Host) error {
	ns, err := netns.GetFromName(h.Name)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()
	if err := joinBridge(root, br, labplan.InsidePort(h.Name), "eth1", ns); err != nil {
		return err
	}
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer nh.Close()
	eth1, err := nh.LinkByName("eth1")
	if err != nil {
		return fmt.Errorf("eth1: %w", err)
	}
	ipn, err := netlink.ParseIPNet(h.InsideIPv4.String())
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(eth1, &netlink.Addr{IPNet: ipn}); err != nil {
		return fmt.Errorf("add %s: %w", h.InsideIPv4, err)
	}
	if err := nh.LinkSetUp(eth1); err != nil {
		return fmt.Errorf("eth1 up: %w", err)
	}
	return writeSysctls(h.Name, map[string]string{"net/ipv4/ip_forward": "1"})
}

// gatewayRoutes sends the client's traffic for the inside segment through
// the outside VIP, and the inside host's through the inside VIP: whoever
// holds them forwards.
func gatewayRoutes(root *netlink.Handle) error {
	inside, _ := labplan.HostByName(labplan.Inside)
	routes := []struct {
		host string
		dst  *net.IPNet
		via  netip.Addr
	}{
		{labplan.Client, prefixNet(inside.IPv4.Masked()), labplan.VIP4.Addr()},
		{labplan.Inside, nil, labplan.InsideVIP4.Addr()},
	}
	for _, r := range routes {
		ns, err := netns.GetFromName(r.host)
		if err != nil {
			return fmt.Errorf("route in %s: %w", r.host, err)
		}
		nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		ns.Close()
		if err != nil {
			return fmt.Errorf("route in %s: %w", r.host, err)
		}
		err = nh.RouteAdd(&netlink.Route{Dst: r.dst, Gw: r.via.AsSlice()})
		nh.Close()
		if err != nil {
			return fmt.Errorf("route in %s via %s: %w", r.host, r.via, err)
		}
	}
	return nil
}

// joinBridge puts namespace ns on bridge br by a veth: port on the bridge
// side, up, and peer (left down) in ns.
func joinBridge(root *netlink.Handle, br *netlink.Bridge, port, peer string, ns netns.NsHandle) error {
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := root.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s: %w", port, err)
	}
	if err := root.LinkSetMaster(v, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", port, br.Name, err)
	}
	if err := root.LinkSetUp(v); err != nil {
		return fmt.Errorf("bridge port %s up: %w", port, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addHost(root *netlink.Handle, br *netlink.Bridge, h labplan.Host) error {
	ns, err := newNamedNetns(h.Name)
	if err != nil {
		return err
	}
	defer ns.Close()
	// DAD off before eth0 exists, so neither the host's nor (later) the
	// VIP's IPv6 address sits tentative.
	if err := writeSysctls(h.Name, map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
	}); err != nil {
		return err
	}
	if err := joinBridge(root, br, labplan.BridgePort(h.Name), "eth0", ns); err != nil {
		return err
	}

	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0: %w", err)
	}
	type addr struct {
		link   netlink.Link
		prefix string
	}
	addrs := []addr{{eth0, h.IPv4.String()}}
	if h.IPv6.IsValid() {
		addrs = append(addrs, addr{eth0, h.IPv6.String()})
	}
	if h.RealServer {
		// Direct server return: the VIPs on lo, never answered for by ARP.
		addrs = append(addrs,
			addr{lo, labplan.VIP4.Addr().String() + "/32"},
			addr{lo, labplan.VIP6.Addr().String() + "/128"})
	}
	for _, a := range addrs {
		ipn, err := netlink.ParseIPNet(a.prefix)
		if err != nil {
			return err
		}
		if err := nh.AddrAdd(a.link, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("add %s: %w", a.prefix, err)
		}
	}
	for _, l := range []netlink.Link{lo, eth0} {
		if err := nh.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", l.Attrs().Name, err)
		}
	}
	if h.RealServer {
		return writeSysctls(h.Name, map[string]string{
			"net/ipv4/conf/all/arp_ignore":    "1",
			"net/ipv4/conf/eth0/arp_ignore":   "1",
			"net/ipv4/conf/all/arp_announce":  "2",
			"net/ipv4/conf/eth0/arp_announce": "2",
		})
	}
	return writeSysctls(h.Name, map[string]string{"net/ipv6/conf/eth0/accept_dad": "0"})
}

// partitionRules drop VRRP (IP protocol 112) forwarded between the two load
// balancers' bridge ports, and nothing else. Filtering on the bridge catches
// adverts however a daemon sends or receives them (raw IP or packet
// sockets); the UML kernel has nftables' bridge family but not ip/inet.
func partitionRules() string {
	a, b := labplan.BridgePort(labplan.LB1), labplan.BridgePort(labplan.LB2)
	var r strings.Builder
	r.WriteString("table bridge lab_partition {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n")
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		fmt.Fprintf(&r, "    iifname %q oifname %q ip protocol 112 drop\n", pair[0], pair[1])
		fmt.Fprintf(&r, "    iifname %q oifname %q ip6 nexthdr 112 drop\n", pair[0], pair[1])
	}
	r.WriteString("  }\n}\n")
	return r.String()
}

// listenIn opens a TCP listener inside namespace ns.
func listenIn(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s in %s: %w", addr, ns, err)
	}
	return ln, nil
}
