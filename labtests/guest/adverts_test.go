package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/director-lb/director/vrrp"
)

var (
	advertSrc = netip.MustParseAddr("10.0.0.11")
	advertDst = netip.MustParseAddr("224.0.0.18")
)

// advertIPv4 is a VRRPv3 advert with priority prio as a raw IPv4 socket
// reads it: an IPv4 header to 224.0.0.18, then the message.
func advertIPv4(t testing.TB, prio uint8) []byte {
	t.Helper()
	p := &vrrp.Packet{Version: vrrp.V3, VRID: 51, Priority: prio, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
	msg, err := p.Marshal(advertSrc, advertDst)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{0x45, 0, 0, byte(20 + len(msg)), 0, 0, 0, 0, 255, 112, 0, 0, 10, 0, 0, 11, 224, 0, 0, 18}
	return append(hdr, msg...)
}

func TestParseAdvert(t *testing.T) {
	good := advertIPv4(t, 150)
	bad := advertIPv4(t, 150)
	bad[len(bad)-1] ^= 1 // the checksum no longer matches
	for name, tc := range map[string]struct {
		in         []byte
		ok         bool
		vrid, prio int
	}{
		"advert":          {in: good, ok: true, vrid: 51, prio: 150},
		"step-down":       {in: advertIPv4(t, 0), ok: true, vrid: 51, prio: 0},
		"bad checksum":    {in: bad},
		"no IPv4 header":  {in: good[20:]},
		"header only":     {in: good[:20]},
		"short header":    {in: good[:18]},
		"header too long": {in: append([]byte{0x4f}, good[1:24]...)},
		"empty":           {},
	} {
		e, ok := parseAdvert(tc.in, advertSrc)
		if ok != tc.ok || (ok && (e.VRID != tc.vrid || e.Priority != tc.prio)) {
			t.Errorf("%s: parseAdvert = %+v, %v; want VRID %d priority %d, %v", name, e, ok, tc.vrid, tc.prio, tc.ok)
		}
	}
}

func FuzzParseAdvert(f *testing.F) {
	f.Add(advertIPv4(f, 150))
	f.Add([]byte{0x4f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := parseAdvert(b, advertSrc)
		if ok && (e.VRID < 1 || e.VRID > 255 || e.Priority < 0 || e.Priority > 255) {
			t.Fatalf("parseAdvert(%x) = %+v", b, e)
		}
	})
}
