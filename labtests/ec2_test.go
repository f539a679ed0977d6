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

// maxFailbackFailures allows the one request whose connection lb2's own
// HTTP server accepted just before the hand-over: in this lab the load
// balancers terminate HTTP themselves (no IPVS), so a connection open
// while the client's ARP entry flips to lb1 cannot survive. Seen: 1 of
// about 180 requests in the failback window.
const maxFailbackFailures = 1

// stallAfter marks a failed probe whose 100 ms deadline fired this late:
// the single-CPU guest was not scheduled (host load), which says nothing
// about the network.
const stallAfter = 200 * time.Millisecond

// splitFailures counts run's failed requests, telling network failures
// from guest stalls.
func splitFailures(run lp.ProbeRun) (network, stalled int) {
	for _, s := range run.Samples {
		switch {
		case s.OK:
		case s.Took.D() > stallAfter:
			stalled++
		default:
			network++
		}
	}
	return network, stalled
}

// TestEC2Failback runs the unicast pair against the fake EC2 region inside
// the guest: the IPv4 VIP (ENI secondary IP), the IPv6 VIP (unassigned
// from the old master's ENI, assigned to the new one's) and the Elastic IP
// follow the master through a cut, stay on lb2 when lb1 returns (preempt
// false), and come back with "director failback" without a failed client
// request.
func TestEC2Failback(t *testing.T) {
	res := Run(t, EC2FailbackPlan(name(t)))
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run\n%s", Diagnose(res))
	}
	fail, _ := res.Step(LabelFail)
	rec, _ := res.Step(LabelRecover)
	fb, _ := res.Step(LabelFailback)

	if before := run.Between(run.Start, fail.Start.Add(-150*time.Millisecond)).Stats(); before.Failed != 0 || before.Responder() != lp.LB1 {
		t.Errorf("before the cut the client saw %s, want only lb1", before)
	}
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
	if idle := run.Between(rec.Start, fb.Start).Stats(); idle.Failed != 0 || idle.Responder() != lp.LB2 {
		t.Errorf("between the heal and failback the client saw %s, want only lb2", idle)
	} else {
		t.Logf("healed, before failback: %s", idle)
	}

	if fb.Exec == nil || fb.Exec.ExitCode != 0 {
		t.Errorf("director failback: %+v, want exit status 0", fb.Exec)
	} else {
		t.Logf("director failback took %v: %s", fb.Took().Round(time.Millisecond), fb.Exec.Stdout)
	}
	// The figure: failed client requests from the failback command until
	// the end of the probe run (the VIP and the EIP back on lb1 by then).
	fbRun := run.Between(fb.Start, time.Time{})
	window := fbRun.Stats()
	failed, stalled := splitFailures(fbRun)
	t.Logf("FIGURE failback window (%v): %s; %d failed on the network, %d guest stalls",
		run.Stop.Sub(fb.Start).Round(time.Millisecond), window, failed, stalled)
	if failed > maxFailbackFailures {
		t.Errorf("failback: %d failed client requests on the network (%s), want at most %d", failed, window, maxFailbackFailures)
	}
	steady := run.Between(run.Stop.Add(-SteadyWindow), time.Time{}).Stats()
	if steady.Total < 10 || steady.Failed != 0 || steady.Responder() != lp.LB1 {
		t.Errorf("after failback the client saw %s, want only lb1", steady)
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
