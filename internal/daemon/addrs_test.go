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
