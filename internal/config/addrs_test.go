package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestVIPDev(t *testing.T) {
	y := "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [10.0.0.100/24, \"192.168.5.1/24 dev eth1\"]\n"
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	want := []PlacedVIP{
		{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Dev: "eth0"},
		{Prefix: netip.MustParsePrefix("192.168.5.1/24"), Dev: "eth1"},
	}
	if len(in.Placed) != 2 || in.Placed[0] != want[0] || in.Placed[1] != want[1] {
		t.Errorf("placed = %v, want %v", in.Placed, want)
	}
	// Both are advertised: dev says where an address lives, not whether
	// the peers hear of it.
	if len(in.Addresses) != 2 {
		t.Errorf("advertised = %v, want both", in.Addresses)
	}
	if in.OnlyOwnInterface() {
		t.Error("OnlyOwnInterface with a dev VIP")
	}
	for _, bad := range []struct{ vip, msg string }{
		{"10.0.0.1 dev", `want "address[/len]" or "address[/len] dev IFACE"`},
		{"10.0.0.1 label eth0:1", `want "address[/len]"`},
		{"10.0.0.1 dev eth0:1", `"eth0:1" is not a valid interface name`},
		{"10.0.0.1 dev averyveryverylongname", "not a valid interface name"},
		{"nope dev eth1", `"nope" is not an address`},
	} {
		y := "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [\"" + bad.vip + "\"]\n"
		_, err := Parse("d.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), "instances[0].vips[0]") || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%q: err = %v, want %q", bad.vip, err, bad.msg)
		}
	}
}
