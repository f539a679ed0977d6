package dataplane

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

// groupConfig is one service group of 13 virtual services (an address, a
// range of ten, another port, a mark) over two checked real servers.
const groupConfig = `
ipvs: {resync_interval: 1h}
services:
  - name: web
    scheduler: wrr
    members:
      - {vip: 10.0.0.100, port: 80}
      - {vip: 10.0.0.10-19, port: 80}
      - {vip: 10.0.0.100, port: 443}
      - {fwmark: 7}
    sorry_server: 10.0.2.1:80
    checks: [{type: tcp, interval: 1s, timeout: 500ms, rise: 1, fall: 1}]
    real_servers:
      - {address: 10.0.1.1, port: 80, weight: 3}
      - {address: 10.0.1.2, port: 80, weight: 5}
`

// countingProber counts the probes of each server and answers as told.
type countingProber struct {
	mu     sync.Mutex
	probes map[netip.AddrPort]int
	down   map[netip.AddrPort]bool
}

func (p *countingProber) Probe(_ context.Context, t checks.Target) checks.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes[t.Server]++
	if p.down[t.Server] {
		return checks.Result{Reason: "test says down"}
	}
	return checks.Result{OK: true, Reason: "test says up"}
}

func (p *countingProber) count(ap netip.AddrPort) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes[ap]
}

// A group is checked once per real server, whatever its number of members,
// and the kernel gets one virtual service per member, each with the same
// real servers at the same, health-decided weights.
func TestGroupSharesChecksAndProgramsEveryMember(t *testing.T) {
	cfg, err := config.Parse("g.yaml", []byte(groupConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	clock := newFakeClock()
	prober := &countingProber{probes: map[netip.AddrPort]int{}, down: map[netip.AddrPort]bool{}}
	var mgr *checks.Manager
	k := ipvs.NewFake()
	dp, err := newWith(cfg, Options{Kernel: k, Clock: clock, Logger: discard()}, func(onEvent func(checks.Event)) checkRunner {
		mgr = checks.NewManager(checks.Options{Clock: clock, Rand: rand.New(rand.NewPCG(1, 2)), Logger: discard(), OnEvent: onEvent,
			NewProber: func(checks.Spec) (checks.Prober, error) { return prober, nil }})
		return mgr
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	runDataplane(t, dp)

	if n := len(mgr.Statuses()); n != 2 {
		t.Fatalf("%d checks for 2 real servers in 13 virtual services, want 2", n)
	}
	rs1, rs2 := netip.MustParseAddrPort("10.0.1.1:80"), netip.MustParseAddrPort("10.0.1.2:80")
	// Five seconds of one-second rounds: at most six probes per server
	// (the first within a second, then rounds at least 0.9s apart), where
	// a probe per member would be 13 a round.
	for range 100 {
		clock.Advance(50 * time.Millisecond)
	}
	testwait.Eventually(t, 10*time.Second, "three rounds of probes", func() bool {
		return prober.count(rs1) >= 3 && prober.count(rs2) >= 3
	})
	if a, b := prober.count(rs1), prober.count(rs2); a > 6 || b > 6 {
		t.Errorf("probes %d and %d in 5s of 1s rounds: checks are not shared by the group's members", a, b)
	}

	// Every member is a virtual service with both real servers.
	kernel := func() string {
		var out []string
		for _, s := range k.Snapshot() {
			var ds []string
			for _, d := range s.Destinations {
				ds = append(ds, fmt.Sprintf("%s=%d", d.AddrPort(), d.Weight))
			}
			slices.Sort(ds)
			out = append(out, fmt.Sprintf("%s %s %v", s.Key, s.Scheduler, ds))
		}
		slices.Sort(out)
		return fmt.Sprint(out)
	}
	// Direct-routed, the destinations have each member's port (0 for a
	// mark), as keepalived programs a group.
	want := []string{
		"TCP 10.0.0.100:80 wrr [10.0.1.1:80=3 10.0.1.2:80=5]",
		"TCP 10.0.0.100:443 wrr [10.0.1.1:443=3 10.0.1.2:443=5]",
		"FWM 7 wrr [10.0.1.1:0=3 10.0.1.2:0=5]",
	}
	for i := 10; i <= 19; i++ {
		want = append(want, fmt.Sprintf("TCP 10.0.0.%d:80 wrr [10.0.1.1:80=3 10.0.1.2:80=5]", i))
	}
	slices.Sort(want)
	testwait.Eventually(t, 10*time.Second, "13 virtual services", func() bool { return kernel() == fmt.Sprint(want) })

	// One server fails: drained in every member at once.
	prober.mu.Lock()
	prober.down[rs2] = true
	prober.mu.Unlock()
	for range 40 {
		clock.Advance(50 * time.Millisecond)
	}
	testwait.Eventually(t, 10*time.Second, "10.0.1.2 drained in every member", func() bool {
		drained := 0
		for _, s := range k.Snapshot() {
			for _, d := range s.Destinations {
				if d.Addr == rs2.Addr() && d.Weight == 0 {
					drained++
				}
			}
		}
		return drained == 13
	})
	v := dp.Table().Views
	if len(v) != 1 || len(v[0].Keys) != 13 || v[0].Key != v[0].Keys[0] || v[0].RealServers[1].Weight != 0 {
		t.Errorf("views = %+v, want one view of the group with its 13 keys", v)
	}
}
