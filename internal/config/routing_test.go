package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const routedBGP = `services:
  - name: web
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.2.21}, {address: 10.0.2.22}]
  - name: web6
    vip: "fd00::100"
    port: 80
    scheduler: wlc
    real_servers: [{address: "fd00:2::21"}]
scripts:
  - {name: chk, command: [/bin/true]}
routing:
  mode: bgp
  vips: [10.0.0.100, "fd00::100"]
  router_id: 10.0.0.11
  asn: 65011
  drain: deprefer
  track:
    - script: chk
  announce:
    - vip: 10.0.0.100
      communities: ["65000:100", no-export]
      local_pref: 200
      med: 10
  peers:
    - address: 10.0.1.1
      asn: 65000
      password_file: /etc/director/bgp-peer.secret
      multihop: 2
      hold: 9s
      keepalive: 3s
      families: [ipv4]
      bfd: {enabled: true, min_rx: 100ms, min_tx: 100ms, multiplier: 3}
    - address: "fd00:1::1"
      asn: 65000
`

func TestRoutingBGP(t *testing.T) {
	cfg := mustParse(t, routedBGP)
	r := cfg.Routing
	if !cfg.Routed() || r.Mode != "bgp" || r.Device != DefaultRoutingDevice || r.DrainTimeout.D() != DefaultRoutingDrain {
		t.Fatalf("routing = %+v", r)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("fd00::100")}; !slices.Equal(r.Addrs, want) {
		t.Errorf("Addrs = %v, want %v", r.Addrs, want)
	}
	a := r.Announce[0]
	if !slices.Equal(a.Comms, []uint32{65000<<16 | 100, 0xFFFFFF01}) || *a.LocalPref != 200 || *a.MED != 10 || a.Addr != r.Addrs[0] {
		t.Errorf("announce = %+v", a)
	}
	p0, p1 := r.Peers[0], r.Peers[1]
	if p0.Hold.D() != 9*time.Second || p0.Keepalive.D() != 3*time.Second || !slices.Equal(p0.Families, []string{"ipv4"}) || p0.BFD.MinRx.D() != 100*time.Millisecond {
		t.Errorf("peer 0 = %+v", p0)
	}
	if p1.Hold.D() != DefaultBGPHold || p1.Keepalive.D() != DefaultBGPHold/3 || !slices.Equal(p1.Families, BGPFamilies) || p1.BFD != nil {
		t.Errorf("peer 1 defaults = %+v", p1)
	}
	// Routed services default to mh with mh-fallback and mh-port, unless they name a
	// scheduler; sloppy TCP and SCTP are on.
	if s := cfg.Services[0]; s.Scheduler != "mh" || !slices.Equal(s.SchedulerFlags, []string{"mh-fallback", "mh-port"}) {
		t.Errorf("web scheduler = %s %v, want mh [mh-fallback mh-port]", s.Scheduler, s.SchedulerFlags)
	}
	if s := cfg.Services[1]; s.Scheduler != "wlc" || len(s.SchedulerFlags) != 0 {
		t.Errorf("web6 scheduler = %s %v, want wlc as configured", s.Scheduler, s.SchedulerFlags)
	}
	if cfg.IPVS.Sysctl["sloppy_tcp"] != 1 || cfg.IPVS.Sysctl["sloppy_sctp"] != 1 {
		t.Errorf("sysctl = %v, want sloppy_tcp and sloppy_sctp 1", cfg.IPVS.Sysctl)
	}
	if got := cfg.RoutedServices(r.Addrs[1]); !slices.Equal(got, []string{"web6"}) {
		t.Errorf("RoutedServices(fd00::100) = %v", got)
	}
	// An operator's sysctl wins over routed mode's default.
	cfg = mustParse(t, routedBGP+"ipvs:\n  sysctl: {sloppy_tcp: 0}\n")
	if cfg.IPVS.Sysctl["sloppy_tcp"] != 0 || cfg.IPVS.Sysctl["sloppy_sctp"] != 1 {
		t.Errorf("sysctl = %v, want the configured sloppy_tcp 0", cfg.IPVS.Sysctl)
	}
}

func TestRoutingTable(t *testing.T) {
	cfg := mustParse(t, `services:
  - {name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}
routing:
  mode: table
  vips: [10.0.0.100]
  table: 100
  drain_timeout: 5s
`)
	r := cfg.Routing
	if r.Table != 100 || r.Protocol != DefaultRouteProtocol || r.Drain != "withdraw" || r.DrainTimeout.D() != 5*time.Second {
		t.Errorf("routing = %+v", r)
	}
}

func TestRoutingRoundTrip(t *testing.T) {
	c := mustParse(t, routedBGP)
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

func TestRoutingErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"routing: {mode: ospf, vips: [10.0.0.100]}", "t.yaml:1: routing.mode: \"ospf\" is not one of bgp, table"},
		{"routing: {mode: bgp, vips: [10.0.0.100/32], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2}]}", "routing.vips[0]: \"10.0.0.100/32\" is not an IP address"},
		{"routing: {mode: bgp, vips: [10.0.0.100], asn: 1, peers: [{address: 10.0.1.1, asn: 2}]}", "routing.router_id: required in mode bgp"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 'fd00::1', asn: 1, peers: [{address: 10.0.1.1, asn: 2}]}", "routing.router_id: \"fd00::1\" is not an IPv4 address"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1}", "routing.peers: at least one peer"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, table: 100, peers: [{address: 10.0.1.1, asn: 2}]}", "routing.table: only in mode table"},
		{"routing: {mode: table, vips: [10.0.0.100]}", "routing.table: required in mode table"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 254}", "routing.table: must be 1-4294967295, not default (253), main (254)"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 100, asn: 5}", "routing.asn: only in mode bgp"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 100, drain: deprefer}", "routing.drain: deprefer needs mode bgp"},
		{"routing: {mode: table, vips: [10.0.0.100, 10.0.0.100], table: 100}", "routing.vips[1]: 10.0.0.100 is listed twice"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 100, drain_timeout: 100ms}", "routing.drain_timeout: must be 1s to 1h"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 100, track: [{script: nope}]}", "routing.track[0].script: \"nope\" is not the name of any of scripts"},
		{"routing: {mode: table, vips: [10.0.0.100], table: 100, track: [{interface: eth1, weight: -10}]}", "routing.track[0].weight: a routing track withdraws the VIPs while down"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, announce: [{vip: 10.0.0.101}], peers: [{address: 10.0.1.1, asn: 2}]}", "routing.announce[0].vip: 10.0.0.101 is not one of routing.vips"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, announce: [{vip: 10.0.0.100, communities: ['70000:1']}], peers: [{address: 10.0.1.1, asn: 2}]}", "routing.announce[0].communities[0]: \"70000:1\" is not a community"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, hold: 2s}]}", "routing.peers[0].hold: must be whole seconds, at least 3s"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, hold: 9s, keepalive: 10s}]}", "routing.peers[0].keepalive: must be whole seconds from 1s to the hold time"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, families: [ipv5]}]}", "routing.peers[0].families[0]: \"ipv5\" is not one of ipv4, ipv6"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, password_file: secret}]}", "routing.peers[0].password_file: \"secret\" must be an absolute path"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 1, multihop: 2}]}", "routing.peers[0].multihop: is for eBGP"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, bfd: {enabled: true, min_rx: 1ms}}]}", "routing.peers[0].bfd.min_rx: must be whole milliseconds from 10ms"},
		{"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 1, peers: [{address: 10.0.1.1, asn: 2, bgp_port: 179}]}", "bgp_port: unknown field"},
		{"ipvs: {services_on_backup: false}\nrouting: {mode: table, vips: [10.0.0.100], table: 100}", "ipvs.services_on_backup: routed mode serves on every node"},
		{"instances: [{name: web, interface: eth0, vrid: 1, vips: [10.0.0.100/24]}]\nrouting: {mode: table, vips: [10.0.0.100], table: 100}", "routing.vips[0]: 10.0.0.100 is also a VIP of instances[0]"},
	} {
		y := tc.yaml
		if !strings.Contains(y, "services:") {
			y += "\nservices: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]\n"
		}
		_, err := Parse("t.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n got: %v\nwant: %s", tc.yaml, err, tc.want)
		}
	}
}

func TestRoutingDiff(t *testing.T) {
	old := mustParse(t, routedBGP)
	next := mustParse(t, strings.Replace(strings.Replace(routedBGP, "hold: 9s", "hold: 12s", 1), "med: 10", "med: 20", 1))
	var got []string
	for _, c := range Diff(old, next) {
		got = append(got, c.String())
	}
	want := []string{"routing: announce attributes changed (re-announced)", "routing: peer 10.0.1.1 changed (updated in place)"}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
}
