//go:build lab

package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

const haproxyCycles = 3

// TestHAProxyPair runs the most common keepalived deployment, two HAProxy
// nodes with a tracking script, for keepalived and for director in one
// run: HAProxy is killed on the master three times; the VIP must move to
// the backup within fall × interval plus the advert timing, and come back
// when HAProxy does. Then lb1's maintenance file moves mastership away and
// back. The client's longest outage per kill is the figure, beside
// keepalived's.
func TestHAProxyPair(t *testing.T) {
	outages := map[lp.Impl][]time.Duration{}
	for _, impl := range impls {
		t.Run(string(impl), func(t *testing.T) {
			p := HAProxyParams(impl)
			res := Run(t, HAProxyPlan(name(t), p, haproxyCycles))
			for i := range haproxyCycles {
				run, ok := res.ProbeOf(CycleLabel(i))
				if !ok {
					t.Fatalf("no probe for %s", haproxyCycleName(i))
				}
				st := run.Stats()
				if !st.Recovered || st.Responders[lp.RS1] == 0 || st.Responders[lp.RS2] == 0 {
					t.Errorf("%s: %s, want a recovered client answered by both real servers through HAProxy", haproxyCycleName(i), st)
				}
				outages[impl] = append(outages[impl], st.LongestOutage)
			}
			kills := res.StepsLabelled(LabelHAProxyKill)
			moves := res.StepsLabelled(LabelHAProxyMove)
			for i := range min(len(kills), len(moves)) {
				took := moves[i].End.Sub(kills[i].End)
				t.Logf("%s: VIP on lb2 %v after HAProxy was killed on lb1", haproxyCycleName(i), took.Round(time.Millisecond))
			}
			on, _ := res.Step(LabelMaintOn)
			moved, _ := res.Step(LabelMaintMoved)
			off, _ := res.Step(LabelMaintOff)
			back, _ := res.Step(LabelMaintBack)
			t.Logf("maintenance file: lb2 took over %v after it was set, lb1 back %v after it was cleared",
				moved.End.Sub(on.End).Round(time.Millisecond), back.End.Sub(off.End).Round(time.Millisecond))
			if run, ok := res.ProbeOf(LabelMaintProbe); ok {
				st := run.Stats()
				t.Logf("client across the maintenance moves: %s", st)
				if !st.Recovered {
					t.Errorf("client did not recover after the maintenance moves: %s", st)
				}
			}
			if got := res.FinalHolders(); len(got) != 1 || got[0] != lp.LB1 {
				t.Errorf("VIP holders at the end = %v, want [lb1]\n%s", got, Diagnose(res))
			}
		})
	}
	var b strings.Builder
	fmt.Fprintln(&b, RanOn(t))
	fmt.Fprintf(&b, "HAProxy pair, HAProxy killed on the master, check every 1s fall 2: client's longest outage, median (max) of %d\n", haproxyCycles)
	for _, impl := range impls {
		fmt.Fprintf(&b, "  %-10s %s\n", impl, figureCell(outages[impl], map[bool]string{true: "", false: "failed"}[len(outages[impl]) == haproxyCycles]))
	}
	if k, d := median(outages[lp.Keepalived]), median(outages[lp.Director]); k > 0 && d > 0 {
		fmt.Fprintf(&b, "  director/keepalived %.2f\n", d.Seconds()/k.Seconds())
	}
	t.Logf("\n%s", b.String())
	if err := os.WriteFile(filepath.Join(".work", "haproxy-figure.txt"), []byte(b.String()), 0o644); err != nil {
		t.Errorf("write figure: %v", err)
	}
}

// TestHooksNeverDelayFailover: lb2's notify_master hangs for 10 s and
// leaves a child sleeping a minute. The takeover after lb1 is cut off must
// take no longer than a plain failover's in the same run (the hook runs
// off the failover path), the hook and its child must be gone after
// hooks.timeout, and the FIFO must have a line for each of lb2's changes.
func TestHooksNeverDelayFailover(t *testing.T) {
	plain := lp.DefaultParams(lp.Director)
	base := Run(t, FailoverPlan(name(t)+"_plain", plain, FailCut))
	res := Run(t, HooksPlan(name(t), HooksParams()))
	took := func(r *Results) time.Duration {
		fail, _ := r.Step(LabelFail)
		tk, _ := r.Step(LabelTakeover)
		return tk.End.Sub(fail.End)
	}
	without, with := took(base), took(res)
	t.Logf("takeover after the cut: %v without hooks, %v with a notify_master that hangs (delay %v)",
		without.Round(time.Millisecond), with.Round(time.Millisecond), (with - without).Round(time.Millisecond))
	// A hook run on the failover path would add its 1 s timeout at least.
	if with > without+500*time.Millisecond {
		t.Errorf("the takeover with a hanging hook took %v, against %v without hooks", with, without)
	}
	if s, _ := res.Step(LabelHookLeft); s.Exec == nil || strings.TrimSpace(s.Exec.Stdout) != "0" {
		t.Errorf("hook processes left after hooks.timeout: %+v", s.Exec)
	}
	if !strings.Contains(res.Logs[lp.LB2], "hook timed out") {
		t.Errorf("lb2 logged no hook timeout:\n%s", tail(res.Logs[lp.LB2], 30))
	}
	s, _ := res.Step(LabelFIFO)
	if s.Exec == nil {
		t.Fatal("no FIFO copy")
	}
	t.Logf("lb2's notify FIFO:\n%s", s.Exec.Stdout)
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(s.Exec.Stdout), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "INSTANCE" {
			states = append(states, f[2])
		}
	}
	// Every change of lb2's has its line: one MASTER line for each time
	// lb2 took the VIP (it may be master for a moment at start-up, before
	// lb1's first advert), each followed by BACKUP, from the first BACKUP.
	taken := 0
	for _, e := range res.VIPChanges(res.Started, res.Finished) {
		if e.Node == lp.LB2 && e.Held {
			taken++
		}
	}
	want := []string{"BACKUP"}
	for range taken {
		want = append(want, "MASTER", "BACKUP")
	}
	if taken == 0 || strings.Join(states, " ") != strings.Join(want, " ") {
		t.Errorf("FIFO states %v, want %v (lb2 took the VIP %d times)", states, want, taken)
	}
}

// TestHAProxyMixedPair: keepalived on one node and director on the other,
// both tracking their HAProxy with the same script settings; each takes
// over from the other when the master's HAProxy dies, and gives the VIP
// back when it returns. This is how a pair migrates, one node at a time.
func TestHAProxyMixedPair(t *testing.T) {
	for _, c := range []struct{ lb1, lb2 lp.Impl }{{lp.Keepalived, lp.Director}, {lp.Director, lp.Keepalived}} {
		t.Run(string(c.lb1)+"-"+string(c.lb2), func(t *testing.T) {
			p := HAProxyParams(c.lb1)
			p.Impl = map[string]lp.Impl{lp.LB1: c.lb1, lp.LB2: c.lb2}
			res := Run(t, HAProxyPlan(name(t), p, 1))
			run, ok := res.ProbeOf(CycleLabel(0))
			if !ok {
				t.Fatal("no probe for the kill")
			}
			st := run.Stats()
			t.Logf("%s master, %s backup, HAProxy killed on the master: %s", c.lb1, c.lb2, st)
			if !st.Recovered || st.Responders[lp.RS1] == 0 || st.Responders[lp.RS2] == 0 {
				t.Errorf("client %s, want it recovered through the backup's HAProxy", st)
			}
			if got := res.FinalHolders(); len(got) != 1 || got[0] != lp.LB1 {
				t.Errorf("VIP holders at the end = %v, want [lb1]\n%s", got, Diagnose(res))
			}
		})
	}
}
