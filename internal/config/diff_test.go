package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func mustParse(t *testing.T, y string) *Config {
	t.Helper()
	c, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiff(t *testing.T) {
	old := mustParse(t, svcBase+"  - {name: gone, vip: 10.0.0.100, port: 443, real_servers: [{address: 10.0.0.21}]}\n")
	y := strings.Replace(svcBase, "{address: 10.0.0.21, weight: 3}", "{address: 10.0.0.21, weight: 5}", 1)
	y = strings.Replace(y, "      - {address: 10.0.0.22}\n", "      - {address: 10.0.0.23}\n", 1)
	y = strings.Replace(y, "vips: [10.0.0.100/24]}", "vips: [10.0.0.100/24], priority: 120}\n  - {name: api, interface: eth0, vrid: 52, vips: [10.0.0.101]}", 1)
	y = "log_level: debug\n" + y
	next := mustParse(t, y)
	var got []string
	for _, c := range Diff(old, next) {
		got = append(got, c.String())
	}
	want := []string{
		"log_level: info -> debug",
		"instance web: priority 100 -> 120",
		"instance api: added",
		"service http: real server 10.0.0.21:80 weight 3 -> 5",
		"service http: real server 10.0.0.23:80 added",
		"service http: real server 10.0.0.22:80 removed (drained)",
		"service gone: removed (drained)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(Diff(old, old)) != 0 {
		t.Error("a configuration differs from itself")
	}
}

func TestCompareInstance(t *testing.T) {
	a := mustParse(t, svcBase).Instances[0]
	b := a
	if CompareInstance(&a, &b) != InstanceSame {
		t.Error("same")
	}
	b.Priority = 200
	if CompareInstance(&a, &b) != InstanceLive {
		t.Error("priority only")
	}
	b.VIPs = append(slices.Clone(a.VIPs), "10.0.0.101/24")
	b.Addresses = append(slices.Clone(a.Addresses), netip.MustParsePrefix("10.0.0.101/24"))
	b.Placed = append(slices.Clone(a.Placed), PlacedVIP{Prefix: netip.MustParsePrefix("10.0.0.101/24"), Dev: a.Interface})
	if CompareInstance(&a, &b) != InstanceLive {
		t.Error("priority and an added VIP")
	}
	d := b
	d.VIPs = append(slices.Clone(b.VIPs), "10.0.0.102/24 dev eth1")
	d.Addresses = append(slices.Clone(b.Addresses), netip.MustParsePrefix("10.0.0.102/24"))
	d.Placed = append(slices.Clone(b.Placed), PlacedVIP{Prefix: netip.MustParsePrefix("10.0.0.102/24"), Dev: "eth1"})
	if CompareInstance(&b, &d) != InstanceRestart {
		t.Error("a VIP on another interface needs a restart")
	}
	c := b
	c.VIPs, c.Addresses = []string{"fd00::100/64"}, []netip.Prefix{netip.MustParsePrefix("fd00::100/64")}
	if CompareInstance(&a, &c) != InstanceRestart {
		t.Error("a VIP of the other family needs a restart")
	}
	b.VRID = 9
	if CompareInstance(&a, &b) != InstanceRestart {
		t.Error("restart")
	}
}

// The daemon hands its running configuration out as YAML (for validate's
// diff); it must read back the same.
func TestMarshalRoundTrip(t *testing.T) {
	for _, y := range []string{svcBase, good} {
		c := mustParse(t, y)
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back := mustParse(t, string(out))
		back.File = c.File
		if d := Diff(c, back); len(d) != 0 {
			t.Errorf("round trip changed %v\n%s", d, out)
		}
	}
}

func TestDiffAPI(t *testing.T) {
	o := API{Listen: "10.0.0.11:9443", Peer: "10.0.0.12:9443", PeerTokenFile: "/etc/director/peer.token",
		TLS: &APITLS{CertFile: "/etc/director/lb1.crt", KeyFile: "/etc/director/lb1.key", CAFile: "/etc/director/ca.crt"}}
	n := o
	n.Listen = "10.0.0.11:9444"
	n.TLS = &APITLS{CertFile: "/etc/director/lb1.crt", KeyFile: "/etc/director/lb1.key", CAFile: "/etc/director/ca2.crt"}
	var got []string
	for _, c := range Diff(&Config{API: o}, &Config{API: n}) {
		got = append(got, c.String())
	}
	want := []string{
		"api.listen: 10.0.0.11:9443 -> 10.0.0.11:9444",
		"api.tls.ca_file: /etc/director/ca.crt -> /etc/director/ca2.crt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Diff(&Config{API: o}, &Config{API: o}); len(d) != 0 {
		t.Errorf("same api: %v", d)
	}
}
