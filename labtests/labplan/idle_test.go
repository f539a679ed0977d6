package labplan

import (
	"strings"
	"testing"
	"time"
)

func idleParams(impl Impl) Params {
	p := DefaultParams(impl)
	p.Idle = &Idle{Services: 100, PerService: 10, Interval: Duration(2 * time.Second), Timeout: Duration(time.Second)}
	return p
}

// TestDirectorIdleConfigLoads: director's parser accepts the idle
// configuration, with 100 services of 10 checked real servers each.
func TestDirectorIdleConfigLoads(t *testing.T) {
	p := idleParams(Director)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, body := loadDirectorConfig(t, p, LB1)
	if len(cfg.Services) != 100 {
		t.Fatalf("%d services, want 100", len(cfg.Services))
	}
	first, last := cfg.Services[0], cfg.Services[99]
	if first.VIP != "10.0.1.1" || last.VIP != "10.0.1.100" || last.Port != HTTPPort {
		t.Errorf("VIPs %s..%s:%d, want 10.0.1.1..10.0.1.100:80", first.VIP, last.VIP, last.Port)
	}
	if len(last.RealServers) != 10 || len(last.Checks) != 1 || last.Checks[0].Spec.Rise != 1 || last.Checks[0].Spec.Fall != 1 ||
		last.Checks[0].Spec.Interval != 2*time.Second || last.Checks[0].Spec.Timeout != time.Second {
		t.Errorf("service %+v", last)
	}
	if !strings.Contains(body, "path: /s100,") {
		t.Error("the last service does not check its own path")
	}
	p.Idle.SharedPath = true
	if body, _ = DirectorConfig(p, LB1); strings.Count(body, "path: /,") != 100 || p.Idle.CheckRate(Director) != 5 || p.Idle.CheckRate(Keepalived) != 500 {
		t.Errorf("shared path: %d checks of /, rates %v and %v", strings.Count(body, "path: /,"), p.Idle.CheckRate(Director), p.Idle.CheckRate(Keepalived))
	}
}

// TestKeepalivedIdleConfig: 100 virtual servers starting down (alpha),
// 1,000 real servers each with its HTTP_GET checker and the same timers.
func TestKeepalivedIdleConfig(t *testing.T) {
	body, err := KeepalivedConfig(idleParams(Keepalived), LB1)
	if err != nil {
		t.Fatal(err)
	}
	for want, n := range map[string]int{
		"virtual_server 10.0.1.": 100, "    alpha\n": 100, "delay_loop 2\n": 100,
		"real_server 10.0.0.": 1000, "HTTP_GET": 1000, "connect_timeout 1\n": 1000, "retry 0\n": 1000,
		"real_server 10.0.0.60 80": 100, "real_server 10.0.0.61 ": 0,
		"path /s001\n": 10, "path /s100\n": 10, "path /\n": 0,
	} {
		if got := strings.Count(body, want); got != n {
			t.Errorf("%d of %q, want %d", got, want, n)
		}
	}
}

// TestIdleRealServers spreads the addresses over both real-server hosts.
func TestIdleRealServers(t *testing.T) {
	m := idleParams(Director).Idle.IdleRealServers()
	if len(m[RS1]) != 5 || len(m[RS2]) != 5 || m[RS1][0].String() != "10.0.0.51" || m[RS2][4].String() != "10.0.0.60" {
		t.Errorf("real servers %v", m)
	}
	p := idleParams(Director)
	p.IPVS = &IPVS{}
	if p.Validate() == nil {
		t.Error("idle together with ipvs accepted")
	}
	p = idleParams(Director)
	p.Idle.Timeout = Duration(3 * time.Second)
	if p.Validate() == nil {
		t.Error("timeout above interval accepted")
	}
}
