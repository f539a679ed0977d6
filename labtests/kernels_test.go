//go:build lab

package labtests

import (
	"slices"
	"strings"
	"testing"

	lp "github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/labtests/uml"
)

// TestKernels boots every guest kernel candidate that this host can run
// and runs the shortest VRRP scenario on each, director's pair: whichever
// kernel a later host gets, it has been through the lab. A candidate that
// does not boot here (Debian 12's on a CPU with AMX) is reported, not
// failed; at least one must boot.
func TestKernels(t *testing.T) {
	booted := 0
	for _, cand := range uml.Candidates() {
		t.Run(cand, func(t *testing.T) {
			lab, err := NewLabKernel(t.Context(), t.Logf, cand)
			if err != nil {
				t.Logf("not on this host: %v", err)
				return
			}
			booted++
			t.Logf("running the election on %s", lab.Kernel())
			res := Run(t, ElectionPlan(name(t), lp.DefaultParams(lp.Director)), Options{Kernel: cand})
			checkElection(t, res, lp.Director)
			if got := res.Logs["console"]; !containsLine(got, "lab: guest kernel "+lab.Kernel().Kernel.Release) {
				t.Errorf("the scenario's console does not show kernel %s", lab.Kernel().Kernel.Release)
			}
		})
	}
	if booted == 0 {
		t.Fatalf("no guest kernel candidate boots on this host (%s)", uml.ReadHost())
	}
}

func containsLine(s, line string) bool {
	return slices.Contains(strings.Split(s, "\n"), line)
}
