package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/director-lb/director/internal/config"
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

// fakeVMAC records a VMAC the daemon asked for and whether it was removed.
type fakeVMAC struct {
	cfg     vip.VMACConfig
	removed atomic.Bool
}

func (v *fakeVMAC) Remove() error { v.removed.Store(true); return nil }

func (e *fakeEdges) ensureVMAC(c vip.VMACConfig) (VMACLink, error) {
	if err := e.failure("vmac", c.Name); err != nil {
		return nil, err
	}
	v := &fakeVMAC{cfg: c}
	e.mu.Lock()
	e.vmacs = append(e.vmacs, v)
	e.mu.Unlock()
	return v, nil
}

// With vmac, the VIPs go on the macvlan, the socket is bound to it with
// the parent as the source's interface, and the macvlan is removed with
// the instance, not before: a reload that restarts the instance keeps it.
func TestVMAC(t *testing.T) {
	const y = `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vmac: true, vips: [10.0.0.100/24, "10.1.0.1/24 dev eth1"]}
`
	h := start(t, y)
	h.e.mu.Lock()
	vm := slices.Clone(h.e.vmacs)
	h.e.mu.Unlock()
	if len(vm) != 1 || vm[0].cfg.Name != "vrrp.51" || vm[0].cfg.Parent != "eth0" || vm[0].cfg.VRID != 51 || vm[0].cfg.IPv6 {
		t.Fatalf("VMACs %+v", vm)
	}
	c := h.e.conn(t, "vrrp.51")
	if c.opts.SourceInterface != "eth0" || !c.opts.Multicast {
		t.Errorf("socket options %+v, want multicast on vrrp.51 sourced from eth0", c.opts)
	}
	l := localOf(t, h.mustRunning("web"))
	if l.cfg.Interface != "vrrp.51" || !slices.Equal(l.cfg.Addresses, []netip.Prefix{netip.MustParsePrefix("10.0.0.100/24")}) {
		t.Errorf("mover on %s with %v, want vrrp.51 with 10.0.0.100/24", l.cfg.Interface, l.cfg.Addresses)
	}
	if e := l.cfg.Elsewhere; len(e) != 1 || e[0].Interface != "eth1" {
		t.Errorf("elsewhere %v", e)
	}
	if got := keyOf(&config.Instance{Interface: "eth0", VMAC: true, VMACName: "v", Unicast: &config.Unicast{}}); got.iface != "eth0" || got.sourceIf != "" {
		t.Errorf("unicast VMAC socket key %+v, want the parent's", got)
	}

	// A restart by reload (priority and a route changed) keeps the VMAC
	// until the old instance is gone, and the new one uses the same.
	if _, err := h.apply(strings.Replace(y, "vmac: true,", "vmac: true, routes: [{to: 10.9.0.0/16, via: 10.0.0.1}],", 1)); err != nil {
		t.Fatal(err)
	}
	if vm[0].removed.Load() {
		t.Error("a reload removed the VMAC the restarted instance uses")
	}
	if localOf(t, h.mustRunning("web")) == l {
		t.Fatal("the reload did not restart the instance")
	}
	h.e.mu.Lock()
	n := len(h.e.vmacs)
	h.e.mu.Unlock()
	if n != 1 {
		t.Errorf("%d VMACs ensured, want the one, shared across the restart", n)
	}
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	for _, v := range h.e.vmacs {
		if !v.removed.Load() {
			t.Errorf("VMAC %s not removed at shutdown", v.cfg.Name)
		}
	}
}
