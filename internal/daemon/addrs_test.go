package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/internal/vip"
)

// A VIP with "dev" goes to the mover as an address of that interface, and
// is advertised like the others.
func TestVIPOnAnotherInterface(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24, "192.168.5.1/24 dev eth1"]}
`)
	l := localOf(t, h.mustRunning("web"))
	if a := l.cfg.Addresses; !slices.Equal(a, []netip.Prefix{netip.MustParsePrefix("10.0.0.100/24")}) {
		t.Errorf("mover addresses on eth0 = %v", a)
	}
	want := []vip.Placed{{Prefix: netip.MustParsePrefix("192.168.5.1/24"), Interface: "eth1"}}
	if e := l.cfg.Elsewhere; !slices.Equal(e, want) {
		t.Errorf("mover addresses elsewhere = %v, want %v", e, want)
	}
	c := h.e.conn(t, "eth0")
	testwait.Eventually(t, patience, "an advert", func() bool { return c.lastSent(51) != nil })
	adv := []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("192.168.5.1")}
	if got := c.lastSent(51).Addresses; !slices.Equal(got, adv) {
		t.Errorf("advert carries %v, want %v", got, adv)
	}
}

// Excluded VIPs move with the others but never appear in adverts: the
// advert's list is what a keepalived peer compares with its own.
func TestExcludedVIPsStayOutOfAdverts(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - name: web
    interface: eth0
    vrid: 51
    advert_interval: 20ms
    vips: [10.0.0.100/24]
    vips_excluded: [10.0.0.101/24, "2001:db8::100/64", "192.168.5.1/24 dev eth1"]
`)
	l := localOf(t, h.mustRunning("web"))
	own := []netip.Prefix{netip.MustParsePrefix("10.0.0.100/24"), netip.MustParsePrefix("10.0.0.101/24"), netip.MustParsePrefix("2001:db8::100/64")}
	if a := l.cfg.Addresses; !slices.Equal(a, own) {
		t.Errorf("mover addresses on eth0 = %v, want %v", a, own)
	}
	want := []vip.Placed{{Prefix: netip.MustParsePrefix("192.168.5.1/24"), Interface: "eth1"}}
	if e := l.cfg.Elsewhere; !slices.Equal(e, want) {
		t.Errorf("mover addresses elsewhere = %v, want %v", e, want)
	}
	testwait.Eventually(t, patience, "holding the VIPs", l.Held)
	c := h.e.conn(t, "eth0")
	testwait.Eventually(t, patience, "an advert", func() bool { return c.lastSent(51) != nil })
	if got := c.lastSent(51).Addresses; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.0.0.100")}) {
		t.Errorf("advert carries %v, want only 10.0.0.100", got)
	}
}

// An instance without VIPs (v2, as keepalived allows) runs, becomes master
// and advertises an empty address list; unicast without a source opens a
// unicast socket that picks its own address.
func TestNoVIPsAndUnicastWithoutSource(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - {name: bare, interface: eth0, vrid: 51, version: 2, unicast: {peers: [10.0.0.12]}}
`)
	c := h.e.conn(t, "eth0")
	if c.opts.Multicast || c.opts.Source.IsValid() || c.opts.Family != 4 {
		t.Errorf("socket options %+v, want IPv4 unicast with no source given", c.opts)
	}
	testwait.Eventually(t, patience, "an advert", func() bool { return c.lastSent(51) != nil })
	if p := c.lastSent(51); len(p.Addresses) != 0 || p.Version != 2 {
		t.Errorf("advert %+v, want v2 with no addresses", p)
	}
	l := localOf(t, h.mustRunning("bare"))
	if len(l.cfg.Addresses) != 0 || len(l.cfg.Elsewhere) != 0 {
		t.Errorf("mover config %+v, want no addresses", l.cfg)
	}
}

// Routes and rules reach the mover, which moves them with the VIPs.
func TestRoutesAndRulesReachTheMover(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - name: web
    interface: eth0
    vrid: 51
    advert_interval: 20ms
    vips: [10.0.0.100/24]
    routes: [{to: default, via: 10.0.0.1, table: 100}, {to: 192.168.60.0/24, src: 10.0.0.100, metric: 5}]
    rules: [{from: 10.0.0.100, table: 100, priority: 1000}]
`)
	l := localOf(t, h.mustRunning("web"))
	wantRoutes := []vip.Route{
		{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.0.1"), Table: 100},
		{To: netip.MustParsePrefix("192.168.60.0/24"), Dev: "eth0", Src: netip.MustParseAddr("10.0.0.100"), Metric: 5},
	}
	if !slices.Equal(l.cfg.Routes, wantRoutes) {
		t.Errorf("mover routes = %v, want %v", l.cfg.Routes, wantRoutes)
	}
	wantRules := []vip.Rule{{From: netip.MustParsePrefix("10.0.0.100/32"), Table: 100, Priority: 1000, Family: 4}}
	if !slices.Equal(l.cfg.Rules, wantRules) {
		t.Errorf("mover rules = %v, want %v", l.cfg.Rules, wantRules)
	}
}
