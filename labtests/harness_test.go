package labtests

import (
	"slices"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

func TestMissingPackages(t *testing.T) {
	present := map[string]bool{"/usr/bin/linux.uml": true, "/usr/sbin/ip": true}
	got := missingPackages(func(p string) bool { return present[p] })
	want := []string{"kmod", "ipvsadm", "keepalived", "tcpdump", "nftables", "haproxy", "psmisc", "frr"}
	if !slices.Equal(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
	if got := missingPackages(func(string) bool { return true }); len(got) != 0 {
		t.Errorf("all present: missing = %v", got)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"TestVersions/keepalived/v2/1s": "TestVersions_keepalived_v2_1s",
		"a b:c":                         "a_b_c",
		"///":                           "run",
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func labels(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		if s.Label != "" {
			out = append(out, s.Label)
		}
	}
	return out
}

func TestFailoverPlans(t *testing.T) {
	p := lp.DefaultParams(lp.Keepalived)
	for _, how := range []Failure{FailCut, FailTerm, FailKill, FailPartition} {
		plan := FailoverPlan("x", p, how)
		if err := plan.Validate(); err != nil {
			t.Errorf("%s: %v", how, err)
		}
		got := labels(plan)
		for _, want := range []string{LabelElected, LabelFail, LabelTakeover, LabelRecover, LabelBack, LabelProbe} {
			if !slices.Contains(got, want) {
				t.Errorf("%s plan lacks label %q (has %v)", how, want, got)
			}
		}
		if slices.Contains(got, LabelExit) != (how == FailTerm) {
			t.Errorf("%s plan: wait_exit present = %t", how, slices.Contains(got, LabelExit))
		}
		// The failure must come after the probe starts and before the
		// takeover wait, or the outage is not measured.
		kinds := map[string]int{}
		for i, s := range plan.Steps {
			if s.Label != "" {
				kinds[s.Label] = i
			}
			if s.Kind == lp.KindProbeStart {
				kinds["probe_start"] = i
			}
		}
		if !(kinds["probe_start"] < kinds[LabelFail] && kinds[LabelFail] < kinds[LabelTakeover] && kinds[LabelTakeover] < kinds[LabelRecover]) {
			t.Errorf("%s plan steps out of order: %v", how, plan.Steps)
		}
	}
	if FailoverPlan("x", p, FailPartition).Sysctls[lp.Client] == nil {
		t.Errorf("partition plan without fast client neighbour timers")
	}
}

func TestFiguresAndDemoPlansValidate(t *testing.T) {
	p := lp.DefaultParams(lp.Director)
	fig := FiguresPlan("f", p, FailTerm, 3)
	if err := fig.Validate(); err != nil {
		t.Error(err)
	}
	for i := range 3 {
		if !slices.Contains(labels(fig), CycleLabel(i)) {
			t.Errorf("figures plan lacks %s", CycleLabel(i))
		}
	}
	ff := FailoverFiguresPlan("ff", lp.Keepalived, FigureAdverts, 2)
	if err := ff.Validate(); err != nil {
		t.Error(err)
	}
	for _, a := range FigureAdverts {
		if _, ok := ff.Variants[figureVariant(a)]; !ok {
			t.Errorf("failover figures plan lacks the variant for %v", a)
		}
		for i := range 2 {
			if !slices.Contains(labels(ff), FigureCycleLabel(a, i)) || !slices.Contains(labels(ff), FigureCutLabel(a, i)) {
				t.Errorf("failover figures plan lacks cycle %d at %v", i, a)
			}
		}
	}
	if err := DemoPlan(p).Validate(); err != nil {
		t.Error(err)
	}
	if err := ElectionPlan("e", p).Validate(); err != nil {
		t.Error(err)
	}
}

func TestTimeouts(t *testing.T) {
	v2 := lp.DefaultParams(lp.Keepalived)
	v2.Version, v2.Advert = 2, lp.Duration(time.Second)
	if got := takeoverTimeout(v2); got < 4*time.Second {
		t.Errorf("v2 1s takeover timeout %v is below Master_Down_Interval", got)
	}
	if got := defaultTimeout([]Step{lp.Sleep(time.Second), lp.WaitVIP(lp.LB1, 2*time.Second)}); got != 13*time.Second {
		t.Errorf("defaultTimeout = %v, want 13s", got)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "[... 1 lines omitted]\nb\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a\n", 5); got != "a" {
		t.Errorf("tail short = %q", got)
	}
}
