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
	checkBalanced(t, "steady", steady.Stats(), 50)
	failover, _ := res.ProbeOf("failover")
	if st := failover.Stats(); !st.Recovered || st.Responders[lp.RS1] == 0 || st.Responders[lp.RS2] == 0 {
		t.Errorf("failover: client saw %s, want both real servers answering in the end", st)
	}
	ret, _ := res.ProbeOf("return")
	if n := len(ret.Samples); n == 0 || !ret.Samples[n-1].OK || !strings.HasPrefix(ret.Samples[n-1].From, "rs") {
		t.Errorf("after lb1's return the last request was not answered by a real server: %s", ret.Stats())
	}
	statuses := 0
	for _, st := range res.Steps {
		switch st.Step.Kind {
		case lp.KindExec:
			if st.Step.Node == lp.LB1 && (st.Exec == nil || !strings.Contains(st.Exec.Stdout, lp.VIP4.String())) {
				t.Errorf("exec on lb1 did not show the VIP: %+v", st.Exec)
			}
		case lp.KindStatus:
			statuses++
			if st.Exec == nil || !strings.Contains(st.Exec.Stdout, lp.VIPService(lp.HTTPPort)) {
				t.Errorf("status on %s did not show the service: %+v", st.Step.Node, st.Exec)
			}
		}
	}
	if statuses == 0 {
		t.Errorf("the demo showed no IPVS table")
	}
	if got := res.FinalHolders(); !slices.Equal(got, []string{lp.LB1}) {
		t.Errorf("VIP holders at the end = %v, want [lb1]\n%s", got, Diagnose(res))
	}
}
