package main

import (
	"testing"
)

func TestParseAdvert(t *testing.T) {
	// A VRRPv3 advert: version 3, type 1, VRID 51, priority 150.
	vrrp := []byte{0x31, 51, 150, 1, 0x00, 0x0a, 0, 0, 10, 0, 0, 100}
	ip := append([]byte{0x45, 0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 10, 0, 0, 11, 224, 0, 0, 18}, vrrp...)
	for name, tc := range map[string]struct {
		in         []byte
		ok         bool
		vrid, prio int
	}{
		"with IPv4 header":        {in: ip, ok: true, vrid: 51, prio: 150},
		"bare":                    {in: vrrp, ok: true, vrid: 51, prio: 150},
		"v2":                      {in: append([]byte{0x21}, vrrp[1:]...), ok: true, vrid: 51, prio: 150},
		"step-down":               {in: []byte{0x31, 51, 0, 1, 0, 10, 0, 0}, ok: true, vrid: 51, prio: 0},
		"not an advert":           {in: append([]byte{0x32}, vrrp[1:]...)},
		"version 4 header, short": {in: ip[:18]},
		"short":                   {in: vrrp[:7]},
		"empty":                   {},
		"header only":             {in: ip[:20]},
	} {
		e, ok := parseAdvert(tc.in)
		if ok != tc.ok || (ok && (e.VRID != tc.vrid || e.Priority != tc.prio)) {
			t.Errorf("%s: parseAdvert = %+v, %v; want VRID %d priority %d, %v", name, e, ok, tc.vrid, tc.prio, tc.ok)
		}
	}
}

func FuzzParseAdvert(f *testing.F) {
	f.Add([]byte{0x31, 51, 150, 1, 0x00, 0x0a, 0, 0})
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 255, 112, 0, 0, 10, 0, 0, 11, 224, 0, 0, 18, 0x31, 51, 150, 1, 0, 10, 0, 0})
	f.Add([]byte{0x4f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := parseAdvert(b)
		if ok && (e.VRID < 0 || e.VRID > 255 || e.Priority < 0 || e.Priority > 255) {
			t.Fatalf("parseAdvert(%x) = %+v", b, e)
		}
	})
}
