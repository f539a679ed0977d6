//go:build lab

package labtests

import (
	"os"
	"slices"
	"strings"
	"testing"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestDemo is the demo as a test: director on both nodes, the commentary
// on stdout (go test -tags lab -run TestDemo -v ./labtests/), and checks
// that the story ended as told.
func TestDemo(t *testing.T) {
	res := Run(t, DemoPlan(DemoParams(lp.Director)), Options{Console: NarrativeConsole(os.Stdout)})
	t.Logf("summary:\n%s", DemoSummary(res))

	steady, _ := res.ProbeOf("steady")
	if st := steady.Stats(); st.Failed != 0 || st.Responder() != lp.LB1 {
		t.Errorf("before the failover the client saw %s, want only lb1", st)
	}
	failover, _ := res.ProbeOf("failover")
	if st := failover.Stats(); !st.Recovered || st.Responders[lp.LB2] == 0 {
		t.Errorf("failover: client saw %s, want lb2 answering in the end", st)
	}
	ret, _ := res.ProbeOf("return")
	if n := len(ret.Samples); n == 0 || !ret.Samples[n-1].OK || ret.Samples[n-1].From != lp.LB1 {
		t.Errorf("after lb1's return the last request was not answered by lb1: %s", ret.Stats())
	}
	for _, st := range res.Steps {
		if st.Step.Kind == lp.KindExec && st.Step.Node == lp.LB1 {
			if st.Exec == nil || !strings.Contains(st.Exec.Stdout, lp.VIP4.String()) {
				t.Errorf("exec on lb1 did not show the VIP: %+v", st.Exec)
			}
		}
	}
	if got := res.FinalHolders(); !slices.Equal(got, []string{lp.LB1}) {
		t.Errorf("VIP holders at the end = %v, want [lb1]\n%s", got, Diagnose(res))
	}
}
