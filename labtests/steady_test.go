//go:build lab

package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lp "github.com/director-lb/director/labtests/labplan"
)

// steadyRow is one implementation's loaded steady state.
type steadyRow struct {
	vipChanges int // VIP events on any node during the steady period
	// holding is how the VIP was held meanwhile: a pair that stays split
	// (both nodes holding it) moves nothing, so events alone would count
	// a split brain as a perfect run.
	holding  lp.Holding
	down1    int // real servers lb1 marked down meanwhile
	down2    int // and lb2
	up1, up2 int // real servers at weight 1 at the end
	ok       bool
}

// TestSteadyFigure runs the loaded steady state (SteadyPlan) for
// keepalived and for director and prints the VRRP state changes (VIP moves
// seen on the segment), how long both nodes held the VIP and how long
// neither did, and the healthy real servers marked down by each.
// A benchmark: it runs only with LAB_FIGURES=1.
func TestSteadyFigure(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	d, err := steadyDuration(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	// director runs as installed and with rt_priority (its VRRP process's
	// threads under realtime scheduling, keepalived's vrrp_rt_priority).
	impls := []string{string(lp.Keepalived), string(lp.Director), SteadyRTRow}
	rows := map[string]*steadyRow{}
	for _, impl := range impls {
		row := &steadyRow{}
		rows[impl] = row
		t.Run(impl, func(t *testing.T) {
			var p Params
			switch impl {
			case SteadyRTRow:
				p = SteadyParams(lp.Director)
				p.RTPriority = SteadyRTPriority
			default:
				p = SteadyParams(lp.Impl(impl))
			}
			res := Run(t, SteadyPlan(name(t), p, d))
			s, ok := res.Step(LabelSteady)
			if !ok {
				t.Fatalf("no steady step\n%s", Diagnose(res))
			}
			burn, _ := res.Step(LabelSteadyBurn)
			from, to := burn.Start, s.End
			row.vipChanges = len(res.VIPChanges(from, to))
			row.holding = lp.HoldingOf(res.VIP, lp.VIP4Addr, from, to)
			row.down1 = MarkedDown(res.Logs[lp.LB1], from, to)
			row.down2 = MarkedDown(res.Logs[lp.LB2], from, to)
			for _, c := range []struct {
				label string
				up    *int
			}{{LabelSteadyUp1, &row.up1}, {LabelSteadyUp2, &row.up2}} {
				st, ok := res.Step(c.label)
				if !ok || st.Exec == nil {
					t.Fatalf("no output of %s", c.label)
				}
				_, up, err := idleCounts(st.Exec.Stdout)
				if err != nil {
					t.Fatal(err)
				}
				*c.up = up
			}
			for _, e := range res.VIPChanges(from, to) {
				t.Logf("VIP event during the steady state: %+v", e)
			}
			row.ok = !t.Failed()
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "steady figure: %s\n", RanOn(t))
	fmt.Fprintf(&b, "steady figure: lb1+lb2, VRRPv3 every %v, %d services x %d real servers checked over HTTP every %v by each node, ipvs sync, %d CPU burner(s); %v\n",
		SteadyAdvert, IdleServices, IdlePerService, SteadyInterval, SteadyBurners, d)
	fmt.Fprintf(&b, "steady figure: %-10s %11s %13s %13s %10s %13s %13s %15s\n", "impl", "VIP events", "both held", "longest both", "none held", "down by lb1", "down by lb2", "up at end 1/2")
	for _, impl := range impls {
		r := rows[impl]
		if !r.ok {
			fmt.Fprintf(&b, "steady figure: %-10s failed\n", impl)
			continue
		}
		h := r.holding
		fmt.Fprintf(&b, "steady figure: %-10s %11d %11.1f s %10.1f s %8.1f s %13d %13d %10d/%d\n", impl, r.vipChanges,
			h.Many.Seconds(), h.LongestMany.Seconds(), h.None.Seconds(), r.down1, r.down2, r.up1, r.up2)
	}
	fmt.Print(b.String())
	for line := range strings.Lines(b.String()) {
		t.Log(strings.TrimRight(line, "\n"))
	}
	out := filepath.Join(".work", "steady-figure.txt")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", out, err)
	}
}
