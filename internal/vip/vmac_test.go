package vip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestVMACAddr(t *testing.T) {
	if got := VMACAddr(51, false).String(); got != "00:00:5e:00:01:33" {
		t.Errorf("IPv4 VMAC for 51 = %s", got)
	}
	if got := VMACAddr(255, true).String(); got != "00:00:5e:00:02:ff" {
		t.Errorf("IPv6 VMAC for 255 = %s", got)
	}
}

func (l *lab) ensureVMAC(cfg VMACConfig) (*VMAC, error) {
	var v *VMAC
	err := l.inDut(func() (err error) { v, err = EnsureVMAC(cfg); return })
	return v, err
}

func TestVMACLifecycle(t *testing.T) {
	l := newLab(t, labOptions{})
	h := l.handle(l.dutNS)
	cfg := VMACConfig{Name: "vrrp.51", Parent: dutIf, VRID: 51}
	v, err := l.ensureVMAC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName("vrrp.51")
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := link.(*netlink.Macvlan)
	if !ok {
		t.Fatalf("vrrp.51 is a %s", link.Type())
	}
	parent, _ := h.LinkByName(dutIf)
	if mv.Mode != netlink.MACVLAN_MODE_PRIVATE || mv.HardwareAddr.String() != "00:00:5e:00:01:33" || mv.ParentIndex != parent.Attrs().Index || mv.Flags&1 == 0 {
		t.Errorf("macvlan mode %v mac %s parent %d (want %d) flags %v", mv.Mode, mv.HardwareAddr, mv.ParentIndex, parent.Attrs().Index, mv.Flags)
	}
	for path, want := range map[string]string{
		"net/ipv4/conf/vrrp.51/arp_ignore":       "1",
		"net/ipv4/conf/vrrp.51/rp_filter":        "0",
		"net/ipv4/conf/vrrp.51/accept_local":     "1",
		"net/ipv6/conf/vrrp.51/disable_ipv6":     "1",
		"net/ipv4/conf/" + dutIf + "/arp_ignore": "1",
		"net/ipv4/conf/" + dutIf + "/arp_filter": "1",
	} {
		if got := l.readSysctl(l.dutNS, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}

	// A second start adopts it: same interface, not recreated.
	if _, err := l.ensureVMAC(cfg); err != nil {
		t.Fatal(err)
	}
	if again, _ := h.LinkByName("vrrp.51"); again.Attrs().Index != link.Attrs().Index {
		t.Error("EnsureVMAC recreated a matching macvlan")
	}
	// One with another VRID's MAC (an edited config) is replaced.
	v52, err := l.ensureVMAC(VMACConfig{Name: "vrrp.51", Parent: dutIf, VRID: 52})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.LinkByName("vrrp.51"); again.Attrs().HardwareAddr.String() != "00:00:5e:00:01:34" {
		t.Errorf("mismatched macvlan kept MAC %s", again.Attrs().HardwareAddr)
	}
	// The old one's Remove leaves the replacement alone, and keeps the
	// parent's settings while a VMAC is on it.
	if err := l.inDut(v.Remove); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("vrrp.51"); err != nil {
		t.Errorf("the replaced VMAC's Remove took the new one: %v", err)
	}
	if got := l.readSysctl(l.dutNS, "net/ipv4/conf/"+dutIf+"/arp_ignore"); got != "1" {
		t.Errorf("parent arp_ignore = %s with a VMAC still on it", got)
	}
	if err := l.inDut(v52.Remove); err != nil {
		t.Fatal(err)
	}
	if err := l.inDut(v.Remove); err != nil { // the one that changed the parent puts it back
		t.Fatal(err)
	}
	if _, err := h.LinkByName("vrrp.51"); !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Errorf("after Remove: %v, want not found", err)
	}
	for _, name := range []string{"arp_ignore", "arp_filter"} {
		if got := l.readSysctl(l.dutNS, "net/ipv4/conf/"+dutIf+"/"+name); got != "0" {
			t.Errorf("parent %s = %s after Remove, want it restored to 0", name, got)
		}
	}
	if err := l.inDut(v.Remove); err != nil {
		t.Errorf("second Remove: %v", err)
	}

	// Never touch an interface of that name that is not a macvlan.
	l.ip("-n", l.dutName, "link", "add", "vrrp.9", "type", "veth", "peer", "name", "vrrp9p")
	if _, err := l.ensureVMAC(VMACConfig{Name: "vrrp.9", Parent: dutIf, VRID: 9}); err == nil || !strings.Contains(err.Error(), "not a macvlan") {
		t.Errorf("EnsureVMAC over a dummy: %v", err)
	}
}

// The master's VIPs on the VMAC are announced from the virtual MAC: the
// peer's ARP entry points at 00:00:5e:00:01:VRID.
func TestVMACAnnouncesVirtualMAC(t *testing.T) {
	l := newLab(t, labOptions{})
	v, err := l.ensureVMAC(VMACConfig{Name: "vrrp.51", Parent: dutIf, VRID: 51})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.inDut(v.Remove) })
	l.ip("-n", l.peerName, "ntable", "change", "name", "arp_cache", "dev", peerIf, "locktime", "10000")
	l.setPeerNeigh(vip4.Addr(), wrongMAC, "reachable")
	s, err := NewSet(Config{Interface: "vrrp.51", Addresses: []netip.Prefix{vip4}, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := l.inDut(func() error { return s.Take(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	if !l.addrsOn("vrrp.51")[vip4] {
		t.Errorf("%s not on vrrp.51", vip4)
	}
	if err := l.waitPeerNeigh(vip4.Addr(), "00:00:5e:00:01:33", 2*time.Second); err != nil {
		t.Error(err)
	}
	// The VIP answers from the virtual MAC too, not from the parent's.
	l.ip("-n", l.peerName, "neigh", "del", vip4.Addr().String(), "dev", peerIf)
	l.ip("-n", l.peerName, "neigh", "flush", "dev", peerIf)
	// Any packet to the VIP makes the peer resolve it. A listener takes
	// it, so that no ICMP error goes back: that would leave through the
	// parent and teach the peer the parent's MAC (see README).
	var sink net.PacketConn
	if err := l.inDut(func() (err error) {
		sink, err = net.ListenPacket("udp4", netip.AddrPortFrom(vip4.Addr(), 9).String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	err = l.inPeer(func() error {
		c, err := net.Dial("udp4", netip.AddrPortFrom(vip4.Addr(), 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.waitPeerNeigh(vip4.Addr(), "00:00:5e:00:01:33", 2*time.Second); err != nil {
		t.Errorf("ARP reply: %v", err)
	}
}

func TestVMACIPv6LinkLocal(t *testing.T) {
	l := newLab(t, labOptions{})
	v, err := l.ensureVMAC(VMACConfig{Name: "vrrp6.51", Parent: dutIf, VRID: 51, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.inDut(v.Remove) })
	h := l.handle(l.dutNS)
	link, _ := h.LinkByName("vrrp6.51")
	if link.Attrs().HardwareAddr.String() != "00:00:5e:00:02:33" {
		t.Errorf("IPv6 VMAC is %s", link.Attrs().HardwareAddr)
	}
	list := func(l netlink.Link) []string {
		addrs, err := h.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range addrs {
			out = append(out, a.IP.String())
		}
		return out
	}
	parent, _ := h.LinkByName(dutIf)
	var parentLL string
	for _, a := range list(parent) {
		if strings.HasPrefix(a, "fe80:") {
			parentLL = a
		}
	}
	// Only the parent's link-local: none made from the virtual MAC.
	if got := list(link); len(got) != 1 || got[0] != parentLL {
		t.Errorf("vrrp6.51 IPv6 addresses %v, want only the parent's link-local %s", got, parentLL)
	}
}
