//go:build lab

package labtests

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// RoutedAnnouncer is who announces the VIP in TestRouted and the
// figures: director's own routed mode (lp.AnnounceFRR runs the stand-in).
const RoutedAnnouncer = lp.AnnounceDirector

// TestRouted: three active directors behind the router's ECMP, in one
// boot (RoutedPlan): three next hops, the split of the client's flows,
// a real server's death seen alike by every director, and lb1's death
// under 100 streaming connections with mh+sync (all must survive), mh
// alone and rr without sync (reported).
func TestRouted(t *testing.T) {
	p := RoutedParams(RoutedAnnouncer)
	res := Run(t, RoutedPlan(name(t), p))
	var fig strings.Builder
	fmt.Fprintln(&fig, RanOn(t))
	fmt.Fprintf(&fig, "routed: %s\n", p.Describe())

	hops := NextHops(execOut(t, res, LabelHops))
	if len(hops) != 3 {
		t.Errorf("router's VIP route has next hops %v, want the three directors", hops)
	}
	fmt.Fprintf(&fig, "  next hops: %s\n", strings.Join(hops, ", "))
	t.Logf("router's view:\n%s", execOut(t, res, LabelRouteView))

	spread := probeOf(t, res, LabelSpread).Stats()
	split := serviceConns(execOut(t, res, LabelStats))
	// Failures are reported, not asserted: in a guest that other lab
	// guests' load stalls, a 100 ms dial times out now and then.
	if spread.Total-spread.Failed < 20 {
		t.Errorf("spread run: %s, want requests answered", spread)
	}
	for n, c := range split {
		if c == 0 {
			t.Errorf("%s took none of the client's %d connections (split %v)", n, spread.Total, split)
		}
	}
	fmt.Fprintf(&fig, "  split of %d new connections over the directors (IPVS Conns): %s; real servers %v\n", spread.Total, fmtCounts(split), spread.Responders)

	checkRSDeath(t, res, p, &fig)
	if p.Routed.Announcer == lp.AnnounceDirector {
		checkDrain(t, res, &fig)
	}
	for _, v := range SurvivalVariants {
		checkSurvival(t, res, v, &fig)
	}
	t.Logf("\n%s", fig.String())
}

// checkRSDeath: every director took rs2 out (its log's IPVS update to
// weight 0: the kernel's view, to the millisecond) within one check
// interval of the others, and once all had, no new flow went to rs2 and
// none failed.
func checkRSDeath(t *testing.T, res *Results, p Params, fig *strings.Builder) {
	t.Helper()
	down, _ := res.Step(LabelRSDown)
	rs, _ := lp.HostByName(lp.RS2)
	dest := fmt.Sprintf("%s:%d", rs.IPv4.Addr(), lp.HTTPPort)
	out := map[string]time.Duration{}
	var last time.Time
	for _, n := range p.LBs() {
		at, ok := weightZeroAt(res.Logs[n], dest, down.Start)
		if !ok {
			t.Errorf("%s never set %s to weight 0 after it died\n%s", n, dest, Diagnose(res))
			continue
		}
		out[n] = at.Sub(down.End)
		if at.After(last) {
			last = at
		}
	}
	if len(out) == 0 {
		return
	}
	spread := slices.Max(slices.Collect(maps.Values(out))) - slices.Min(slices.Collect(maps.Values(out)))
	// Each director's checks run on their own phase, so with fall 2 each
	// one's verdict lands between one and two rounds after the death: they
	// can differ by up to a round, which the checker's 10% jitter
	// lengthens, plus the guest's scheduling delay.
	if bound := RoutedCheckInterval*11/10 + 200*time.Millisecond; spread > bound {
		t.Errorf("the directors took rs2 out %v apart (%s), want within one check round (%v with jitter and scheduling)", spread, fmtDurations(out), bound)
	}
	run := probeOf(t, res, LabelRSProbe)
	after := run.Between(last, time.Time{}).Stats()
	before := run.Between(down.End, last).Stats()
	// A new flow sent to rs2 would meet its closed listener: refused.
	if refused := refusals(run.Between(last, time.Time{})); after.Responders[lp.RS2] > 0 || refused > 0 || after.Total == after.Failed {
		t.Errorf("after every director took rs2 out: %s, %d refused, want no request to reach rs2", after, refused)
	}
	fmt.Fprintf(fig, "  rs2 dies: weight 0 in each director's kernel after %s (%v apart); requests until all had: %s; after: %s\n",
		fmtDurations(out), spread.Round(time.Millisecond), before, after)
}

// refusals counts the requests refused by a real server.
func refusals(run lp.ProbeRun) int {
	n := 0
	for _, s := range run.Samples {
		if strings.Contains(s.Err, "refused") {
			n++
		}
	}
	return n
}

// weightZeroAt is when a director's log shows it setting dest to weight
// 0 in the HTTP service, the first time after from.
func weightZeroAt(log, dest string, from time.Time) (time.Time, bool) {
	svc := fmt.Sprintf(`service="TCP %s:%d"`, lp.VIP4.Addr(), lp.HTTPPort)
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="ipvs: updated"`) || !strings.Contains(line, svc) ||
			!strings.Contains(line, "destination="+dest+" weight=0") || !strings.HasPrefix(line, "time=") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && at.After(from) {
			return at, true
		}
	}
	return time.Time{}, false
}

// checkDrain: drain-node on lb2 reported its drain, the router dropped
// lb2's next hop, no connection died, no new request was lost (the fine
// probe lost none, and every failed HTTP request was a guest stall), and
// lb2's IPVS packet counters stood still afterwards: no connection's
// packets went through it any more.
func checkDrain(t *testing.T, res *Results, fig *strings.Builder) {
	t.Helper()
	drain, _ := res.Step(LabelDrainNode)
	if !drain.OK {
		t.Errorf("director drain-node on lb2 failed: %s", drain.Err)
	}
	out := ""
	if drain.Exec != nil {
		out = strings.TrimSpace(drain.Exec.Stdout + drain.Exec.Stderr)
	}
	cs, ok := res.ConnsOf(LabelDrainConns)
	if !ok {
		t.Fatal("no connection record across the drain")
	}
	st := cs.Stats()
	if st.Died > 0 {
		t.Errorf("%d of %d connections died across lb2's drain: %s", st.Died, st.Total, st)
	}
	run := probeOf(t, res, LabelDrainProbe)
	ps := run.Stats()
	if run.Fine == nil {
		t.Fatal("the drain's probe ran without the fine probe")
	}
	fine := run.Fine.Stats()
	// The fine probe is answered by the director its flow hashes to,
	// from the VIP: the withdrawal moves that flow like any other, and
	// none of its requests may be lost. An HTTP request that timed out
	// while the fine probe lost nothing was run late by the busy guest
	// (each exec of a director or ipvsadm there stalls it for a moment),
	// not lost; any other failure is the drain's.
	judged := lp.JudgeFailures(run, *run.Fine, nil)
	// The fine probe's answers come from the directors themselves, not
	// through IPVS: that it lost nothing does not show that a timed-out
	// HTTP request's SYN was not dropped in IPVS. A stall must show in
	// the fine probe as well: a gap in its sends, or a late answer.
	var unseen []lp.Sample
	for _, smp := range judged.Stalls {
		if run.Fine.StallSeen(smp.At, smp.At.Add(smp.Took.D())) < drainStallSeen {
			unseen = append(unseen, smp)
		}
	}
	if len(judged.Network) > 0 || len(unseen) > 0 || run.Fine.Lost() > 0 || fine.Total-fine.Failed == 0 {
		t.Errorf("across the drain: HTTP %s (%s: %v; %d timeouts with no stall in the fine probe: %v); fine probe %s, %d lost; want no request lost",
			ps, judged, judged.Network, len(unseen), unseen, fine, run.Fine.Lost())
	}
	a, b := execOut(t, res, LabelDrainStats+"-0"), execOut(t, res, LabelDrainStats+"-1")
	if inPkts(a) != inPkts(b) {
		t.Errorf("lb2 still passed packets after its drain: InPkts %d then %d 3 s later\n%s\n%s", inPkts(a), inPkts(b), a, b)
	}
	gone, _ := res.Step(LabelDrainGone)
	fmt.Fprintf(fig, "  drain of lb2: %q in %v; next hop gone %v after it ended; connections: %s; new connections: %s (%s); fine probe: %s; lb2's InPkts %d, 3 s later %d\n",
		out, drain.Took().Round(time.Millisecond), gone.End.Sub(drain.End).Round(time.Millisecond), st, ps, judged, fine, inPkts(a), inPkts(b))
}

// drainStallSeen is the stall (StallSeen) the fine probe must show for
// an HTTP timeout across a drain to count as the guest's: several times
// its send interval and its round trip in a quiet guest (in the run that
// set it, the 13 timeouts came with 59-383 ms answers or 12-272 ms gaps).
const drainStallSeen = 20 * time.Millisecond

// inPkts sums the InPkts column of ipvsadm -Ln --stats service lines.
func inPkts(out string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && (f[0] == "TCP" || f[0] == "UDP") {
			v, _ := strconv.Atoi(f[3])
			n += v
		}
	}
	return n
}

// checkSurvival reports (and for mh+sync asserts) what lb1's death did to
// the streaming connections and the prober.
func checkSurvival(t *testing.T, res *Results, variant string, fig *strings.Builder) {
	t.Helper()
	kill, _ := res.Step(LabelKill + "-" + variant)
	gone, ok := res.Step(LabelGone + "-" + variant)
	if !ok || !gone.OK {
		t.Errorf("%s: the router never dropped lb1's next hop", variant)
	}
	detect := gone.End.Sub(kill.End)
	cs, ok := res.ConnsOf(LabelSurvConns + "-" + variant)
	if !ok {
		t.Fatalf("%s: no connection record", variant)
	}
	st := cs.Stats()
	kept := 0
	for _, c := range cs.Conns {
		if c.Alive() && c.Echoed > 0 {
			kept++
		}
	}
	run := probeOf(t, res, LabelSurvProbe+"-"+variant).Stats()
	if variant == VariantMHSync {
		if st.Died > 0 {
			t.Errorf("%s: %d of %d connections died when lb1 did: %s", variant, st.Died, st.Total, st)
		}
		if !run.Recovered {
			t.Errorf("%s: the client's new connections never recovered: %s", variant, run)
		}
	}
	fmt.Fprintf(fig, "  lb1 killed and cut (%s): %d of %d connections survived (%s); next hop gone after %v; new connections: %s\n",
		variant, st.Total-st.Died, st.Total, st, detect.Round(time.Millisecond), run)
}

// serviceConns reads statsScript's output: each director's Conns.
func serviceConns(out string) map[string]int {
	m := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == "TCP" {
			m[f[0]], _ = strconv.Atoi(f[3])
		}
	}
	return m
}

func fmtCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fmtDurations(m map[string]time.Duration) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// probeOf is the probe run labelled label; the test stops without it.
func probeOf(t *testing.T, res *Results, label string) lp.ProbeRun {
	t.Helper()
	run, ok := res.ProbeOf(label)
	if !ok {
		t.Fatalf("no probe run %q\n%s", label, Diagnose(res))
	}
	return run
}
