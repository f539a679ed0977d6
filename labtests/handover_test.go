//go:build lab

package labtests

import (
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestHandover runs "director failover" and "director failback" ten times
// each under the fine probe and the HTTP prober (HandoverPlan). Goal and
// assertion: no fine-probe request lost in any handover, and no failed
// HTTP request except one in flight at the moment the client's ARP entry
// flipped: in this lab the load balancers terminate HTTP themselves, so a
// connection the old master accepted cannot survive the flip, whatever
// the daemons do (Straddles). Those are counted and logged.
func TestHandover(t *testing.T) {
	res := Run(t, HandoverPlan(name(t), HandoverParams()))
	run, ok := res.ProbeOf(LabelProbe)
	if !ok || run.Fine == nil {
		t.Fatal("no probe run")
	}
	base := res.Ready
	var straddles int
	for i := range HandoverCycles {
		for _, cmd := range []string{"failover", "failback"} {
			s, ok := res.Step(HandoverLabel(cmd, i))
			if !ok {
				t.Fatalf("no %s %d", cmd, i)
			}
			// The window runs from the command to the next one (or the
			// end of the probe run).
			end := time.Time{}
			next := HandoverLabel("failback", i)
			if cmd == "failback" {
				next = HandoverLabel("failover", i+1)
			}
			if n, ok := res.Step(next); ok {
				end = n.Start
			}
			fine, http := run.Fine.Between(s.Start, end), run.Between(s.Start, end)
			flips := res.ARPFlips(s.Start, end)
			var other []lp.Sample
			n := 0
			for _, smp := range http.Samples {
				switch {
				case smp.OK:
				case lp.Straddles(smp, flips):
					n++
				default:
					other = append(other, smp)
				}
			}
			straddles += n
			fst := fine.Stats()
			t.Logf("%s %d (%v): fine %d of %d lost, slowest answer %v; HTTP %d failed (%d at the ARP flip); ARP flips %d",
				cmd, i, s.Took().Round(time.Millisecond), fst.Failed, fst.Total, fine.Slowest().Round(time.Millisecond),
				http.Stats().Failed, n, len(flips))
			if fst.Failed > 0 {
				t.Errorf("%s %d: the fine probe lost %d requests: %s", cmd, i, fst.Failed, fine.Failures(base))
			}
			if len(other) > 0 {
				t.Errorf("%s %d: %d failed HTTP requests not at an ARP flip: %s", cmd, i, len(other),
					lp.ProbeRun{Samples: other}.Failures(base))
			}
			if len(flips) != 1 {
				t.Errorf("%s %d: the client's ARP entry flipped %d times, want once", cmd, i, len(flips))
			}
		}
	}
	t.Logf("FIGURE handover: %d failovers and %d failbacks; fine probe %s; HTTP %s, %d at an ARP flip",
		HandoverCycles, HandoverCycles, run.Fine.Stats(), run.Stats(), straddles)
}
