package labtests

import (
	"fmt"
	"io"
	"strings"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// NarrativeConsole returns a console sink that writes only the guest
// program's own lines (its commentary, steps, VIP moves and probe
// summaries) to w, for a person watching; the full console stays in
// console.log.
func NarrativeConsole(w io.Writer) func(string) {
	return func(line string) {
		if rest, ok := strings.CutPrefix(line, "lab "); ok {
			fmt.Fprintln(w, rest)
		}
	}
}

// DemoSummary condenses a DemoPlan's results into a few lines.
func DemoSummary(res *Results) string {
	var b strings.Builder
	for _, label := range []string{"steady", "failover", "return"} {
		if run, ok := res.ProbeOf(label); ok {
			fmt.Fprintf(&b, "%-9s %s\n", label+":", run.Stats())
		}
	}
	if run, ok := res.ProbeOf("steady"); ok {
		st := run.Stats()
		fmt.Fprintf(&b, "balance:  rs1 answered %d and rs2 %d of %d requests; the load balancers' own servers %d\n",
			st.Responders[lp.RS1], st.Responders[lp.RS2], st.Total, st.Responders[lp.LB1]+st.Responders[lp.LB2])
	}
	if el, ok := res.Step(LabelElected); ok && el.OK {
		fmt.Fprintf(&b, "election:  lb1 held the VIP %v after start\n", el.End.Sub(res.Steps[0].Start).Round(time.Millisecond))
	}
	if tk, ok := res.Step(LabelTakeover); ok && tk.OK {
		fmt.Fprintf(&b, "takeover:  lb2 held the VIP %v after lb1 was cut off\n", tk.Took().Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "VIP holders at the end: %v\n", res.FinalHolders())
	return b.String()
}

// DemoParams are the demo's settings: impl on both nodes, VRRPv3 every
// 100 ms, the lab's IPVS services.
func DemoParams(impl lp.Impl) Params { return IPVSParams(impl) }
