package config

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/ipvs"
)

const svcBase = `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    scheduler: wrr
    real_servers:
      - {address: 10.0.0.21, weight: 3}
      - {address: 10.0.0.22}
`

func TestServicesGood(t *testing.T) {
	y := svcBase + `  - name: dns
    vip: 10.0.0.100
    port: 53
    protocol: udp
    scheduler: sh
    scheduler_flags: [sh-fallback, sh-port]
    forwarding: nat
    persistence: {timeout: 60s, netmask: 255.255.255.0}
    sorry_server: 10.0.0.30
    real_servers:
      - {address: 10.0.0.21, port: 5353, upper_threshold: 100, lower_threshold: 10, forwarding: dr}
  - name: marked
    fwmark: 7
    family: 6
    persistence: {}
    real_servers: [{address: 'fd00::21'}]
ipvs:
  drain_timeout: 30s
  sync: {interface: eth0, sync_id: 5}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	http, dns, mark := cfg.Services[0], cfg.Services[1], cfg.Services[2]
	if http.Protocol != "tcp" || http.Forwarding != "dr" || http.RealServers[1].EffectiveWeight() != 1 || http.RealServers[0].EffectiveWeight() != 3 {
		t.Errorf("http defaults: %+v", http)
	}
	if http.RealServers[0].Port != 80 || http.Addr != netip.MustParseAddr("10.0.0.100") {
		t.Errorf("http real server port/addr: %+v", http)
	}
	if dns.Persistence.Bits != 24 || dns.Persistence.Timeout.D() != time.Minute || dns.Sorry != netip.MustParseAddrPort("10.0.0.30:53") {
		t.Errorf("dns: %+v %+v", dns.Persistence, dns.Sorry)
	}
	if mark.AddrFamily != 6 || mark.Persistence.Bits != 128 || mark.Persistence.Timeout.D() != 300*time.Second || mark.Scheduler != "wlc" {
		t.Errorf("fwmark: %+v", mark)
	}
	if !cfg.IPVS.BackupServices() || cfg.IPVS.DrainTimeout.D() != 30*time.Second || cfg.IPVS.ResyncInterval.D() != DefaultResyncInterval {
		t.Errorf("ipvs: %+v", cfg.IPVS)
	}
	if want := ipvs.DefaultSysctls(); !maps.Equal(cfg.IPVS.Sysctl, want) {
		t.Errorf("sysctl = %v, want the defaults %v", cfg.IPVS.Sysctl, want)
	}
	// The operator's values go over the defaults.
	cfg, err = Parse("d.yaml", []byte(svcBase+"ipvs:\n  sysctl: {conn_reuse_mode: 1, sloppy_tcp: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.IPVS.Sysctl; s["conn_reuse_mode"] != 1 || s["sloppy_tcp"] != 1 || s["expire_nodest_conn"] != 1 {
		t.Errorf("sysctl over defaults = %v", s)
	}
}

func TestServicesBad(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"wrong family", "{address: 10.0.0.22}", "{address: 'fd00::22'}", "d.yaml:10: services[0].real_servers[1].address: fd00::22 is not the same address family"},
		{"duplicate service", "", "  - {name: http2, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.21}]}\n", "d.yaml:11: services[1]: duplicate service: the same as services[0]"},
		{"unknown scheduler", "scheduler: wrr", "scheduler: fastest", `d.yaml:7: services[0].scheduler: unknown scheduler "fastest"`},
		{"real server twice", "{address: 10.0.0.22}", "{address: 10.0.0.21, port: 80}", "d.yaml:10: services[0].real_servers[1].address: real server 10.0.0.21:80 is listed twice"},
		{"routed real server twice", "{address: 10.0.0.22}", "{address: 10.0.0.21, port: 8080}", "d.yaml:10: services[0].real_servers[1].address: 10.0.0.21 is already a real server (services[0].real_servers[0]): with dr forwarding"},
		{"tunnelled real server twice", "{address: 10.0.0.22}", "{address: 10.0.0.21, port: 8080, forwarding: tunnel}", "real_servers[1].address: 10.0.0.21 is already a real server (services[0].real_servers[0]): with tunnel forwarding"},
		{"port out of range", "port: 80", "port: 70000", "d.yaml:6: services[0].port: must be 1-65535, got 70000"},
		{"bad protocol", "port: 80", "port: 80\n    protocol: icmp", `services[0].protocol: "icmp" is not one of`},
		{"flag for other scheduler", "scheduler: wrr", "scheduler: wrr\n    scheduler_flags: [sh-port]", `"sh-port" applies to the sh scheduler, not wrr`},
		{"bad forwarding", "scheduler: wrr", "scheduler: wrr\n    forwarding: magic", `services[0].forwarding: "magic" is not one of`},
		{"no real servers", "    real_servers:\n      - {address: 10.0.0.21, weight: 3}\n      - {address: 10.0.0.22}\n", "", "services[0].real_servers: at least one real server"},
		{"weight", "weight: 3", "weight: -1", "real_servers[0].weight: must be 0-65535, got -1"},
		{"thresholds", "weight: 3", "upper_threshold: 5, lower_threshold: 9", "lower_threshold: 9 is above upper_threshold 5"},
		{"netmask", "scheduler: wrr", "scheduler: wrr\n    persistence: {netmask: 255.0.255.0}", "is not a contiguous mask"},
		{"persistence timeout", "scheduler: wrr", "scheduler: wrr\n    persistence: {timeout: 1500ms}", "persistence.timeout: must be whole seconds"},
		{"fwmark with vip", "port: 80", "port: 80\n    fwmark: 3", "services[0].fwmark: a firewall-mark service has no vip"},
		{"unknown instance", "scheduler: wrr", "scheduler: wrr\n    instance: nope", `services[0].instance: no instance is named "nope"`},
		{"sorry family", "scheduler: wrr", "scheduler: wrr\n    sorry_server: '[fd00::1]:80'", "sorry_server: fd00::1 is not the same address family"},
		{"sync", "", "ipvs: {sync: {sync_id: 300}}\n", "ipvs.sync.interface: required"},
		{"sysctl name", "", "ipvs:\n  sysctl:\n    conn_reuse_mode: 1\n    conn_reuse: 2\n", "d.yaml:14: ipvs.sysctl.conn_reuse: not an IPVS setting"},
		{"ops on tcp", "scheduler: wrr", "scheduler: wrr\n    ops: true", "d.yaml:8: services[0].ops: one-packet scheduling is for UDP and firewall-mark services, not tcp"},
		{"engine on tcp", "scheduler: wrr", "scheduler: wrr\n    persistence: {engine: sip}", "services[0].persistence.engine: sip is for UDP and firewall-mark services, not tcp"},
		{"unknown engine", "port: 80", "port: 80\n    protocol: udp\n    persistence: {engine: rtsp}", `services[0].persistence.engine: unknown persistence engine "rtsp"; the kernel has sip`},
		{"service tunnel without tunnel", "scheduler: wrr", "scheduler: wrr\n    tunnel: {type: gre}", "d.yaml:8: services[0].tunnel: only with forwarding: tunnel"},
		{"server tunnel without tunnel", "{address: 10.0.0.22}", "{address: 10.0.0.22, tunnel: {type: gre}}", "d.yaml:10: services[0].real_servers[1].tunnel: only with forwarding: tunnel"},
		{"tunnel type", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {type: vxlan}}", `real_servers[1].tunnel.type: "vxlan" is not one of ipip, gue, gre`},
		{"gue port", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {type: gue}}", "real_servers[1].tunnel.port: a gue tunnel needs its UDP port, 1-65535, got 0"},
		{"gre port", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {type: gre, port: 6080}}", "real_servers[1].tunnel.port: only a gue tunnel has a port"},
		{"ipip checksum", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {checksum: csum}}", "real_servers[1].tunnel.checksum: an ipip tunnel has no checksum option"},
		{"gre remcsum", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {type: gre, checksum: remcsum}}", "tunnel.checksum: remote checksum offload is for gue tunnels only"},
		{"checksum word", "{address: 10.0.0.22}", "{address: 10.0.0.22, forwarding: tunnel, tunnel: {type: gre, checksum: yes}}", `tunnel.checksum: "yes" is not one of nocsum, csum, remcsum`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := svcBase
			if tc.from == "" {
				y += tc.to
			} else {
				if !strings.Contains(y, tc.from) {
					t.Fatalf("base lacks %q", tc.from)
				}
				y = strings.Replace(y, tc.from, tc.to, 1)
			}
			_, err := Parse("d.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant %q", err, tc.want)
			}
		})
	}
}

// ops, the sip engine and tunnel encapsulations reach the IPVS model.
func TestLVSFeaturesConfig(t *testing.T) {
	y := svcBase + `  - name: sip
    vip: 10.0.0.100
    port: 5060
    protocol: udp
    ops: true
    persistence: {timeout: 60s, engine: sip}
    real_servers: [{address: 10.0.0.21}]
  - name: marks
    fwmark: 9
    ops: true
    persistence: {engine: sip}
    real_servers: [{address: 10.0.0.21}]
  - name: tunnels
    vip: 10.0.0.100
    port: 8080
    forwarding: tunnel
    tunnel: {type: gue, port: 6080, checksum: remcsum}
    sorry_server: 10.0.0.30
    real_servers:
      - {address: 10.0.0.21}
      - {address: 10.0.0.22, tunnel: {type: gre, checksum: csum}}
      - {address: 10.0.0.23, tunnel: {}}
      - {address: 10.0.0.24, forwarding: dr}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	sip, marks, tun := &cfg.Services[1], &cfg.Services[2], &cfg.Services[3]
	if !sip.OPS || sip.Persistence.Engine != "sip" || !marks.OPS || marks.Persistence.Engine != "sip" {
		t.Errorf("sip %+v %+v; marks %+v", sip, sip.Persistence, marks)
	}
	for i, want := range []Tunnel{{"gue", 6080, "remcsum"}, {"gre", 0, "csum"}, {"ipip", 0, "nocsum"}} {
		if got := tun.EffectiveTunnel(&tun.RealServers[i]); got == nil || *got != want {
			t.Errorf("real server %d: tunnel %+v, want %+v", i, got, want)
		}
	}
	// The pair hash of a configuration that uses none of them is the
	// one it had before they existed: they are left out of its JSON.
	plain, err := Parse("d.yaml", []byte(svcBase))
	if err != nil {
		t.Fatal(err)
	}
	if b := mustJSON(t, plain.Services); strings.Contains(b, "OPS") || strings.Contains(b, "Tunnel") || strings.Contains(b, "Engine") {
		t.Errorf("unset LVS options in the services' JSON: %s", b)
	}
}

func TestChecksConfig(t *testing.T) {
	y := svcBase + `    quorum: 2
    hysteresis: 1
    slow_start: 10s
    checks:
      - {type: http, interval: 1s, timeout: 500ms, rise: 2, fall: 2, http: {path: /health, status: ["200-299"]}}
`
	y = strings.Replace(y, "      - {address: 10.0.0.22}\n", "      - {address: 10.0.0.22, checks: [{type: tcp, connect_port: 8080, retries: 2, retry_refused: true}]}\n      - {address: 10.0.0.23, checks: []}\n", 1)
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if got := s.ChecksOf(&s.RealServers[0]); len(got) != 1 || got[0].Spec.HTTP.Path != "/health" || got[0].Spec.Interval != time.Second || got[0].Spec.RetryRefused {
		t.Errorf("rs1 checks = %+v", got)
	}
	if got := s.ChecksOf(&s.RealServers[1]); len(got) != 1 || got[0].Spec.ConnectPort != 8080 || got[0].Spec.Retries != 2 || !got[0].Spec.RetryRefused {
		t.Errorf("rs2 checks = %+v", got)
	}
	if got := s.ChecksOf(&s.RealServers[2]); len(got) != 0 {
		t.Errorf("rs3 has checks %+v, want none", got)
	}
	for _, tc := range []struct{ check, want string }{
		{"{type: http, http: {body: '(['}}", "services[0].checks[0].http.body: http check: body: error parsing regexp"},
		{"{type: http, interval: 1s, timeout: 2s}", "timeout"},
		{"{type: carrier-pigeon}", "services[0].checks[0]:"},
		{"{type: tcp, connect_port: 70000}", "connect_port: must be 1-65535"},
	} {
		bad := svcBase + "    checks:\n      - " + tc.check + "\n"
		_, err := Parse("d.yaml", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "d.yaml:") {
			t.Errorf("%s: error = %v, want %q with a line", tc.check, err, tc.want)
		}
	}
}

// The udp, ping, smtp and file checks and the HTTP options keepalived has,
// as a configuration file writes them.
func TestNewCheckKindsConfig(t *testing.T) {
	y := svcBase + `    checks:
      - type: udp
        connect_port: 53
        source: 10.0.0.1
        udp: {send_hex: "00 01", expect_hex: "00 x1", min_reply_length: 2, max_reply_length: 512}
      - {type: ping, interval: 5s, timeout: 2s, rise: 1, fall: 2}
      - type: smtp
        connect_port: 25
        smtp: {helo_name: lb1.example.com, starttls: true, verify: false}
      - {type: file, file: {path: /etc/director/rs-weight, weight: 10, reverse: true}}
      - {type: file, file: {path: /etc/director/maintenance, weight: 0}}
      - {type: file, file: {path: /etc/director/plain}}
      - type: https
        http:
          method: POST
          path: /rpc
          host: www.example.com
          version: "1.0"
          headers: {X-Token: abc}
          request_body: '{"ping":1}'
          digest: 9b3a0c85a887a256d6939da88aabd8cd
          body: maintenance
          body_no_match: true
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cs := cfg.Services[0].Checks
	if s := cs[0].Spec; s.Type != checks.TypeUDP || s.UDP.SendHex != "00 01" || s.UDP.MaxReplyLength != 512 || s.ConnectPort != 53 || s.Source != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("udp %+v", s)
	}
	if s := cs[1].Spec; s.Type != checks.TypePing || s.Interval != 5*time.Second || s.Fall != 2 {
		t.Errorf("ping %+v", s)
	}
	if s := cs[2].Spec; s.SMTP.HeloName != "lb1.example.com" || !s.SMTP.StartTLS {
		t.Errorf("smtp %+v", s)
	}
	if f := cs[3].Spec.File; f.Weight != 10 || !f.Reverse || f.Path != "/etc/director/rs-weight" {
		t.Errorf("file %+v", f)
	}
	if f := cs[4].Spec.File; f.Weight != 0 {
		t.Errorf("file with weight 0: %+v", f)
	}
	if f, s := cs[5].Spec.File, cs[5].Spec; f.Weight != DefaultTrackFileWeight || s.Interval != time.Second || s.Rise != 1 || s.Fall != 1 {
		t.Errorf("file defaults: %+v", s)
	}
	if h := cs[6].Spec.HTTP; h.Method != "POST" || h.Version != "1.0" || h.Headers["X-Token"] != "abc" || h.Digest == "" || !h.BodyNoMatch || h.Host != "www.example.com" {
		t.Errorf("https %+v", h)
	}

	// Errors name the field, with its line.
	for _, tc := range []struct{ check, want string }{
		{"{type: udp, udp: {expect_hex: zz}}", "d.yaml:12: services[0].checks[0].udp.expect_hex: udp check: expect_hex:"},
		{"{type: udp, udp: {send: a, send_hex: '61'}}", "services[0].checks[0].udp.send: udp check: send and send_hex are exclusive"},
		{"{type: ping, connect_port: 7}", "services[0].checks[0]: connect_port means nothing to a ping check"},
		{"{type: smtp, smtp: {helo_name: 'a b'}}", "services[0].checks[0].smtp.helo_name: smtp check: helo_name"},
		{"{type: file}", "services[0].checks[0].file: a file check needs file: {path: ...}"},
		{"{type: file, file: {weight: 3}}", "services[0].checks[0].file.path: required"},
		{"{type: file, file: {path: rel}}", "services[0].checks[0].file.path: file check: path \"rel\": want an absolute path"},
		{"{type: tcp, file: {path: /x}}", "services[0].checks[0]: file settings given for a tcp check"},
		{"{type: http, http: {method: FETCH}}", "services[0].checks[0].http.method: http check: method"},
		{"{type: https, http: {digest: abc}}", "services[0].checks[0].http.digest: https check: digest"},
		{"{type: http, http: {headers: {Host: x}}}", "services[0].checks[0].http.headers: http check: headers: Host is the check's own"},
		{"{type: ping, ping: {}}", "unknown field"},
	} {
		bad := svcBase + "    checks:\n      - " + tc.check + "\n"
		_, err := Parse("d.yaml", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "d.yaml:") {
			t.Errorf("%s: error = %v, want %q with a line", tc.check, err, tc.want)
		}
	}
}

func TestTrackConfig(t *testing.T) {
	y := strings.Replace(svcBase, "vips: [10.0.0.100/24]}", "vips: [10.0.0.100/24], track: [{service: http, weight: -60}, {real_server: http/10.0.0.21:80, weight: 0}]}", 1)
	if _, err := Parse("d.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(svcBase, "vips: [10.0.0.100/24]}", "vips: [10.0.0.100/24], track: [{service: nope, weight: -60}, {real_server: http/10.0.0.99:80}, {service: http, real_server: x}]}", 1)
	_, err := Parse("d.yaml", []byte(bad))
	for _, want := range []string{`track[0].service: no service is named "nope"`, `track[1].real_server: "http/10.0.0.99:80" is not`, "track[2]: name exactly one"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// Every scheduler the reconciler can program is accepted, twos included
// (config once kept a list of its own that lacked it).
func TestEverySchedulerAccepted(t *testing.T) {
	for _, s := range ipvs.Schedulers() {
		y := strings.Replace(svcBase, "scheduler: wrr", "scheduler: "+s, 1)
		cfg, err := Parse("d.yaml", []byte(y))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if got := cfg.Services[0].Scheduler; got != s {
			t.Errorf("%s: scheduler %q", s, got)
		}
	}
	if !slices.Contains(ipvs.Schedulers(), "twos") {
		t.Error("twos missing")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With NAT one address may be a real server on several ports: the kernel
// rewrites the port, so they are distinct destinations.
func TestNATRealServerOnTwoPorts(t *testing.T) {
	y := strings.Replace(svcBase, "scheduler: wrr", "scheduler: wrr\n    forwarding: nat", 1)
	y = strings.Replace(y, "{address: 10.0.0.22}", "{address: 10.0.0.21, port: 8080}", 1)
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if rs := cfg.Services[0].RealServers; len(rs) != 2 || rs[0].Port != 80 || rs[1].Port != 8080 {
		t.Errorf("real servers = %+v", rs)
	}
}
