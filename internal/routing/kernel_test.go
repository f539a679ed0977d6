package routing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsHandle makes a network namespace of the test's own and a netlink
// handle in it; both go at cleanup.
func netnsHandle(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root for network namespaces (run the tests as root)")
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	name := "rtt-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func addrsOf(t *testing.T, h *netlink.Handle, dev string) []netip.Prefix {
	t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, a := range as {
		if p, ok := prefixOf(a.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

func TestDeviceAndTable(t *testing.T) {
	h := netnsHandle(t)
	// A sysctl tree of the test's own: arp_ignore is raised, not lowered.
	sys := t.TempDir()
	arp := filepath.Join(sys, "net/ipv4/conf/all/arp_ignore")
	os.MkdirAll(filepath.Dir(arp), 0o755)
	os.WriteFile(arp, []byte("0\n"), 0o644)

	// A dummy of director's, where the kernel has dummy interfaces; where
	// it has none, the error says to use lo.
	if d, err := EnsureDevice(h, "director0", []netip.Addr{v4, v6}, ""); err == nil {
		if got := addrsOf(t, h, "director0"); len(got) != 2 {
			t.Errorf("director0 addresses %v, want both VIPs", got)
		}
		if err := d.Remove(); err != nil {
			t.Error(err)
		}
	} else if !strings.Contains(err.Error(), "leave routing.device out to use lo") {
		t.Errorf("director0: %v", err)
	}
	// lo: the VIPs join lo's own addresses and someone else's host
	// address, which stay.
	lo, _ := h.LinkByName("lo")
	foreign := &netlink.Addr{IPNet: hostNet(netip.MustParseAddr("192.0.2.7"))}
	if err := h.AddrAdd(lo, foreign); err != nil {
		t.Fatal(err)
	}
	dev, err := EnsureDevice(h, "lo", []netip.Addr{v4, v6}, sys)
	if err != nil {
		t.Fatal(err)
	}
	base := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.0.2.7/32")}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.100/32"), netip.MustParsePrefix("fd00::100/128")}
	sorted := func(ps ...[]netip.Prefix) []netip.Prefix {
		out := slices.Concat(ps...)
		slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		return out
	}
	if got := addrsOf(t, h, "lo"); !slices.Equal(got, sorted(base, want)) {
		t.Fatalf("lo addresses %v, want %v", got, sorted(base, want))
	}
	if b, _ := os.ReadFile(arp); string(b) != "1" {
		t.Errorf("arp_ignore = %q, want 1", b)
	}
	if link, _ := h.LinkByName("lo"); link.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo not brought up")
	}
	// A reload with one VIP fewer removes that one only.
	if err := dev.SetAddresses([]netip.Addr{v4}); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(t, h, "lo"); !slices.Equal(got, sorted(base, want[:1])) {
		t.Fatalf("lo addresses %v, want %v", got, sorted(base, want[:1]))
	}
	if err := dev.SetAddresses([]netip.Addr{v4, v6}); err != nil {
		t.Fatal(err)
	}
	// An interface of another kind is not taken over.
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDevice(h, "br0", nil, ""); err == nil || !strings.Contains(err.Error(), "is a bridge, not a dummy") {
		t.Errorf("a bridge as the VIP device: %v", err)
	}

	// Table mode.
	r := routingCfg(t)
	r.Mode, r.Table, r.Protocol, r.Metric, r.Device = "table", 100, 249, 20, "lo"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A leftover of a crashed run, and a route of someone else's in the
	// same table, which must stay.
	idx, _ := dev.Index()
	leftover := &netlink.Route{Dst: hostNet(netip.MustParseAddr("10.0.0.99")), LinkIndex: idx, Table: 100, Protocol: 249, Scope: netlink.SCOPE_LINK}
	other := &netlink.Route{Dst: hostNet(netip.MustParseAddr("10.0.0.98")), LinkIndex: idx, Table: 100, Protocol: 4, Scope: netlink.SCOPE_LINK}
	for _, nr := range []*netlink.Route{leftover, other} {
		if err := h.RouteAdd(nr); err != nil {
			t.Fatal(err)
		}
	}
	tb := NewTable(h, r, log)
	c := NewController(r, tb, log)
	ctx := context.Background()
	if err := c.Update(ctx, Inputs{}); err != nil {
		t.Fatal(err)
	}
	if got, err := tb.Routes(); err != nil || !slices.Equal(got, want) {
		t.Fatalf("table 100 routes %v (%v), want %v", got, err, want)
	}
	rs, _ := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 100}, netlink.RT_FILTER_TABLE)
	var sawOther bool
	for _, nr := range rs {
		if p, _ := prefixOf(nr.Dst); p.Addr() == netip.MustParseAddr("10.0.0.98") {
			sawOther = true
		}
		if p, _ := prefixOf(nr.Dst); p == want[0] && (nr.Priority != 20 || nr.LinkIndex != idx) {
			t.Errorf("route %v: metric %d dev %d, want 20 and director0", p, nr.Priority, nr.LinkIndex)
		}
	}
	if !sawOther {
		t.Error("another protocol's route in the table was removed")
	}
	// Unfit VIP: its route goes.
	if err := c.Update(ctx, Inputs{QuorumLost: map[netip.Addr][]string{v6: {"web6"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := tb.Routes(); !slices.Equal(got, want[:1]) {
		t.Fatalf("routes %v, want %v", got, want[:1])
	}
	// A reload to another table moves the routes.
	r2 := *r
	r2.Table = 101
	if err := c.SetConfig(ctx, &r2); err != nil {
		t.Fatal(err)
	}
	if got, _ := tb.Routes(); !slices.Equal(got, want[:1]) {
		t.Fatalf("table 101 routes %v, want %v", got, want[:1])
	}
	if old, _ := NewTable(h, r, log).Routes(); len(old) != 0 {
		t.Errorf("table 100 still has %v", old)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := tb.Routes(); len(got) != 0 {
		t.Errorf("routes after close: %v", got)
	}
	if err := dev.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(t, h, "lo"); !slices.Equal(got, sorted(base)) {
		t.Errorf("lo after Remove: %v, want %v", got, base)
	}
}
