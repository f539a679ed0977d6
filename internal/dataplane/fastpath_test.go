package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

// bigConfig is services × servers real servers, each with a TCP check.
func bigConfig(t testing.TB, services, servers int) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("ipvs: {resync_interval: 1h}\nservices:\n")
	for i := range services {
		fmt.Fprintf(&b, "  - name: s%d\n    vip: 10.1.%d.%d\n    port: 80\n    checks: [{type: tcp}]\n    real_servers:\n", i, i/250, i%250+1)
		for j := range servers {
			fmt.Fprintf(&b, "      - {address: 10.%d.%d.%d, weight: 5}\n", 2+i/250, j, i%250+1)
		}
	}
	cfg, err := config.Parse("big.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	return cfg
}

// A health change on a big table is one SetWeight, one kernel write, and no
// Apply; a structural change (an override that takes a server out) and the
// resync still go through Apply.
func TestHealthChangeTakesFastPath(t *testing.T) {
	cfg := bigConfig(t, 1000, 10)
	clock := newFakeClock()
	k := ipvs.NewFake()
	rec, err := ipvs.New(ipvs.Config{Kernel: k, CacheFor: cacheFor(cfg), Now: clock.Now, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	prog := &countingProg{Reconciler: rec}
	fc := &fakeChecks{}
	dp := newFaked(t, cfg, Options{Programmer: prog, Clock: clock}, fc)
	runDataplane(t, dp)
	waitPass(t, dp)
	if n := prog.applies.Load(); n != 1 {
		t.Fatalf("%d Applies for the first pass, want 1", n)
	}
	if n := len(k.Snapshot()); n != 1000 {
		t.Fatalf("kernel has %d services, want 1000", n)
	}
	k.ResetOps()

	key := dp.Table().Services[500].Key
	ap := netip.MustParseAddrPort("10.4.3.1:80") // s500's fourth server
	weight := func() int32 {
		for _, s := range k.Snapshot() {
			if s.Key == key {
				for _, d := range s.Destinations {
					if d.AddrPort() == ap {
						return d.Weight
					}
				}
			}
		}
		return -1
	}
	fc.set(ap, checks.Down)
	testwait.Eventually(t, 10*time.Second, "the failed server at weight 0", func() bool { return weight() == 0 })
	waitPass(t, dp)
	if a, s := prog.applies.Load(), prog.setWeights.Load(); a != 1 || s != 1 {
		t.Errorf("after a health change: %d Applies and %d SetWeights, want 1 and 1", a, s)
	}
	if ws := k.Writes(); len(ws) != 1 || ws[0].Kind != ipvs.OpUpdateDestination {
		t.Errorf("kernel writes = %v, want one destination update", ws)
	}
	// State shows what was programmed.
	if rv := dp.Table().Views[500].RealServers[3]; rv.Addr != ap || rv.Weight != 0 || !rv.Present || rv.Reason != "failed" {
		t.Errorf("state of the failed server = %+v", rv)
	}

	fc.set(ap, checks.Up)
	testwait.Eventually(t, 10*time.Second, "the server back at weight 5", func() bool { return weight() == 5 })
	waitPass(t, dp)
	if a, s := prog.applies.Load(), prog.setWeights.Load(); a != 1 || s != 2 {
		t.Errorf("after the recovery: %d Applies and %d SetWeights, want 1 and 2", a, s)
	}

	// Taking a server out changes the table's shape: Apply.
	if err := dp.SetOverride("s500/10.4.3.1:80", "disable", 0); err != nil {
		t.Fatal(err)
	}
	waitPass(t, dp)
	if a := prog.applies.Load(); a != 2 {
		t.Errorf("after a disable: %d Applies, want 2", a)
	}
	// The resync is a full Apply too: it repairs a flushed table.
	k.Flush()
	clock.Advance(time.Hour)
	testwait.Eventually(t, 10*time.Second, "the resync's repair", func() bool { return len(k.Snapshot()) == 1000 })
	if a := prog.applies.Load(); a < 3 {
		t.Errorf("after the resync: %d Applies, want 3 or more", a)
	}
}

// Reads never write: the quorum hysteresis and slow start advance on
// events and timers, and reading the snapshot any number of times, at any
// time, changes nothing and logs nothing.
func TestReadsNeverWrite(t *testing.T) {
	y := `ipvs: {resync_interval: 1h}
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    quorum: 10
    hysteresis: 5
    slow_start: 10s
    sorry_server: 10.0.0.30:80
    checks: [{type: tcp}]
    real_servers:
      - {address: 10.0.0.21, weight: 10}
      - {address: 10.0.0.22, weight: 10}
`
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clock := newFakeClock()
	fc := &fakeChecks{}
	dp := newFaked(t, cfg, Options{Kernel: ipvs.NewFake(), Clock: clock, Logger: log}, fc)
	rs1, rs2 := netip.MustParseAddrPort("10.0.0.21:80"), netip.MustParseAddrPort("10.0.0.22:80")
	fc.set(rs1, checks.Up)
	fc.set(rs2, checks.Up)
	quorumLogs := func() int {
		return strings.Count(logs.String(), "service quorum changed")
	}
	read := func() checks.ServiceWeights {
		for range 50 {
			dp.Health()
			dp.Status("web", rs1)
			dp.TrackUp("web", "")
		}
		return dp.Health()["web"]
	}

	// Both down: quorum lost, once.
	fc.set(rs1, checks.Down)
	fc.set(rs2, checks.Down)
	if w := read(); !w.QuorumLost || quorumLogs() != 1 {
		t.Fatalf("both down: quorum lost %v, %d quorum logs; want lost, 1", w.QuorumLost, quorumLogs())
	}
	// One back: live weight 10 is the quorum but not quorum+hysteresis,
	// so it stays lost however often it is read.
	fc.set(rs1, checks.Up)
	if w := read(); !w.QuorumLost || quorumLogs() != 1 {
		t.Fatalf("one back: quorum lost %v, %d quorum logs; want still lost, 1", w.QuorumLost, quorumLogs())
	}
	// Both back: regained, and rs2 slow-starts from Down.
	fc.set(rs2, checks.Up)
	w := read()
	if w.QuorumLost || quorumLogs() != 2 {
		t.Fatalf("both back: quorum lost %v, %d quorum logs; want regained, 2", w.QuorumLost, quorumLogs())
	}
	start := w.Servers[1].Weight
	if start >= 10 {
		t.Fatalf("rs2 starts at weight %d, want a slow start below 10", start)
	}
	// Time passing changes nothing until the slow-start timer fires ...
	clock.Skip(2 * time.Second) // time passes, no timer runs
	if got := read().Servers[1].Weight; got != start {
		t.Errorf("a read moved slow start: weight %d, want %d", got, start)
	}
	// ... and then it does, step by step, up to the full weight.
	clock.Advance(0)
	if got := read().Servers[1].Weight; got <= start {
		t.Errorf("slow-start timer did not raise the weight: %d", got)
	}
	clock.Advance(10 * time.Second)
	if got := read().Servers[1].Weight; got != 10 {
		t.Errorf("after the slow start: weight %d, want 10", got)
	}
}

// Desired applies health, then overrides, then mastership, and shows every
// real server with the weight it programs.
func TestDesiredTable(t *testing.T) {
	cfg := loadCfg(t, "false")
	rs1, rs2 := netip.MustParseAddrPort("10.0.0.21:80"), netip.MustParseAddrPort("10.0.0.22:8080")
	in := Input{
		Config: cfg,
		Health: map[string]checks.ServiceWeights{"http": {Servers: []checks.ServerWeight{
			{Server: rs1, Present: true, Weight: 2}, // slow start
			{Server: rs2, Present: false},           // failed, on_failure: remove
		}}},
		Overrides: Overrides([]decisions.Decision{
			{Kind: decisions.KindOverride, Target: "10.0.0.21:53", Action: decisions.ActionDrain},
			{Kind: decisions.KindOverride, Target: "dns/10.0.0.21:53", Action: decisions.ActionEnable}, // withdrawn
		}),
		Masters: map[string]bool{"web": true},
	}
	t1 := Desired(in)
	if t2 := Desired(in); !reflect.DeepEqual(t1, t2) {
		t.Fatalf("Desired differs on the same input:\n%v\n%v", t1, t2)
	}
	if len(t1.Services) != 1 || t1.Services[0].Key.Port != 80 {
		t.Fatalf("services = %v, want http only (master of web, not api)", t1.Services)
	}
	if d := t1.Services[0].Destinations; len(d) != 1 || d[0].AddrPort() != rs1 || d[0].Weight != 2 {
		t.Errorf("http destinations = %v, want rs1 at 2", d)
	}
	got := ""
	for _, v := range t1.Views {
		got += fmt.Sprintf("%s installed=%v:", v.Name, v.Installed)
		for _, r := range v.RealServers {
			got += fmt.Sprintf(" %s=%d/%d present=%v %q %q;", r.Addr, r.Weight, r.Configured, r.Present, r.Override, r.Reason)
		}
		got += "\n"
	}
	want := `http installed=true: 10.0.0.21:80=2/3 present=true "" "health checks"; 10.0.0.22:8080=0/1 present=false "" "failed: removed";
dns installed=false: 10.0.0.21:53=0/1 present=true "drain" "override: drain";
`
	if got != want {
		t.Errorf("views:\n%s\nwant:\n%s", got, want)
	}
}

// BenchmarkPlan is the CPU side of a health-driven pass on a 1,000 × 10
// table: the desired table and its comparison with the programmed one.
func BenchmarkPlan(b *testing.B) {
	cfg := bigConfig(b, 1000, 10)
	ws := map[string]checks.ServiceWeights{}
	for i, s := range cfg.Services {
		w := checks.ServiceWeights{}
		for j, r := range s.RealServers {
			w.Servers = append(w.Servers, checks.ServerWeight{Server: netip.AddrPortFrom(r.Addr, uint16(r.Port)), Present: true, Weight: 5 - b2i(i == 500 && j == 3)*5})
		}
		ws[s.Name] = w
	}
	prev := Services(cfg)
	in := Input{Config: cfg, Health: ws}
	b.ReportAllocs()
	for b.Loop() {
		t := Desired(in)
		if ch, ok := weightsOnly(prev, t.Services); !ok || len(ch) != 1 {
			b.Fatalf("changes %v %v, want one weight", ch, ok)
		}
	}
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// drainingProg reports a destination still draining after every Apply,
// as the reconciler does while a removed real server has connections.
type drainingProg struct{ applies atomic.Int32 }

func (d *drainingProg) Apply(context.Context, []ipvs.Service) (ipvs.Result, error) {
	d.applies.Add(1)
	return ipvs.Result{Draining: 1}, nil
}
func (d *drainingProg) SetWeight(context.Context, ipvs.ServiceKey, netip.AddrPort, int32) (ipvs.Result, error) {
	return ipvs.Result{}, nil
}
func (d *drainingProg) SetTimings(time.Duration, time.Duration) {}
func (d *drainingProg) Invalidate()                             {}

// A pass that has nothing to write (a kick that changed no input of the
// table: a mastership change, a check result with no effect) keeps the
// drain poll: the lab saw a drained server with no connections left in
// the kernel until the resync, because such a pass had cancelled it.
func TestNoOpPassKeepsDrainPoll(t *testing.T) {
	cfg := bigConfig(t, 1, 2)
	clock := newFakeClock()
	prog := &drainingProg{}
	dp := newFaked(t, cfg, Options{Programmer: prog, Clock: clock}, &fakeChecks{})
	runDataplane(t, dp)
	waitPass(t, dp)
	if n := prog.applies.Load(); n != 1 {
		t.Fatalf("%d Applies for the first pass, want 1", n)
	}
	dp.Poke()
	waitPass(t, dp)
	if n := prog.applies.Load(); n != 1 {
		t.Fatalf("a kick with no change made %d Applies, want none", n)
	}
	clock.Advance(drainPoll)
	testwait.Eventually(t, 10*time.Second, "the drain poll's Apply", func() bool { return prog.applies.Load() == 2 })
}
