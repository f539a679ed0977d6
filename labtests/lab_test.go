//go:build lab

package labtests

import (
	"slices"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// impls run every scenario twice: keepalived pairs prove the harness,
// director pairs test the daemon.
var impls = []lp.Impl{lp.Keepalived, lp.Director}

func eachImpl(t *testing.T, f func(t *testing.T, impl lp.Impl)) {
	for _, impl := range impls {
		t.Run(string(impl), func(t *testing.T) { f(t, impl) })
	}
}

func name(t *testing.T) string { return safeName(t.Name()) }

func TestElection(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		res := Run(t, ElectionPlan(name(t), p))
		checkElection(t, res, impl)
	})
}

// checkElection: the higher priority ends up holding the VIP and, once it
// does, the lower one never claims it again; the client reaches lb1 without
// a single failure. (Before lb1 wins, lb2 may legitimately be master for a
// moment if its daemon came up first: that is logged, not failed.)
// startRace: both daemons start within milliseconds in the lab, so their
// first Master_Down_Timers can expire within one advert of each other; the
// loser then steps down on the first advert it hears. A claim later than
// this is a real election fault.
const startRace = 100 * time.Millisecond

func checkElection(t *testing.T, res *Results, impl lp.Impl) {
	t.Helper()
	elected, _ := res.Step(LabelElected)
	if got := res.FinalHolders(); !slices.Equal(got, []string{lp.LB1}) {
		t.Errorf("VIP holders at the end = %v, want [lb1]\n%s", got, Diagnose(res))
	}
	startClaim := false
	for _, e := range res.VIPChanges(res.Started, res.Finished) {
		switch {
		case e.Node != lp.LB2 || !e.Held:
		case e.At.After(elected.End.Add(startRace)):
			t.Errorf("lb2 (lower priority) claimed the VIP %v after lb1 had it\n%s", e.At.Sub(elected.End), Diagnose(res))
		default:
			startClaim = true
			t.Logf("note: lb2 was master for a moment during start-up (%v after topology ready)", e.At.Sub(res.Ready))
		}
	}
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run")
	}
	st := run.Stats()
	t.Logf("client: %s", st)
	// After a start-up claim by lb2, keepalived (the baseline, not the
	// subject) may leave the client's ARP entry on lb2 for one request.
	allowed := 0
	if startClaim && impl == lp.Keepalived {
		allowed = 1
	}
	if st.Total < 20 || st.Failed > allowed || st.Responder() != lp.LB1 {
		t.Errorf("client saw %s, want only successful answers from lb1", st)
	}
}

func TestFailoverCut(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		checkFailover(t, Run(t, FailoverPlan(name(t), p, FailCut)), p, FailCut)
	})
}

func TestFailoverTerm(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		res := Run(t, FailoverPlan(name(t), p, FailTerm))
		checkFailover(t, res, p, FailTerm)
		if s, _ := res.Step(LabelExit); s.Exec == nil || s.Exec.ExitCode != 0 {
			t.Errorf("lb1 after SIGTERM: %+v, want exit status 0", s.Exec)
		}
	})
}

func TestFailoverKill(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		checkFailover(t, Run(t, FailoverPlan(name(t), p, FailKill)), p, FailKill)
	})
}

func TestPartition(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		res := Run(t, FailoverPlan(name(t), p, FailPartition))
		checkFailover(t, res, p, FailPartition)
		// While partitioned both claim the VIP: that is what a partition
		// looks like, and proves the filter worked.
		take, _ := res.Step(LabelTakeover)
		if got := res.Holders(take.End); !slices.Equal(got, []string{lp.LB1, lp.LB2}) {
			t.Errorf("holders during the partition = %v, want both", got)
		}
		// After the heal the loser steps down. director's loser sends a
		// priority-0 advert, so the winner re-announces and the client
		// follows at once, with default neighbour timers; keepalived
		// needs the plan's fast client timers (see FailoverPlan).
		run, _ := res.ProbeOf(LabelProbe)
		rec, _ := res.Step(LabelRecover)
		after := run.Between(rec.Start, time.Time{}).Stats()
		t.Logf("after the heal (%s, fast client neighbour timers %t): %s", impl, FailoverPlan("", p, FailPartition).Sysctls != nil, after)
		if impl == lp.Director && after.Failed > maxHealFailures {
			t.Errorf("after the heal the client saw %s, want at most %d failures", after, maxHealFailures)
		}
	})
}

// maxHealFailures allows for a request in flight while the loser lets the
// VIP go and one more while the winner's gratuitous ARP is on its way.
const maxHealFailures = 2

func TestUnicast(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		p := lp.DefaultParams(impl)
		p.Unicast = true
		checkFailover(t, Run(t, FailoverPlan(name(t), p, FailCut)), p, FailCut)
	})
}

func TestVersions(t *testing.T) {
	eachImpl(t, func(t *testing.T, impl lp.Impl) {
		for _, v := range []struct {
			version int
			advert  time.Duration
		}{{2, time.Second}, {3, 50 * time.Millisecond}} {
			p := lp.DefaultParams(impl)
			p.Version, p.Advert = v.version, lp.Duration(v.advert)
			t.Run(p.Describe(), func(t *testing.T) {
				checkFailover(t, Run(t, FailoverPlan(name(t), p, FailCut)), p, FailCut)
			})
		}
	})
}

// TestInterop pairs director with keepalived both ways round; each must
// take over from the other and hand the VIP back.
func TestInterop(t *testing.T) {
	for _, pair := range [][2]lp.Impl{{lp.Director, lp.Keepalived}, {lp.Keepalived, lp.Director}} {
		p := lp.DefaultParams(pair[0])
		p.Impl[lp.LB2] = pair[1]
		t.Run(string(pair[0])+"-"+string(pair[1]), func(t *testing.T) {
			checkFailover(t, Run(t, FailoverPlan(name(t), p, FailCut)), p, FailCut)
		})
	}
}

// checkFailover checks a FailoverPlan's results: the client was served by
// lb1 before the failure, by lb2 after the takeover with a bounded outage,
// and by lb1 alone at the end, with exactly one VIP holder.
func checkFailover(t *testing.T, res *Results, p Params, how Failure) {
	t.Helper()
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run\n%s", Diagnose(res))
	}
	fail, _ := res.Step(LabelFail)
	rec, _ := res.Step(LabelRecover)

	// Requests sent just before the failure may end in it: leave out the
	// last probe timeout's worth.
	before := run.Between(run.Start, fail.Start.Add(-150*time.Millisecond)).Stats()
	if before.Failed != 0 || before.Responder() != lp.LB1 {
		t.Errorf("before the failure the client saw %s, want only lb1", before)
	}

	during := run.Between(fail.Start, rec.Start).Stats()
	t.Logf("failover (%s, %s): %s", how, p.Describe(), during)
	// A takeover must happen within Master_Down_Interval; allow as much
	// again for the ARP update and the probe's resolution.
	if limit := 2*masterDown(p) + 500*time.Millisecond; !during.Recovered || during.LongestOutage > limit {
		t.Errorf("failover outage %v (recovered %t), want under %v", during.LongestOutage, during.Recovered, limit)
	}
	if during.Responders[lp.LB2] == 0 {
		t.Errorf("after the takeover no request reached lb2: %s", during)
	}

	after := run.Between(rec.Start, time.Time{}).Stats()
	t.Logf("return to lb1: %s", after)
	steady := run.Between(run.Stop.Add(-SteadyWindow), time.Time{}).Stats()
	if steady.Total < 10 || steady.Failed != 0 || steady.Responder() != lp.LB1 {
		t.Errorf("once lb1 was back the client saw %s, want only successful answers from lb1", steady)
	}
	if got := res.FinalHolders(); !slices.Equal(got, []string{lp.LB1}) {
		t.Errorf("VIP holders at the end = %v, want exactly [lb1]", got)
	}
	if t.Failed() {
		t.Logf("diagnostics:\n%s", Diagnose(res))
	}
}
