package labtests

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	lp "github.com/director-lb/director/labtests/labplan"
)

// stepIndex returns the index of the step labelled label, or -1.
func stepIndex(p Plan, label string) int {
	return slices.IndexFunc(p.Steps, func(s Step) bool { return s.Label == label })
}

func TestIPVSPlans(t *testing.T) {
	p := IPVSParams(lp.Director)
	for _, c := range []struct {
		plan   Plan
		labels []string // in plan order
	}{
		{DSRPlan("dsr", p), []string{LabelIPVSReady, LabelProbe, LabelStats, LabelCounters}},
		{DriftPlan("drift", p), []string{LabelIPVSReady, LabelClear, LabelRepairClear, LabelDelete, LabelRepairDel, LabelProbe}},
		{DrainPlan("drain", p), []string{LabelIPVSReady, LabelOpen, LabelRecover, LabelBack, LabelDrained, LabelHeld, LabelCheck, LabelConns, LabelDeleted, LabelProbe}},
		{AdoptPlan("adopt", p), []string{LabelIPVSReady, LabelRulesBefore, LabelStatsBefore, LabelFail, LabelTakeover, LabelRecover, LabelBack, LabelRulesAfter, LabelStatsAfter, LabelProbe}},
		{SyncPlan("sync", p, true), []string{LabelIPVSReady, LabelOpen, LabelSynced, LabelFail, LabelTakeover, LabelConns}},
		{SyncReloadPlan("syncreload", p), []string{LabelIPVSReady, LabelOpen, LabelSynced, LabelFail, LabelTakeover, LabelConns}},
		{PairPlan("pair", PairParams()), []string{LabelIPVSReady, LabelPaired, LabelRegWrong, LabelRegister, LabelRegOnLB2, LabelDrainLB1, LabelDrainOnLB2, LabelFail, LabelTakeover, LabelProbe, LabelPairState}},
		{DemoPlan(DemoParams(lp.Director)), []string{LabelElected, "steady", LabelFail, LabelTakeover, "failover", LabelRecover, "return"}},
	} {
		if err := c.plan.Validate(); err != nil {
			t.Errorf("%s: %v", c.plan.Name, err)
		}
		last := -1
		for _, l := range c.labels {
			i := stepIndex(c.plan, l)
			if i <= last {
				t.Errorf("%s: step %q at %d, want after %d", c.plan.Name, l, i, last)
			}
			last = i
		}
		if c.plan.Params.IPVS == nil {
			t.Errorf("%s: no IPVS services", c.plan.Name)
		}
	}
	if p.IPVS.Sync || p.IPVS.ResyncInterval != 0 {
		t.Errorf("plan builders changed the caller's params: %+v", *p.IPVS)
	}
	if s := SyncPlan("s", p, false); s.Params.IPVS.Sync {
		t.Errorf("SyncPlan without sync configures sync")
	}
	if s := SyncReloadPlan("s", p); s.Params.IPVS.Sync || !s.Variants[VariantSync].IPVS.Sync {
		t.Errorf("SyncReloadPlan must start without sync and reload to it: %+v, variant %+v", s.Params.IPVS, s.Variants[VariantSync].IPVS)
	}
	if d := DriftPlan("d", p); d.Params.IPVS.ResyncInterval.D().Seconds() != 1 {
		t.Errorf("drift plan resync interval %v, want 1s", d.Params.IPVS.ResyncInterval)
	}
	drain := DrainPlan("drain", p)
	if v := drain.Variants[VariantNoRS2]; v.IPVS == nil || !slices.Equal(v.IPVS.RealServers, []string{lp.RS1}) {
		t.Errorf("drain variant = %+v, want rs1 only", v.IPVS)
	}
	if len(drain.Params.IPVS.RealServers) != 0 {
		t.Errorf("drain plan's first config lost rs2: %+v", drain.Params.IPVS)
	}
	if dsr := DSRPlan("dsr", p); dsr.Files[dsrRulesFile] == "" {
		t.Errorf("DSR plan without its counting rules")
	}
}

func TestDestRE(t *testing.T) {
	drained := regexp.MustCompile(destRE(lp.RS2, lp.EchoPort, 0, 1))
	any1 := regexp.MustCompile(destRE(lp.RS2, lp.HTTPPort, 1, -1))
	for _, c := range []struct {
		re   *regexp.Regexp
		line string
		want bool
	}{
		{drained, "  -> 10.0.0.22:7                  Route   0      1          0         ", true},
		{drained, "  -> 10.0.0.22:7                  Route   0      11         0", false},
		{drained, "  -> 10.0.0.22:7                  Route   1      1          0", false},
		{drained, "  -> 10.0.0.22:70                 Route   0      1          0", false},
		{any1, "  -> 10.0.0.22:80                 Route   1      0          128", true},
		{any1, "  -> 10.0.0.22:80                 Route   10     0          128", false},
		{any1, "  -> 10.0.0.21:80                 Route   1      0          128", false},
	} {
		if got := c.re.MatchString("header\n" + c.line + "\n"); got != c.want {
			t.Errorf("%s on %q = %t, want %t", c.re, c.line, got, c.want)
		}
	}
}

func TestDSRCountRules(t *testing.T) {
	r := dsrCountRules()
	for _, want := range []string{
		"table bridge lab_dsr", "hook forward",
		`oifname "vlb1" ip saddr 10.0.0.100 tcp sport 80 counter comment "replies to lb1"`,
		`iifname "vlb1" ip saddr 10.0.0.100 tcp sport 80 counter comment "replies from lb1"`,
	} {
		if !strings.Contains(r, want) {
			t.Errorf("rules lack %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "drop") {
		t.Errorf("counting rules drop:\n%s", r)
	}
	out := `		oifname "vlb1" ip saddr 10.0.0.100 tcp sport 80 counter packets 0 bytes 0 comment "replies to lb1"
		oifname "vclient" ip saddr 10.0.0.100 tcp sport 80 counter packets 804 bytes 65475 comment "replies to client"`
	if got := ParseCounters(out); got[CountRepliesToLB1] != 0 || got[CountRepliesToClient] != 804 || len(got) != 2 {
		t.Errorf("ParseCounters = %v", got)
	}
}

func TestPartitionNeighbourTimers(t *testing.T) {
	if FailoverPlan("x", lp.DefaultParams(lp.Director), FailPartition).Sysctls != nil {
		t.Errorf("director partition plan sets client neighbour timers; it must do without")
	}
	mixed := lp.DefaultParams(lp.Director)
	mixed.Impl[lp.LB2] = lp.Keepalived
	if FailoverPlan("x", mixed, FailPartition).Sysctls[lp.Client] == nil {
		t.Errorf("partition plan with keepalived lacks the fast client timers")
	}
}
