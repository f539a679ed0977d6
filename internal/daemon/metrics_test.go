package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/vrrp"
)

func TestMetrics(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := testInstance(log, 120, 10*time.Millisecond)
	runInstance(t, in)
	for in.Stats().State != vrrp.StateMaster {
		time.Sleep(5 * time.Millisecond)
	}
	d := &Daemon{log: log, version: "v-test", cfg: &config.Config{}, running: []*runningInstance{{in: in, cfg: config.Instance{Name: "web", Interface: "eth0"}}}}
	// Routed mode beside the pair: one VIP announced, one BGP session.
	rc, err := config.Parse("r.yaml", []byte("services: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]\n"+
		"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 65011, peers: [{address: 10.0.1.1, asn: 65000}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ann := routing.NewFake()
	ann.SetSessions([]routing.Session{{Peer: netip.MustParseAddr("10.0.1.1"), ASN: 65000, State: "established", Since: time.Now().Add(-time.Minute), PrefixesSent: 1, Flaps: 3, BFD: "up"}})
	d.routed = &routed{ctl: routing.NewController(rc.Routing, ann, log), cfg: rc.Routing}
	if err := d.routed.ctl.Update(context.Background(), routing.Inputs{}); err != nil {
		t.Fatal(err)
	}
	m := newMetrics(d)
	m.observe(ipvs.Result{Created: 3, Repaired: 1, Errors: 2}, 5*time.Millisecond, nil)
	m.checkResult(checks.Result{OK: true, Latency: time.Millisecond})
	m.checkResult(checks.Result{OK: true, ReadLate: true, Latency: time.Second})
	m.checkResult(checks.Result{TimedOut: true, Latency: time.Second})
	m.checkResult(checks.Result{TimedOut: true, Discounted: true, Latency: 3 * time.Second, Lag: 2 * time.Second})

	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case mt.GetGauge() != nil:
				got[key] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[key] = mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				got[key] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"director_vrrp_state,state=MASTER,vrrp_instance=web":               1,
		"director_vrrp_state,state=BACKUP,vrrp_instance=web":               0,
		"director_vrrp_priority,vrrp_instance=web":                         120,
		"director_vrrp_transitions_total,vrrp_instance=web":                2,
		"director_ipvs_writes_total,kind=created":                          3,
		"director_ipvs_writes_total,kind=repaired":                         1,
		"director_ipvs_reconcile_errors_total":                             2,
		"director_ipvs_reconcile_duration_seconds":                         1,
		"director_check_duration_seconds":                                  4,
		"director_check_lag_seconds":                                       4,
		"director_check_results_total,result=ok":                           2,
		"director_check_answers_read_late_total":                           1,
		"director_check_results_total,result=timeout":                      1,
		"director_check_results_total,result=discounted":                   1,
		"director_build_info,goversion=" + goVersion() + ",version=v-test": 1,
		"director_bgp_session_established,peer=10.0.1.1":                   1,
		"director_bgp_prefixes_sent,peer=10.0.1.1":                         1,
		"director_bgp_session_flaps_total,peer=10.0.1.1":                   3,
		"director_bfd_session_up,peer=10.0.1.1":                            1,
		"director_routing_vip_announced,vip=10.0.0.100":                    1,
		"director_routing_node_drained":                                    0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if up := got["director_bgp_session_uptime_seconds,peer=10.0.1.1"]; up < 59 || up > 3600 {
		t.Errorf("session uptime %v, want about a minute", up)
	}
	if got["director_vrrp_adverts_sent_total,vrrp_instance=web"] < 1 {
		t.Error("no adverts counted")
	}
}

func goVersion() string { return runtime.Version() }

// The metrics endpoint may face a network: a client that sends slowly, never
// reads, idles or sends huge headers must not hold a connection for ever.
func TestMetricsServerLimits(t *testing.T) {
	srv := metricsServer(http.NotFoundHandler())
	for name, v := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout":       srv.ReadTimeout,
		"WriteTimeout":      srv.WriteTimeout,
		"IdleTimeout":       srv.IdleTimeout,
	} {
		if v <= 0 || v > 2*time.Minute {
			t.Errorf("%s = %v, want set and at most 2m", name, v)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want set and at most 64 KiB", srv.MaxHeaderBytes)
	}
}

func TestMetricsRefusesHugeHeaders(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := newMetrics(&Daemon{log: log, version: "v-test", cfg: &config.Config{}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.serveOn(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String() + "/metrics"
	get := func(header string) int {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("X-Padding", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusOK {
		t.Fatalf("plain scrape: status %d", code)
	}
	if code := get(strings.Repeat("x", 256<<10)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("256 KiB header: status %d, want %d", code, http.StatusRequestHeaderFieldsTooLarge)
	}
}
