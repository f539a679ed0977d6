package vip

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	vip4 = netip.MustParsePrefix("10.0.0.100/24")
	vip6 = netip.MustParsePrefix("2001:db8::100/64")
)

func newTestLocal(t *testing.T, cfg Config) *Local {
	t.Helper()
	if cfg.Interface == "" {
		cfg.Interface = dutIf
	}
	if cfg.Addresses == nil {
		cfg.Addresses = []netip.Prefix{vip4, vip6}
	}
	m, err := NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func (l *lab) take(m *Local) error {
	return l.inDut(func() error { return m.Take(context.Background()) })
}

func (l *lab) release(m *Local) error {
	return l.inDut(func() error { return m.Release(context.Background()) })
}

func (l *lab) announce(m *Local) error {
	return l.inDut(func() error { return m.Announce(context.Background()) })
}

func TestTakeReleaseAddresses(t *testing.T) {
	l := newLab(t, labOptions{})
	m := newTestLocal(t, Config{Label: dutIf + ":vip"})

	for i := range 2 { // the second Take finds the addresses already there
		if err := l.take(m); err != nil {
			t.Fatalf("Take #%d: %v", i+1, err)
		}
		a4, ok := l.findAddr(vip4.Addr())
		if !ok {
			t.Fatalf("after Take #%d: %s missing", i+1, vip4)
		}
		if ones, _ := a4.Mask.Size(); ones != 24 {
			t.Errorf("%s added with /%d", vip4, ones)
		}
		if a4.Label != dutIf+":vip" {
			t.Errorf("%s label %q, want %q", vip4, a4.Label, dutIf+":vip")
		}
		if a4.Flags&unix.IFA_F_SECONDARY == 0 {
			t.Errorf("%s should be secondary to 10.0.0.11/24, flags %#x", vip4, a4.Flags)
		}
		a6, ok := l.findAddr(vip6.Addr())
		if !ok {
			t.Fatalf("after Take #%d: %s missing", i+1, vip6)
		}
		if a6.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 || a6.Flags&unix.IFA_F_NODAD == 0 {
			t.Errorf("%s flags %#x: want NODAD and not tentative", vip6, a6.Flags)
		}
		if ones, _ := a6.Mask.Size(); ones != 64 {
			t.Errorf("%s added with /%d", vip6, ones)
		}
	}

	for i := range 2 { // the second Release finds nothing to remove
		if err := l.release(m); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
		for _, p := range []netip.Prefix{vip4, vip6} {
			if _, ok := l.findAddr(p.Addr()); ok {
				t.Errorf("after Release #%d: %s still present", i+1, p)
			}
		}
		for _, s := range []string{"10.0.0.11", "2001:db8::11"} {
			if _, ok := l.findAddr(netip.MustParseAddr(s)); !ok {
				t.Errorf("after Release #%d: pre-existing %s removed", i+1, s)
			}
		}
	}
}

// A VIP that is the primary address of its subnet must not take other
// addresses of that subnet with it when released.
func TestReleaseKeepsForeignSecondaries(t *testing.T) {
	l := newLab(t, labOptions{})
	l.ip("-n", l.dutName, "addr", "del", "10.0.0.11/24", "dev", dutIf)
	l.sysctl(l.dutNS, "net/ipv4/conf/"+dutIf+"/promote_secondaries", "0")

	second := netip.MustParsePrefix("10.0.0.101/24")
	m := newTestLocal(t, Config{Addresses: []netip.Prefix{vip4, second}})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	if a, _ := l.findAddr(vip4.Addr()); a.Flags&unix.IFA_F_SECONDARY != 0 {
		t.Fatalf("setup: %s should be primary", vip4)
	}

	// Only our own addresses in the subnet: removed secondaries-first,
	// without touching promote_secondaries.
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, second} {
		if _, ok := l.findAddr(p.Addr()); ok {
			t.Errorf("%s still present", p)
		}
	}
	if v := l.readSysctl(l.dutNS, "net/ipv4/conf/"+dutIf+"/promote_secondaries"); v != "0" {
		t.Errorf("promote_secondaries changed to %s without need", v)
	}

	// Now someone else's address is a secondary of our primary VIP.
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	l.ip("-n", l.dutName, "addr", "add", "10.0.0.12/24", "dev", dutIf)
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.findAddr(netip.MustParseAddr("10.0.0.12")); !ok {
		t.Error("foreign secondary 10.0.0.12/24 was removed with the VIP")
	}
	for _, p := range []netip.Prefix{vip4, second} {
		if _, ok := l.findAddr(p.Addr()); ok {
			t.Errorf("%s still present", p)
		}
	}
	if v := l.readSysctl(l.dutNS, "net/ipv4/conf/"+dutIf+"/promote_secondaries"); v != "1" {
		t.Errorf("promote_secondaries = %s, want 1", v)
	}
}

// The property that matters for failover: a neighbour that still points the
// VIP at the old master's MAC switches to ours right after Take.
func TestTakeUpdatesPeerNeighbours(t *testing.T) {
	for _, tc := range []struct {
		name string
		nud  string
		opt  labOptions
	}{
		{"reachable", "reachable", labOptions{}},
		{"stale", "stale", labOptions{}},
		{"no link-local", "reachable", labOptions{noLinkLocal: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, tc.opt)
			// A long ARP locktime: a non-gratuitous update of an entry
			// changed moments ago would be ignored for 10 s.
			l.ip("-n", l.peerName, "ntable", "change", "name", "arp_cache", "dev", peerIf, "locktime", "10000")
			for _, p := range []netip.Prefix{vip4, vip6} {
				l.setPeerNeigh(p.Addr(), wrongMAC, tc.nud)
				if got, _, _ := l.peerNeigh(p.Addr()); got != wrongMAC {
					t.Fatalf("setup: peer entry for %s is %q", p.Addr(), got)
				}
			}
			m := newTestLocal(t, Config{Count: 1})
			if err := l.take(m); err != nil {
				t.Fatal(err)
			}
			for _, p := range []netip.Prefix{vip4, vip6} {
				if err := l.waitPeerNeigh(p.Addr(), dutMAC, 2*time.Second); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestAnnouncementFormat(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	m := newTestLocal(t, Config{Count: 1})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	g := c.waitCount("garp", vip4.Addr(), 1, 2*time.Second)
	if len(g) != 1 {
		t.Fatalf("got %d GARPs, want 1", len(g))
	}
	if a := g[0]; a.op != arp.OperationRequest || a.dstMAC != "ff:ff:ff:ff:ff:ff" ||
		a.llAddr != dutMAC || a.tha != "00:00:00:00:00:00" || a.dst != vip4.Addr() {
		t.Errorf("GARP %+v: want request, broadcast, sender %s, tha zero, target IP %s", a, dutMAC, vip4.Addr())
	}
	n := c.waitCount("na", vip6.Addr(), 1, 2*time.Second)
	if len(n) != 1 {
		t.Fatalf("got %d NAs, want 1", len(n))
	}
	if a := n[0]; !a.override || a.solicited || a.router || a.llAddr != dutMAC ||
		a.dst != netip.MustParseAddr("ff02::1") || a.src != vip6.Addr() || a.hopLimit != 255 ||
		a.dstMAC != "33:33:00:00:00:01" {
		t.Errorf("NA %+v: want O=1 S=0 R=0, TLLA %s, %s -> ff02::1, hop limit 255", a, dutMAC, vip6.Addr())
	}

	// With IPv6 forwarding on, NAs carry the Router flag as the kernel's do.
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	l.sysctl(l.dutNS, "net/ipv6/conf/"+dutIf+"/forwarding", "1")
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	n = c.waitCount("na", vip6.Addr(), 2, 2*time.Second)
	if len(n) != 2 || !n[1].router {
		t.Errorf("with forwarding: NAs %+v, want a second one with R=1", n)
	}
}

func TestBurstCountAndSpacing(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	const count, spacing = 4, 100 * time.Millisecond
	m := newTestLocal(t, Config{Count: count, Spacing: spacing})
	start := time.Now()
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= spacing {
		t.Errorf("Take took %s: it should not wait for the burst", d)
	}
	for _, k := range []struct {
		kind string
		ip   netip.Addr
	}{{"garp", vip4.Addr()}, {"na", vip6.Addr()}} {
		got := c.waitCount(k.kind, k.ip, count, 3*time.Second)
		if len(got) != count {
			t.Fatalf("%s: got %d announcements, want %d", k.kind, len(got), count)
		}
		// Receive-side timestamps jitter; the sender never sends early.
		if span := got[count-1].at.Sub(got[0].at); span < (count-1)*spacing-30*time.Millisecond {
			t.Errorf("%s: burst spans %s, want about %s", k.kind, span, (count-1)*spacing)
		}
	}
	// No more than Count.
	time.Sleep(2 * spacing)
	for _, kind := range []string{"garp", "na"} {
		ip := vip4.Addr()
		if kind == "na" {
			ip = vip6.Addr()
		}
		if n := len(c.matching(kind, ip)); n != count {
			t.Errorf("%s: %d announcements after the burst, want %d", kind, n, count)
		}
	}
}

// Release stops a running burst before removing the addresses.
func TestReleaseStopsBurst(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	const count = 100
	m := newTestLocal(t, Config{Count: count, Spacing: 20 * time.Millisecond})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	c.waitCount("garp", vip4.Addr(), 3, 2*time.Second)
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let frames already sent arrive
	n := len(c.matching("garp", vip4.Addr()))
	time.Sleep(300 * time.Millisecond)
	if n2 := len(c.matching("garp", vip4.Addr())); n2 != n || n >= count {
		t.Errorf("GARPs: %d after Release, %d later; want no more after Release and fewer than %d", n, n2, count)
	}
	if err := l.announce(m); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Announce after Release: %v, want ErrNotHeld", err)
	}
}

func TestRefresh(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	m := newTestLocal(t, Config{Count: 1, Refresh: 100 * time.Millisecond})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	// 1 from Take, then one per Refresh.
	if got := c.waitCount("garp", vip4.Addr(), 4, 2*time.Second); len(got) < 4 {
		t.Fatalf("got %d GARPs with refresh, want at least 4", len(got))
	}
	if got := c.waitCount("na", vip6.Addr(), 4, 2*time.Second); len(got) < 4 {
		t.Fatalf("got %d NAs with refresh, want at least 4", len(got))
	}
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	n := len(c.matching("garp", vip4.Addr()))
	time.Sleep(350 * time.Millisecond)
	if n2 := len(c.matching("garp", vip4.Addr())); n2 != n {
		t.Errorf("refresh went on after Release: %d then %d GARPs", n, n2)
	}

	// Close ends the refresh too, and keeps the addresses.
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	n = len(c.matching("garp", vip4.Addr()))
	time.Sleep(350 * time.Millisecond)
	if n2 := len(c.matching("garp", vip4.Addr())); n2 != n {
		t.Errorf("refresh went on after Close: %d then %d GARPs", n, n2)
	}
	if _, ok := l.findAddr(vip4.Addr()); !ok {
		t.Error("Close removed the address")
	}
	if err := l.take(m); !errors.Is(err, ErrClosed) {
		t.Errorf("Take after Close: %v, want ErrClosed", err)
	}
	if err := l.release(m); err != nil {
		t.Errorf("Release after Close: %v", err)
	}
	if _, ok := l.findAddr(vip4.Addr()); ok {
		t.Error("Release after Close left the address")
	}
}

func TestAnnounceRepeatsBurst(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	m := newTestLocal(t, Config{Count: 2, Spacing: time.Millisecond})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	if got := c.waitCount("garp", vip4.Addr(), 2, 2*time.Second); len(got) != 2 {
		t.Fatalf("after Take: %d GARPs, want 2", len(got))
	}
	if err := l.announce(m); err != nil {
		t.Fatal(err)
	}
	if got := c.waitCount("na", vip6.Addr(), 4, 2*time.Second); len(got) != 4 {
		t.Fatalf("after Announce: %d NAs, want 4", len(got))
	}
}

func TestTakeErrors(t *testing.T) {
	l := newLab(t, labOptions{})

	m := newTestLocal(t, Config{Interface: "nosuch0"})
	err := l.take(m)
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Take on a missing interface: %v, want an error naming it", err)
	}
	// Nothing to release on a missing interface.
	if err := l.release(m); err != nil {
		t.Errorf("Release on a missing interface: %v", err)
	}

	// IPv6 disabled: the IPv6 VIP fails, the IPv4 one is still taken.
	l.sysctl(l.dutNS, "net/ipv6/conf/"+dutIf+"/disable_ipv6", "1")
	m = newTestLocal(t, Config{})
	err = l.take(m)
	if err == nil || !strings.Contains(err.Error(), "add "+vip6.String()+" to "+dutIf+": ") {
		t.Errorf("Take with IPv6 disabled: %v, want an error naming %s and %s", err, vip6, dutIf)
	}
	if _, ok := l.findAddr(vip4.Addr()); !ok {
		t.Errorf("%s not taken", vip4)
	}
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.findAddr(vip4.Addr()); ok {
		t.Errorf("%s not released", vip4)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Take(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Take with a cancelled context: %v", err)
	}
}

func TestNewLocalValidates(t *testing.T) {
	good := []netip.Prefix{vip4}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no interface", Config{Addresses: good}},
		{"long interface", Config{Interface: "abcdefghijklmnop", Addresses: good}},
		{"bad interface", Config{Interface: "eth0:1", Addresses: good}},
		{"elsewhere", Config{Interface: "eth0", Addresses: good, Elsewhere: []Placed{{vip6, "eth1"}}}},
		{"invalid prefix", Config{Interface: "eth0", Addresses: []netip.Prefix{{}}}},
		{"multicast", Config{Interface: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("224.0.0.18/32")}}},
		{"loopback", Config{Interface: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("::1/128")}}},
		{"mapped", Config{Interface: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.1/128")}}},
		{"duplicate", Config{Interface: "eth0", Addresses: []netip.Prefix{vip4, netip.MustParsePrefix("10.0.0.100/32")}}},
		{"negative count", Config{Interface: "eth0", Addresses: good, Count: -1}},
		{"negative spacing", Config{Interface: "eth0", Addresses: good, Spacing: -1}},
		{"negative refresh", Config{Interface: "eth0", Addresses: good, Refresh: -1}},
		{"foreign label", Config{Interface: "eth0", Addresses: good, Label: "eth1:vip"}},
		{"long label", Config{Interface: "eth0", Addresses: good, Label: "eth0:abcdefghijk"}},
	} {
		if _, err := NewLocal(tc.cfg); err == nil {
			t.Errorf("%s: NewLocal accepted %+v", tc.name, tc.cfg)
		}
	}

	m, err := NewLocal(Config{Interface: "eth0", Addresses: good, Label: "eth0:vip"})
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.Count != DefaultCount || m.cfg.Spacing != DefaultSpacing || m.cfg.Logger == nil {
		t.Errorf("defaults not applied: %+v", m.cfg)
	}
	if err := m.Announce(context.Background()); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Announce before Take: %v, want ErrNotHeld", err)
	}
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.100":       "10.0.0.100/32",
		"10.0.0.100/24":    "10.0.0.100/24",
		"2001:db8::100":    "2001:db8::100/128",
		"2001:db8::100/64": "2001:db8::100/64",
	} {
		got, err := ParseAddress(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.300", "10.0.0.1/33", "eth0"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", in)
		}
	}
}

// isOurs must match exactly the configured addresses.
func TestIsOurs(t *testing.T) {
	m, err := NewLocal(Config{Interface: "eth0", Addresses: []netip.Prefix{vip4, vip6}})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"10.0.0.100/24":     true,
		"10.0.0.100/32":     false, // IPv4 is keyed by address and prefix length
		"10.0.0.101/24":     false,
		"2001:db8::100/64":  true,
		"2001:db8::100/128": true, // IPv6 by address
		"2001:db8::101/64":  false,
	} {
		a := netlink.Addr{IPNet: prefixToIPNet(netip.MustParsePrefix(s))}
		if got := m.isOurs(a); got != want {
			t.Errorf("isOurs(%s) = %v, want %v", s, got, want)
		}
	}
}

// A reload's new VIP is added next to the held ones and a dropped one is
// removed, without touching the address that stays.
func TestSetAddresses(t *testing.T) {
	l := newLab(t, labOptions{})
	extra := netip.MustParsePrefix("10.0.0.101/24")
	m := newTestLocal(t, Config{Addresses: []netip.Prefix{vip4}})
	// Not held: only remembered.
	if err := l.inDut(func() error { return m.SetAddresses(context.Background(), []netip.Prefix{vip4, extra}) }); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.findAddr(extra.Addr()); ok {
		t.Fatalf("%s added while not held", extra)
	}
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, extra} {
		if _, ok := l.findAddr(p.Addr()); !ok {
			t.Fatalf("after Take: %s missing", p)
		}
	}
	if err := l.inDut(func() error { return m.SetAddresses(context.Background(), []netip.Prefix{extra, vip6}) }); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.findAddr(vip4.Addr()); ok {
		t.Errorf("dropped %s still present", vip4)
	}
	for _, p := range []netip.Prefix{extra, vip6} {
		if _, ok := l.findAddr(p.Addr()); !ok {
			t.Errorf("after SetAddresses: %s missing", p)
		}
	}
	if err := l.release(m); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, extra, vip6} {
		if _, ok := l.findAddr(p.Addr()); ok {
			t.Errorf("after Release: %s still present", p)
		}
	}
}

// liveOnceCtx is live for its first Err call (Take's check on entry) and
// cancelled from then on: the caller gave up while Take added the
// addresses.
type liveOnceCtx struct {
	context.Context
	calls atomic.Int32
}

func (c *liveOnceCtx) Err() error {
	if c.calls.Add(1) == 1 {
		return nil
	}
	return context.Canceled
}

// A Take whose caller gave up while it added the addresses keeps them but
// announces nothing (the node stepped down meanwhile); the next Take
// announces. Frames arrive in order, so once the second Take's one GARP
// is seen, any from the first would have been seen before it.
func TestTakeCancelledBeforeAnnouncing(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	m := newTestLocal(t, Config{Count: 1})
	err := l.inDut(func() error { return m.Take(&liveOnceCtx{Context: context.Background()}) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Take cancelled midway: %v, want context.Canceled", err)
	}
	if _, ok := l.findAddr(vip4.Addr()); !ok {
		t.Error("the cancelled Take did not keep the address it added")
	}
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	c.waitCount("garp", vip4.Addr(), 1, 3*time.Second)
	if n := len(c.matching("garp", vip4.Addr())); n != 1 {
		t.Errorf("%d GARPs, want 1: the cancelled Take announced", n)
	}
}

// Quiet stops a running burst and keeps the addresses. A marker GARP
// from a second mover, sent after Quiet returned, arrives after every
// frame sent before it.
func TestQuietStopsBurstKeepsAddresses(t *testing.T) {
	l := newLab(t, labOptions{})
	c := l.capturePeer()
	const count = 100
	m := newTestLocal(t, Config{Count: count, Spacing: 20 * time.Millisecond})
	if err := l.take(m); err != nil {
		t.Fatal(err)
	}
	c.waitCount("garp", vip4.Addr(), 3, 2*time.Second)
	m.Quiet()
	if _, ok := l.findAddr(vip4.Addr()); !ok {
		t.Error("Quiet removed the address")
	}
	marker := netip.MustParsePrefix("10.0.0.101/24")
	mk := newTestLocal(t, Config{Count: 1, Addresses: []netip.Prefix{marker}})
	if err := l.take(mk); err != nil {
		t.Fatal(err)
	}
	c.waitCount("garp", marker.Addr(), 1, 3*time.Second)
	n := len(c.matching("garp", vip4.Addr()))
	if err := l.release(mk); err != nil {
		t.Fatal(err)
	}
	if err := l.take(mk); err != nil {
		t.Fatal(err)
	}
	c.waitCount("garp", marker.Addr(), 2, 3*time.Second)
	if n2 := len(c.matching("garp", vip4.Addr())); n2 != n || n >= count {
		t.Errorf("GARPs for the quiet address: %d by the first marker, %d by the second; want no more after Quiet", n, n2)
	}
}
