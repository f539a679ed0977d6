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
