package labplan

import (
	"strings"
	"testing"
	"time"
)

// TestDirectorChecksConfigLoads renders checks, a sorry server, quorum and
// the DNS service, and has director's parser read them back.
func TestDirectorChecksConfigLoads(t *testing.T) {
	p := DefaultParams(Director)
	p.IPVS = &IPVS{
		Checks:      &Checks{Interval: Duration(time.Second), Timeout: Duration(500 * time.Millisecond), Retries: 1, RetryDelay: Duration(time.Second), Rise: 3, Fall: 2},
		SorryServer: true, Quorum: 2, DNS: true,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, body := loadDirectorConfig(t, p, LB1)
	if len(cfg.Services) != 3 {
		t.Fatalf("%d services, want http, echo and dns\n%s", len(cfg.Services), body)
	}
	http, echo, dns := cfg.Services[0], cfg.Services[1], cfg.Services[2]
	if len(http.Checks) != 1 || http.Checks[0].Spec.Rise != 3 || http.Checks[0].Spec.Fall != 2 || http.Checks[0].Spec.Retries != 1 ||
		http.Checks[0].Spec.Timeout != 500*time.Millisecond || string(http.Checks[0].Spec.Type) != "http" {
		t.Errorf("http checks = %+v", http.Checks)
	}
	if http.Sorry.String() != "10.0.0.30:80" || http.Quorum != 2 {
		t.Errorf("http sorry %v quorum %d", http.Sorry, http.Quorum)
	}
	if len(echo.Checks) != 0 || echo.Sorry.IsValid() {
		t.Errorf("echo got checks %+v or sorry %v", echo.Checks, echo.Sorry)
	}
	if dns.Protocol != "udp" || dns.Port != DNSPort || len(dns.Checks) != 1 || dns.Checks[0].Spec.DNS.Name != DNSName || len(dns.RealServers) != 2 {
		t.Errorf("dns service = %+v", dns)
	}
}

// TestKeepalivedChecks: the HTTP service gets HTTP_GET with the same
// timers; the echo service none.
func TestKeepalivedChecks(t *testing.T) {
	p := DefaultParams(Keepalived)
	p.IPVS = &IPVS{Checks: &Checks{Interval: Duration(time.Second), Timeout: Duration(time.Second), Retries: 1, RetryDelay: Duration(time.Second)}}
	body, err := KeepalivedConfig(p, LB1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delay_loop 1\n", "connect_timeout 1\n", "retry 1\n", "delay_before_retry 1\n", "status_code 200"} {
		if strings.Count(body, want) < 1 {
			t.Errorf("no %q in:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "HTTP_GET"); n != 2 {
		t.Errorf("%d HTTP_GET checkers, want one per real server of the HTTP service:\n%s", n, body)
	}
	p.IPVS.Checks.Timeout = Duration(2 * time.Second)
	if err := p.Validate(); err == nil {
		t.Error("timeout above interval accepted")
	}
}
