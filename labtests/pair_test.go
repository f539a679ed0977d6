//go:build lab

package labtests

import (
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestPair: runtime decisions and registrations made on lb1 reach lb2
// over the pair API, and lb2 honours them once it is master.
func TestPair(t *testing.T) {
	res := Run(t, PairPlan(name(t), PairParams()))
	if s, ok := res.Step(LabelPaired); !ok || !s.OK {
		t.Fatalf("lb1 never reported matching configurations: %+v\n%s", s, Diagnose(res))
	}
	if got := strings.TrimSpace(execOut(t, res, LabelRegWrong)); got != "401" {
		t.Errorf("registration with a wrong token answered %q, want 401", got)
	}
	if got := strings.TrimSpace(execOut(t, res, LabelRegister)); got != "200" {
		t.Errorf("registration answered %q, want 200", got)
	}
	reg, _ := res.Step(LabelRegister)
	onLB2, _ := res.Step(LabelRegOnLB2)
	if !onLB2.OK {
		t.Errorf("the registration on lb1 never reached lb2's table\n%s", Diagnose(res))
	}
	drain, _ := res.Step(LabelDrainLB1)
	drained, _ := res.Step(LabelDrainOnLB2)
	if !drained.OK {
		t.Errorf("the drain on lb1 never reached lb2's table\n%s", Diagnose(res))
	}
	t.Logf("replication to lb2: registration in its table %v after the request, drain %v after the command",
		onLB2.End.Sub(reg.End).Round(time.Millisecond), drained.End.Sub(drain.End).Round(time.Millisecond))

	// lb2 as master honours lb1's decisions: no rs2, the registered server in.
	run := probeRun(t, res)
	took, _ := res.Step(LabelTakeover)
	st := run.Between(took.End.Add(500*time.Millisecond), time.Time{}).Stats()
	t.Logf("with lb2 master: %s", st)
	if st.Total < 50 || st.Failed > 0 || st.Responders[lp.RS2] != 0 || st.Responders[lp.Sorry] == 0 || st.Responders[lp.RS1] == 0 {
		t.Errorf("with lb2 master the client saw %s, want rs1 and the registered sorry host, no rs2, no failure", st)
	}
	state := execOut(t, res, LabelPairState)
	if !strings.Contains(state, "(registered)") || !strings.Contains(state, "drain") {
		t.Errorf("lb2's state does not show the registration and the drain:\n%s", state)
	}
}
