package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// announcer sends gratuitous ARP and unsolicited Neighbour Advertisements
// for a fixed set of addresses on one interface.
//
// Its sockets are opened by the goroutine that calls openAnnouncer and are
// then used from background goroutines. Sockets stay in the network namespace
// they were created in, so the background goroutines need not care which
// namespace their OS thread is in.
type announcer struct {
	ifname string
	mac    net.HardwareAddr
	ifidx  int
	v4     []netip.Addr
	v6     []netip.Addr
	router bool // IPv6 forwarding is on: NAs carry the Router flag

	arp net.PacketConn // raw AF_PACKET socket; nil without IPv4 addresses
	ndp *ndp.Conn      // raw ICMPv6 socket; nil without IPv6 addresses
}

// openAnnouncer opens the sockets needed to announce addrs on ifname.
func openAnnouncer(ifname string, addrs []netip.Addr) (*announcer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("announce on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce on %s: not an Ethernet interface (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	a := &announcer{ifname: ifname, mac: ifi.HardwareAddr, ifidx: ifi.Index}
	for _, ip := range addrs {
		if ip.Is4() {
			a.v4 = append(a.v4, ip)
		} else {
			a.v6 = append(a.v6, ip)
		}
	}
	if len(a.v4) > 0 {
		// Bound to ARP so the kernel labels our frames correctly, with a
		// filter that drops everything: we only send, and an unread socket
		// would otherwise collect every ARP packet on the segment.
		c, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{
			Filter: dropAll(),
		})
		if err != nil {
			return nil, fmt.Errorf("announce on %s: open ARP socket: %w", ifname, err)
		}
		a.arp = c
	}
	if len(a.v6) > 0 {
		// Bound to "::" rather than a link-local address: right after a
		// carrier change the link-local address may still be tentative (or
		// absent with addr_gen_mode none), but the VIPs are added with
		// NODAD and are usable at once. Each NA is sent from the VIP it
		// announces, as the kernel does for its own unsolicited NAs.
		c, _, err := ndp.Listen(ifi, ndp.Unspecified)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("announce on %s: open ICMPv6 socket: %w", ifname, err)
		}
		// We never read: let no ICMPv6 message queue up on this socket.
		var f ipv6.ICMPFilter
		f.SetAll(true)
		if err := c.SetICMPFilter(&f); err != nil {
			_ = c.Close()
			a.close()
			return nil, fmt.Errorf("announce on %s: set ICMPv6 filter: %w", ifname, err)
		}
		a.ndp = c
		a.router = ipv6Forwarding(ifname)
	}
	return a, nil
}

// fits reports whether a was opened for interface index idx with MAC mac
// and exactly addrs, so that a Take may reuse it.
func (a *announcer) fits(idx int, mac net.HardwareAddr, addrs []netip.Addr) bool {
	if a.ifidx != idx || !bytes.Equal(a.mac, mac) || len(a.v4)+len(a.v6) != len(addrs) {
		return false
	}
	for _, ip := range addrs {
		if !slices.Contains(a.v4, ip) && !slices.Contains(a.v6, ip) {
			return false
		}
	}
	return true
}

// dropAll is a BPF program that accepts no packets.
func dropAll() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(fmt.Sprintf("vip: assemble BPF: %v", err)) // constant program
	}
	return prog
}

// ipv6Forwarding reports whether the interface forwards IPv6. A router that
// sends NAs without the Router flag makes hosts drop it from their default
// router list, so we set it exactly when the kernel would.
func ipv6Forwarding(ifname string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// round sends one announcement for every address.
func (a *announcer) round() error {
	var errs []error
	for _, ip := range a.v4 {
		if err := a.garp(ip); err != nil {
			errs = append(errs, fmt.Errorf("announce %s on %s: %w", ip, a.ifname, err))
		}
	}
	for _, ip := range a.v6 {
		if err := a.unsolicitedNA(ip); err != nil {
			errs = append(errs, fmt.Errorf("announce %s on %s: %w", ip, a.ifname, err))
		}
	}
	return errors.Join(errs...)
}

// garp sends a gratuitous ARP request (sender IP = target IP = ip) to the
// broadcast address. Linux treats it as gratuitous (arp_is_garp) and updates
// an existing neighbour entry even within its locktime. Tested against a
// Linux peer: requests work with any target hardware address, replies only
// with target hardware address = sender's (others are held off by locktime).
// We send only the request form, which RFC 5227 calls an ARP Announcement.
func (a *announcer) garp(ip netip.Addr) error {
	p, err := garpPacket(a.mac, ip)
	if err != nil {
		return err
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      a.mac,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     b,
	}
	fb, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = a.arp.WriteTo(fb, &packet.Addr{HardwareAddr: ethernet.Broadcast})
	return err
}

func garpPacket(mac net.HardwareAddr, ip netip.Addr) (*arp.Packet, error) {
	// Target hardware address zero, as RFC 5227 asks of announcements.
	return arp.NewPacket(arp.OperationRequest, mac, ip, make(net.HardwareAddr, 6), ip)
}

// unsolicitedNA sends a Neighbour Advertisement for ip to all nodes with
// Override set and Solicited clear, so receivers replace the link-layer
// address they have for ip (RFC 4861 7.2.6).
func (a *announcer) unsolicitedNA(ip netip.Addr) error {
	cm := &ipv6.ControlMessage{
		HopLimit: ndp.HopLimit,
		Src:      ip.AsSlice(),
		IfIndex:  a.ifidx,
	}
	return a.ndp.WriteTo(naMessage(a.mac, ip, a.router), cm, netip.IPv6LinkLocalAllNodes())
}

func naMessage(mac net.HardwareAddr, ip netip.Addr, router bool) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Router:        router,
		Override:      true,
		TargetAddress: ip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{
			Direction: ndp.Target,
			Addr:      mac,
		}},
	}
}

// close closes the sockets.
func (a *announcer) close() error {
	var errs []error
	if a.arp != nil {
		errs = append(errs, a.arp.Close())
	}
	if a.ndp != nil {
		errs = append(errs, a.ndp.Close())
	}
	return errors.Join(errs...)
}
