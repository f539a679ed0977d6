package vip

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/director-lb/director/internal/testwait"
)

const (
	dut2If   = "side0"
	peer2If  = "side1"
	dut2MAC  = "02:00:5e:00:00:21"
	peer2MAC = "02:00:5e:00:00:22"
)

// addSide adds a second segment to the lab: dut side0 <-> peer side1, with
// 192.168.5.11/24 and 192.168.5.2/24.
func (l *lab) addSide() {
	l.t.Helper()
	l.ip("-n", l.dutName, "link", "add", dut2If, "address", dut2MAC, "type", "veth",
		"peer", "name", peer2If, "address", peer2MAC, "netns", l.peerName)
	l.ip("-n", l.dutName, "addr", "add", "192.168.5.11/24", "dev", dut2If)
	l.ip("-n", l.peerName, "addr", "add", "192.168.5.2/24", "dev", peer2If)
	l.ip("-n", l.dutName, "link", "set", dut2If, "up")
	l.ip("-n", l.peerName, "link", "set", peer2If, "up")
}

// addrsOn lists the dut addresses of ifname as prefixes.
func (l *lab) addrsOn(ifname string) map[netip.Prefix]bool {
	l.t.Helper()
	h := l.handle(l.dutNS)
	link, err := h.LinkByName(ifname)
	if err != nil {
		l.t.Fatal(err)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[netip.Prefix]bool{}
	for _, a := range addrs {
		out[ipNetToPrefix(a.IPNet)] = true
	}
	return out
}

func TestSetMovesEveryInterface(t *testing.T) {
	l := newLab(t, labOptions{})
	l.addSide()
	side := netip.MustParsePrefix("192.168.5.100/24")
	// The peer believes the side VIP is elsewhere until our announcement,
	// which must come out of side0 with side0's MAC.
	l.ip("-n", l.peerName, "ntable", "change", "name", "arp_cache", "dev", peer2If, "locktime", "10000")
	l.ip("-n", l.peerName, "neigh", "replace", side.Addr().String(), "lladdr", wrongMAC, "dev", peer2If, "nud", "reachable")

	s, err := NewSet(Config{
		Interface: dutIf,
		Addresses: []netip.Prefix{vip4},
		Elsewhere: []Placed{{side, dut2If}},
		Count:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := l.inDut(func() error { return s.Take(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	if on := l.addrsOn(dutIf); !on[vip4] || on[side] {
		t.Errorf("%s has %v, want %s and not %s", dutIf, on, vip4, side)
	}
	if on := l.addrsOn(dut2If); !on[side] || on[vip4] {
		t.Errorf("%s has %v, want %s and not %s", dut2If, on, side, vip4)
	}
	if err := waitNeighOn(l, peer2If, side.Addr(), dut2MAC, 2*time.Second); err != nil {
		t.Error(err)
	}
	var present bool
	if err := l.inDut(func() (err error) { present, err = s.Present(context.Background()); return }); err != nil || !present {
		t.Errorf("Present = %v, %v after Take", present, err)
	}

	if err := l.inDut(func() error { return s.Release(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	if on := l.addrsOn(dut2If); on[side] || !on[netip.MustParsePrefix("192.168.5.11/24")] {
		t.Errorf("after Release %s has %v", dut2If, on)
	}
	if on := l.addrsOn(dutIf); on[vip4] {
		t.Errorf("after Release %s has %v", dutIf, on)
	}
	if err := l.inDut(func() (err error) { present, err = s.Present(context.Background()); return }); err != nil || present {
		t.Errorf("Present = %v, %v after Release", present, err)
	}
}

// An instance without addresses still has a mover: Take, Announce and
// Release succeed and touch nothing, and a reload can add addresses.
func TestSetWithoutAddresses(t *testing.T) {
	l := newLab(t, labOptions{})
	s, err := NewSet(Config{Interface: dutIf, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	before := len(l.addrsOn(dutIf))
	ctx := context.Background()
	// Nothing shows this node was master: a restart must not "keep" it.
	var present bool
	if err := l.inDut(func() (err error) { present, err = s.Present(ctx); return }); err != nil || present {
		t.Errorf("Present = %v, %v with nothing to hold", present, err)
	}
	if err := l.inDut(func() error { return s.Take(ctx) }); err != nil {
		t.Fatalf("Take: %v", err)
	}
	if err := l.inDut(func() error { return s.Announce(ctx) }); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	if got := len(l.addrsOn(dutIf)); got != before {
		t.Errorf("Take without addresses changed %s: %d addresses, had %d", dutIf, got, before)
	}
	if err := l.inDut(func() error { return s.SetAddresses(ctx, []netip.Prefix{vip4}) }); err != nil {
		t.Fatalf("SetAddresses: %v", err)
	}
	if !l.addrsOn(dutIf)[vip4] {
		t.Errorf("SetAddresses while held did not add %s", vip4)
	}
	if err := l.inDut(func() error { return s.Release(ctx) }); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if l.addrsOn(dutIf)[vip4] {
		t.Errorf("Release left %s", vip4)
	}
}

func TestNewSetValidates(t *testing.T) {
	if _, err := NewSet(Config{Interface: dutIf, Addresses: []netip.Prefix{vip4}, Elsewhere: []Placed{{vip4, dut2If}}}); err == nil {
		t.Error("NewSet accepted one address on two interfaces")
	}
	if _, err := NewSet(Config{Interface: dutIf, Elsewhere: []Placed{{vip4, "bad:name"}}}); err == nil {
		t.Error("NewSet accepted a bad interface name")
	}
}

// waitNeighOn waits until the peer's entry for ip on ifname points at mac.
func waitNeighOn(l *lab, ifname string, ip netip.Addr, mac string, within time.Duration) error {
	h := l.handle(l.peerNS)
	link, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	last := "no entry"
	ok := testwait.Until(within, func() bool {
		neighs, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, n := range neighs {
			if got, _ := netip.AddrFromSlice(n.IP); got.Unmap() == ip {
				last = n.HardwareAddr.String()
				return last == mac
			}
		}
		return false
	})
	if !ok {
		return fmt.Errorf("peer neighbour %s on %s: %s, want %s", ip, ifname, last, mac)
	}
	return nil
}
