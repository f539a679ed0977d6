//go:build lab

package labtests

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/director-lb/director/cloud/ec2fake"
	lp "github.com/director-lb/director/labtests/labplan"
)

// stateOf decodes the part of "director state -json" the EC2 test reads.
type stateOf struct {
	Instances []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Cloud *struct {
			Holding   bool   `json:"holding"`
			Verified  bool   `json:"verified"`
			Moves     uint64 `json:"moves"`
			LastError string `json:"last_error"`
		} `json:"cloud"`
	} `json:"instances"`
}

func instanceState(t *testing.T, res *Results, label string) (state string, holding bool) {
	t.Helper()
	s, ok := res.Step(label)
	if !ok || s.Exec == nil {
		t.Fatalf("no output for %s", label)
	}
	var st stateOf
	if err := json.Unmarshal([]byte(s.Exec.Stdout), &st); err != nil || len(st.Instances) != 1 {
		t.Fatalf("%s: director state -json: %v\n%s", label, err, s.Exec.Stdout)
	}
	in := st.Instances[0]
	if in.Cloud == nil {
		t.Fatalf("%s: no cloud state in %s", label, s.Exec.Stdout)
	}
	t.Logf("%s: %s, cloud holding %t verified %t moves %d last error %q", label, in.State, in.Cloud.Holding, in.Cloud.Verified, in.Cloud.Moves, in.Cloud.LastError)
	return in.State, in.Cloud.Holding
}

// checkEC2View decodes the fake's /_fake/state that the step labelled
// label ended on and checks that node's ENI holds both VIPs, the IPv6 one
// included, and the Elastic IP; it logs how long the step waited for it.
func checkEC2View(t *testing.T, res *Results, label, node string) {
	t.Helper()
	s, ok := res.Step(label)
	if !ok || s.Exec == nil {
		t.Errorf("%s: no output of the fake's state", label)
		return
	}
	var st ec2fake.State
	if err := json.Unmarshal([]byte(s.Exec.Stdout), &st); err != nil {
		t.Errorf("%s: the fake's state: %v\n%s", label, err, s.Exec.Stdout)
		return
	}
	eni := lp.EC2Nodes()[node].ENI
	v4, v6 := netip.MustParseAddr(lp.VIP4Addr), lp.VIP6.Addr()
	if st.IPs[v4] != eni || st.IPs[v6] != eni {
		t.Errorf("%s: the fake has %s on %q and %s on %q, want both on %s's ENI %s", label, v4, st.IPs[v4], v6, st.IPs[v6], node, eni)
	}
	if a := st.Associations[lp.EC2AllocID]; a.ENI != eni || a.PrivateIP != v4 {
		t.Errorf("%s: the Elastic IP points at %s on %q, want %s on %s", label, a.PrivateIP, a.ENI, v4, eni)
	}
	t.Logf("%s: fake EC2 shows %s and %s on %s (%s's ENI) after %v", label, v4, v6, eni, node, s.Took().Round(time.Millisecond))
}

// maxFailbackStraddles allows the one request whose connection lb2's own
// HTTP server accepted just before the hand-over: in this lab the load
// balancers terminate HTTP themselves (no IPVS), so a connection open
// while the client's ARP entry flips to lb1 cannot survive (lp.Straddles).
// The prober sends one request at a time and the entry flips once.
const maxFailbackStraddles = 1

// checkQuiet asserts that the client saw no failure on the network in
// run's part sent within [from, to) (a zero to: until the end): no fine
// request lost, no HTTP request failed other than at an ARP flip (at
// most maxStraddles of those) or in a guest stall (lp.JudgeFailures), and,
// unless want is "", nobody but want answering (a window the busy guest
// stalled through may have no answer at all). It returns the HTTP part's
// stats and the verdict.
func checkQuiet(t *testing.T, res *Results, run lp.ProbeRun, what string, from, to time.Time, want string, maxStraddles int) (lp.ProbeStats, lp.Judged) {
	t.Helper()
	http, fine := run.Between(from, to), run.Fine.Between(from, to)
	j := lp.JudgeFailures(http, fine, res.ARPFlips(from, to))
	st := http.Stats()
	if lost := fine.Lost(); lost > 0 {
		t.Errorf("%s: the fine probe lost %d of %d requests: %s", what, lost, len(fine.Samples), fine.Failures(res.Ready))
	}
	if len(j.Network) > 0 {
		t.Errorf("%s: %d HTTP requests failed on the network (%s): %s", what, len(j.Network), st,
			lp.ProbeRun{Samples: j.Network}.Failures(res.Ready))
	}
	if len(j.Straddles) > maxStraddles {
		t.Errorf("%s: %d HTTP requests failed at the ARP flip, want at most %d", what, len(j.Straddles), maxStraddles)
	}
	for r := range st.Responders {
		if want != "" && r != want {
			t.Errorf("%s: the client saw %s, want only %s", what, st, want)
			break
		}
	}
	return st, j
}

// TestEC2Failback runs the unicast pair against the fake EC2 region inside
// the guest: the IPv4 VIP (ENI secondary IP), the IPv6 VIP (unassigned
// from the old master's ENI, assigned to the new one's) and the Elastic IP
// follow the master through a cut, stay on lb2 when lb1 returns (preempt
// false), and come back with "director failback" without a client
// request lost on the network (checkQuiet).
func TestEC2Failback(t *testing.T) {
	res := Run(t, EC2FailbackPlan(name(t)))
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run\n%s", Diagnose(res))
	}
	fail, _ := res.Step(LabelFail)
	rec, _ := res.Step(LabelRecover)
	fb, _ := res.Step(LabelFailback)

	if run.Fine == nil {
		t.Fatalf("no fine probe run\n%s", Diagnose(res))
	}
	checkQuiet(t, res, run, "before the cut", run.Start, fail.Start.Add(-150*time.Millisecond), lp.LB1, 0)
	t.Logf("failover (cut): %s", run.Between(fail.Start, rec.Start).Stats())
	checkEC2View(t, res, LabelEC2LB1, lp.LB1)
	checkEC2View(t, res, LabelEC2LB2, lp.LB2)
	checkEC2View(t, res, LabelEC2Back, lp.LB1)
	// Locally too: the IPv6 VIP followed mastership on eth0.
	if held := lp.HoldersAt(res.VIP, lp.VIP6.Addr().String(), res.Finished); !slices.Equal(held, []string{lp.LB1}) {
		t.Errorf("holders of %s at the end: %v, want [lb1]", lp.VIP6.Addr(), held)
	}
	if held := lp.HoldersAt(res.VIP, lp.VIP6.Addr().String(), fb.Start); !slices.Equal(held, []string{lp.LB2}) {
		t.Errorf("holders of %s just before failback: %v, want [lb2]", lp.VIP6.Addr(), held)
	}

	// Healed, lb1 must not preempt: lb2 alone holds the VIP until failback.
	if got := res.Holders(fb.Start); !slices.Equal(got, []string{lp.LB2}) {
		t.Errorf("VIP holders just before failback = %v, want [lb2] (nopreempt)", got)
	}
	for _, e := range res.VIPChanges(rec.Start, fb.Start) {
		if e.Node == lp.LB1 && e.Held {
			t.Errorf("lb1 took the VIP %v after the heal, before failback", e.At.Sub(rec.Start))
		}
	}
	if st, holding := instanceState(t, res, LabelHealedState); st != "BACKUP" || holding {
		t.Errorf("lb1 after the heal: %s, cloud holding %t; want BACKUP, not holding", st, holding)
	}
	// lb1's return must not disturb the client at all: it stays BACKUP.
	idle, ij := checkQuiet(t, res, run, "between the heal and failback", rec.Start, fb.Start, lp.LB2, 0)
	t.Logf("healed, before failback: %s (%s)", idle, ij)

	if fb.Exec == nil || fb.Exec.ExitCode != 0 {
		t.Errorf("director failback: %+v, want exit status 0", fb.Exec)
	} else {
		t.Logf("director failback took %v: %s", fb.Took().Round(time.Millisecond), fb.Exec.Stdout)
	}
	// The figure: failed client requests from the failback command until
	// the end of the probe run (the VIP and the EIP back on lb1 by then).
	// Make-before-break: the fine probe may lose nothing, and no HTTP
	// request may fail but one at the client's ARP flip and those the
	// guest ran late.
	window, j := checkQuiet(t, res, run, "failback", fb.Start, time.Time{}, "", maxFailbackStraddles)
	fine := run.Fine.Between(fb.Start, time.Time{})
	flips := res.ARPFlips(fb.Start, time.Time{})
	t.Logf("FIGURE failback window (%v): %s: %s; fine probe %s, slowest answer %v; client ARP flips %d",
		run.Stop.Sub(fb.Start).Round(time.Millisecond), window, j, fine.Stats(), fine.Slowest().Round(time.Millisecond), len(flips))
	if len(flips) != 1 {
		t.Errorf("failback: the client's ARP entry flipped %d times, want once", len(flips))
	}
	steady, _ := checkQuiet(t, res, run, "after failback", run.Stop.Add(-SteadyWindow), time.Time{}, lp.LB1, 0)
	if steady.Total < 10 || steady.Responders[lp.LB1] == 0 {
		t.Errorf("after failback the client saw %s, want at least 10 requests, answered by lb1", steady)
	}
	if got := res.FinalHolders(); !slices.Equal(got, []string{lp.LB1}) {
		t.Errorf("VIP holders at the end = %v, want [lb1]", got)
	}
	if st, holding := instanceState(t, res, LabelStateLB1); st != "MASTER" || !holding {
		t.Errorf("lb1 at the end: %s, cloud holding %t; want MASTER, holding", st, holding)
	}
	if st, holding := instanceState(t, res, LabelStateLB2); st != "BACKUP" || holding {
		t.Errorf("lb2 at the end: %s, cloud holding %t; want BACKUP, not holding", st, holding)
	}
	if t.Failed() {
		t.Logf("diagnostics:\n%s", Diagnose(res))
	}
}
