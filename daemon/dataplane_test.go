package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/director-lb/director/config"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/vrrp"
)

const dpConfig = `
instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
  - {name: api, interface: eth0, vrid: 52, vips: [10.0.0.101/24]}
ipvs:
  services_on_backup: %s
  resync_interval: 1h
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    scheduler: sh
    scheduler_flags: [sh-port]
    persistence: {timeout: 60s, netmask: 24}
    sorry_server: 10.0.0.30:8080
    real_servers:
      - {address: 10.0.0.21, weight: 3, upper_threshold: 50}
      - {address: 10.0.0.22, port: 8080, forwarding: tunnel}
  - name: dns
    vip: 10.0.0.101
    port: 53
    protocol: udp
    forwarding: nat
    real_servers: [{address: 10.0.0.21}]
`

func loadCfg(t *testing.T, onBackup string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("d.yaml", []byte(fmt.Sprintf(dpConfig, onBackup)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDesired(t *testing.T) {
	got := Desired(loadCfg(t, "true"))
	http := got[0]
	wantKey := ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	if http.Key != wantKey || http.Scheduler != "sh" || http.Flags != ipvs.FlagSchedPort {
		t.Errorf("http = %+v", http)
	}
	if !http.Persistent || http.Timeout != time.Minute || http.Netmask != 24 {
		t.Errorf("persistence = %v %v %v", http.Persistent, http.Timeout, http.Netmask)
	}
	d0, d1 := http.Destinations[0], http.Destinations[1]
	if d0.Forward != ipvs.Route || d0.Weight != 3 || d0.Port != 80 || d0.Upper != 50 {
		t.Errorf("rs1 = %+v (DSR is the default)", d0)
	}
	if d1.Forward != ipvs.Tunnel || d1.Weight != 1 || d1.Port != 8080 {
		t.Errorf("rs2 = %+v", d1)
	}
	if http.Sorry == nil || http.Sorry.AddrPort() != netip.MustParseAddrPort("10.0.0.30:8080") {
		t.Errorf("sorry = %+v", http.Sorry)
	}
	if dns := got[1]; dns.Key.Protocol != ipvs.UDP || dns.Destinations[0].Forward != ipvs.Masq {
		t.Errorf("dns = %+v", dns)
	}
}

// With services_on_backup: false, a service is in the kernel only while its
// instance is master here.
func TestDataplaneMasterOnly(t *testing.T) {
	cfg := loadCfg(t, "false")
	cfg.IPVS.StateFile = ""
	k := ipvs.NewFake()
	dp, err := newDataplane(cfg, k, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); dp.run(ctx) }()
	defer func() { cancel(); <-done }()

	keys := func() []string {
		var out []string
		for _, s := range k.Snapshot() {
			out = append(out, s.Key.String())
		}
		return out
	}
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for fmt.Sprint(keys()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("kernel services = %v, want %s", keys(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait("[]")
	dp.onState("web", vrrp.StateMaster)
	wait("[TCP 10.0.0.100:80]")
	dp.onState("api", vrrp.StateMaster)
	wait("[TCP 10.0.0.100:80 UDP 10.0.0.101:53]")
	dp.onState("web", vrrp.StateBackup)
	wait("[UDP 10.0.0.101:53]")
}
