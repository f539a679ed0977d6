//go:build lab

package labtests

import (
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestHandover runs "director failover" and "director failback" ten times
// each under the fine probe and the HTTP prober (HandoverPlan), HTTP
// going through IPVS to the real servers. Asserted: no fine-probe request
// lost in any handover, the client's ARP entry flips once per handover,
// and no HTTP request refused or reset, not even one in flight when the
// client's ARP entry flipped (counted apart, as "at the flip"): with
// connection sync and mh the new master carries it on. HTTP timeouts are
// counted, not asserted: on a loaded host the guest stalls past the
// prober's 100 ms timeout now and then; the fine probe, which waits a
// second, tells a lost request from a slow one.
func TestHandover(t *testing.T) {
	res := Run(t, HandoverPlan(name(t), HandoverParams()))
	run, ok := res.ProbeOf(LabelProbe)
	if !ok || run.Fine == nil {
		t.Fatal("no probe run")
	}
	base := res.Ready
	var straddles, timeouts int
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
			n, slow := 0, 0
			for i, smp := range http.Samples {
				switch {
				case smp.OK:
				case strings.Contains(smp.Err, "timeout"):
					slow++
				case http.StraddlesAt(i, flips):
					n++
				default:
					other = append(other, smp)
				}
			}
			straddles += n
			timeouts += slow
			fst := fine.Stats()
			t.Logf("%s %d (%v): fine %d of %d lost, slowest answer %v; HTTP %d failed (%d at the ARP flip, %d timeouts); ARP flips %d",
				cmd, i, s.Took().Round(time.Millisecond), fst.Failed, fst.Total, fine.Slowest().Round(time.Millisecond),
				http.Stats().Failed, n, slow, len(flips))
			if fst.Failed > 0 {
				t.Errorf("%s %d: the fine probe lost %d requests: %s", cmd, i, fst.Failed, fine.Failures(base))
			}
			if len(other) > 0 {
				t.Errorf("%s %d: %d HTTP requests refused or reset, not at an ARP flip: %s", cmd, i, len(other),
					lp.ProbeRun{Samples: other}.Failures(base))
			}
			if n > 0 {
				t.Errorf("%s %d: %d HTTP requests failed at the ARP flip: the new master did not carry the old master's connection on", cmd, i, n)
			}
			if len(flips) != 1 {
				t.Errorf("%s %d: the client's ARP entry flipped %d times, want once", cmd, i, len(flips))
			}
		}
	}
	t.Logf("FIGURE handover: %d failovers and %d failbacks; fine probe %s; HTTP %s, %d at an ARP flip, %d timeouts",
		HandoverCycles, HandoverCycles, run.Fine.Stats(), run.Stats(), straddles, timeouts)
}
