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

func TestVIPsExcluded(t *testing.T) {
	y := `instances:
  - name: web
    interface: eth0
    vrid: 51
    version: 2
    vips: [10.0.0.100/24]
    vips_excluded: [10.0.0.101/24, "2001:db8::100/64", "192.168.5.1/24 dev eth1"]
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	if len(in.Addresses) != 1 || in.Addresses[0] != netip.MustParsePrefix("10.0.0.100/24") {
		t.Errorf("advertised = %v, want only 10.0.0.100/24", in.Addresses)
	}
	want := []PlacedVIP{
		{netip.MustParsePrefix("10.0.0.100/24"), "eth0"},
		{netip.MustParsePrefix("10.0.0.101/24"), "eth0"},
		{netip.MustParsePrefix("2001:db8::100/64"), "eth0"},
		{netip.MustParsePrefix("192.168.5.1/24"), "eth1"},
	}
	if len(in.Placed) != len(want) {
		t.Fatalf("placed = %v, want %v", in.Placed, want)
	}
	for i := range want {
		if in.Placed[i] != want[i] {
			t.Errorf("placed[%d] = %v, want %v", i, in.Placed[i], want[i])
		}
	}
	if in.Family() != 4 || in.OnlyOwnInterface() {
		t.Errorf("family %d, only own interface %v", in.Family(), in.OnlyOwnInterface())
	}

	for _, bad := range []struct{ y, msg string }{
		{"    vips: [10.0.0.1]\n    vips_excluded: [10.0.0.1/24]\n", "instances[0].vips_excluded[0]: 10.0.0.1 is listed twice (also instances[0].vips[0])"},
		{"    vips: [10.0.0.1]\n    vips_excluded: [nope]\n", `instances[0].vips_excluded[0]: "nope" is not an address`},
		{"    vips: [10.0.0.1, '2001:db8::1']\n", "use one family per instance (or list it under vips_excluded)"},
		{"    vips: [" + v6List(91) + "]\n", "at most 90 IPv6 VIPs fit"},
	} {
		y := "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n" + bad.y
		if _, err := Parse("d.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err = %v, want %q", bad.y, err, bad.msg)
		}
	}
	if _, err := Parse("d.yaml", []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: ["+v6List(90)+"]\n")); err != nil {
		t.Errorf("90 IPv6 VIPs: %v", err)
	}

	// An excluded VIP is still unique across instances.
	y = `instances:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1]}
  - {name: b, interface: eth0, vrid: 2, vips: [10.0.0.2], vips_excluded: [10.0.0.1]}
`
	if _, err := Parse("d.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), "instances[1].vips_excluded[0]: VIP 10.0.0.1 is already in instances[0]") {
		t.Errorf("duplicate excluded VIP: %v", err)
	}
}

func v6List(n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}).String()
	}
	return "'" + strings.Join(out, "', '") + "'"
}

func TestNoVIPsAndUnicastWithoutSource(t *testing.T) {
	y := `instances:
  - {name: a, interface: eth0, vrid: 1, version: 2}
  - {name: b, interface: eth0, vrid: 2, version: 2, vips_excluded: ['2001:db8::1']}
  - {name: c, interface: eth1, vrid: 3, unicast: {peers: ['fe80::2']}, vips: ['2001:db8::3']}
  - {name: d, interface: eth1, vrid: 4, version: 2, unicast: {peers: [10.1.0.12]}}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := &cfg.Instances[0], &cfg.Instances[1], &cfg.Instances[2], &cfg.Instances[3]
	if len(a.Placed) != 0 || len(a.Addresses) != 0 || a.Family() != 4 {
		t.Errorf("a: placed %v, advertised %v, family %d", a.Placed, a.Addresses, a.Family())
	}
	if len(b.Addresses) != 0 || len(b.Placed) != 1 || b.Family() != 4 {
		t.Errorf("b: placed %v, advertised %v, family %d", b.Placed, b.Addresses, b.Family())
	}
	if c.Unicast.SourceAddr.IsValid() || len(c.Unicast.PeerAddrs) != 1 || c.Family() != 6 {
		t.Errorf("c: unicast %+v, family %d", c.Unicast, c.Family())
	}
	if d.Family() != 4 {
		t.Errorf("d: family %d, want 4 from its peer", d.Family())
	}

	for _, bad := range []struct{ y, msg string }{
		{"  - {name: a, interface: eth0, vrid: 1}\n", "instances[0].vips: at least one VIP is needed with VRRP version 3"},
		{"  - {name: a, interface: eth0, vrid: 1, vips_excluded: [10.0.0.1]}\n", "an instance without advertised VIPs must use version 2"},
		{"  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1], unicast: {peers: ['fe80::2']}}\n", "instances[0].unicast.peers[0]: fe80::2 is not the same address family"},
		{"  - {name: a, interface: eth0, vrid: 1, version: 2, unicast: {peers: [10.0.0.2]}, ec2: {}}\n", "instances[0].ec2: moves the VIPs listed under vips; this instance has none"},
	} {
		if _, err := Parse("d.yaml", []byte("instances:\n"+bad.y)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err = %v, want %q", bad.y, err, bad.msg)
		}
	}
}

func TestRoutesAndRules(t *testing.T) {
	y := `instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [10.0.0.100/24]
    routes:
      - {to: 192.168.50.0/24, via: 10.0.0.1}
      - {to: default, via: 10.0.0.1, table: 100, metric: 10}
      - {to: 192.168.60.7, src: 10.0.0.100}
      - {to: default, via: 'fe80::1', dev: eth1}
    rules:
      - {from: 10.0.0.100, table: 100, priority: 1000}
      - {to: 192.168.70.0/24, table: 100}
      - {from: all, table: 101}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	r := in.Routes
	if r[0].ToPrefix != netip.MustParsePrefix("192.168.50.0/24") || r[0].ViaAddr != netip.MustParseAddr("10.0.0.1") || r[0].Dev != "" {
		t.Errorf("route 0 = %+v", r[0])
	}
	if r[1].ToPrefix != netip.MustParsePrefix("0.0.0.0/0") || r[1].Table != 100 || r[1].Metric != 10 {
		t.Errorf("route 1 = %+v", r[1])
	}
	// Neither via nor dev: the instance's interface.
	if r[2].ToPrefix != netip.MustParsePrefix("192.168.60.7/32") || r[2].Dev != "eth0" || r[2].SrcAddr != netip.MustParseAddr("10.0.0.100") {
		t.Errorf("route 2 = %+v", r[2])
	}
	// default follows the family of via, not the instance's.
	if r[3].ToPrefix != netip.MustParsePrefix("::/0") || r[3].Dev != "eth1" {
		t.Errorf("route 3 = %+v", r[3])
	}
	u := in.Rules
	if u[0].FromPrefix != netip.MustParsePrefix("10.0.0.100/32") || u[0].ToPrefix.IsValid() || u[0].Family != 4 || u[0].Priority != 1000 {
		t.Errorf("rule 0 = %+v", u[0])
	}
	if u[1].ToPrefix != netip.MustParsePrefix("192.168.70.0/24") || u[1].FromPrefix.IsValid() {
		t.Errorf("rule 1 = %+v", u[1])
	}
	if u[2].FromPrefix.IsValid() || u[2].Family != 4 || u[2].Table != 101 {
		t.Errorf("rule 2 = %+v", u[2])
	}

	for _, bad := range []struct{ y, msg string }{
		{"routes: [{via: 10.0.0.1}]", "instances[0].routes[0].to: required"},
		{"routes: [{to: nope, via: 10.0.0.1}]", `instances[0].routes[0].to: "nope" is not an address`},
		{"routes: [{to: 10.1.0.0/16, via: 'fe80::1'}]", "instances[0].routes[0].via: fe80::1 is not of the family of 10.1.0.0/16"},
		{"routes: [{to: 10.1.0.0/16, src: x}]", `instances[0].routes[0].src: "x" is not an IP address`},
		{"routes: [{to: 10.1.0.0/16, dev: 'a b'}]", `instances[0].routes[0].dev: "a b" is not a valid interface name`},
		{"routes: [{to: 10.1.0.0/16, table: -1}]", "instances[0].routes[0].table: must be 0 (main)"},
		{"rules: [{from: 10.0.0.1}]", "instances[0].rules[0].table: required"},
		{"rules: [{from: 10.0.0.1, to: '2001:db8::/32', table: 5}]", "instances[0].rules[0].to: 2001:db8::/32 is not of the family of 10.0.0.1/32"},
		{"rules: [{from: 10.0.0.1, table: 5, priority: -2}]", "instances[0].rules[0].priority: must be 0"},
		{"routes: [{to: 10.1.0.0/16, gateway: 10.0.0.1}]", "gateway"},
	} {
		y := "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [10.0.0.100/24]\n    " + bad.y + "\n"
		if _, err := Parse("d.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err = %v, want %q", bad.y, err, bad.msg)
		}
	}
}

func TestVMACConfig(t *testing.T) {
	y := `instances:
  - {name: a, interface: eth0, vrid: 51, vmac: true, vips: [10.0.0.100/24, "10.1.0.1/24 dev eth1"]}
  - {name: b, interface: eth0, vrid: 52, vmac: true, vmac_name: vb, vmac_xmit_base: true, vips: [10.0.0.101/24]}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Instances[0], cfg.Instances[1]
	if a.VMACName != "vrrp.51" || a.AddressInterface() != "vrrp.51" || a.Placed[0].Dev != "vrrp.51" || a.Placed[1].Dev != "eth1" {
		t.Errorf("a: vmac %q, placed %v", a.VMACName, a.Placed)
	}
	if b.VMACName != "vb" || !b.OnlyOwnInterface() {
		t.Errorf("b: vmac %q, placed %v", b.VMACName, b.Placed)
	}
	for _, bad := range []struct{ y, msg string }{
		{"  - {name: a, interface: eth0, vrid: 1, vmac_name: x, vips: [10.0.0.1]}\n", "instances[0].vmac_name: needs vmac: true"},
		{"  - {name: a, interface: eth0, vrid: 1, vmac_xmit_base: true, vips: [10.0.0.1]}\n", "instances[0].vmac_xmit_base: needs vmac: true"},
		{"  - {name: a, interface: eth0, vrid: 1, vmac: true, vmac_name: eth0, vips: [10.0.0.1]}\n", "is the VRRP interface itself"},
		{"  - {name: a, interface: eth0, vrid: 1, vmac: true, vmac_name: 'a/b', vips: [10.0.0.1]}\n", "not a valid interface name"},
		{"  - {name: a, interface: eth0, vrid: 1, vmac: true, vips: [10.0.0.1]}\n  - {name: b, interface: eth1, vrid: 1, vmac: true, vips: [10.0.0.2]}\n", "instances[1].vmac_name: vrrp.1 is already the VMAC of instances[0]"},
	} {
		if _, err := Parse("d.yaml", []byte("instances:\n"+bad.y)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err = %v, want %q", bad.y, err, bad.msg)
		}
	}
}

func TestAllowedSources(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte("instances:\n  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.100/24], allowed_sources: [10.0.0.12, 10.0.0.13]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].SourceAddrs; len(got) != 2 || got[1] != netip.MustParseAddr("10.0.0.13") {
		t.Errorf("source addrs %v", got)
	}
	for _, bad := range []struct{ y, msg string }{
		{"  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1], allowed_sources: ['fe80::2']}\n", "instances[0].allowed_sources[0]: fe80::2 is not the same address family"},
		{"  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1], allowed_sources: [10.0.0.2, 10.0.0.2]}\n", "instances[0].allowed_sources[1]: 10.0.0.2 is listed twice"},
		{"  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1], allowed_sources: [nope]}\n", `instances[0].allowed_sources[0]: "nope" is not an IP address`},
		{"  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1], unicast: {peers: [10.0.0.2]}, allowed_sources: [10.0.0.2]}\n", "instances[0].allowed_sources: with unicast, the peers are the allowed sources"},
	} {
		if _, err := Parse("d.yaml", []byte("instances:\n"+bad.y)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%s: err = %v, want %q", bad.y, err, bad.msg)
		}
	}
}
