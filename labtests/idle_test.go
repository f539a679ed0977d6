//go:build lab

package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// idleCase is one row of the idle figure.
type idleCase struct {
	label   string
	impl    lp.Impl
	shared  bool // every service checks GET / (see lp.Idle.SharedPath)
	burners int  // CPU burners beside the daemon (lp.Idle.Burners)
}

// The first two rows are the comparison (1,000 checks each); the third
// shows director sharing identical checks when every service checks /.
var idleCases = []idleCase{
	{"keepalived", lp.Keepalived, false, 0},
	{"director", lp.Director, false, 0},
	{"director-shared", lp.Director, true, 0},
	// The same with CPU burners beside the daemon: healthy servers marked
	// down is the figure (every real server is healthy).
	{"keepalived+burn", lp.Keepalived, false, IdleBurners},
	{"director+burn", lp.Director, false, IdleBurners},
}

// idleRow is one case's measurement.
type idleRow struct {
	sample    lp.ProcSample
	checkRate float64 // checks/s seen on the bridge
	ready     bool    // every real server was seen at weight 1 at once
	upBefore  int     // real servers at weight 1 just before the sample
	upAfter   int     // and just after it
	// markedDown counts real servers the daemon's log says it took out
	// during the sample (with the burners: while they ran). All are
	// healthy, so each is a false alarm.
	markedDown int
	// lagged says why the daemon did not keep up with its checks (too
	// slow a check rate, too many real servers down), or is empty.
	lagged []string
	ok     bool
}

// idleInterval is IdleInterval unless LAB_IDLE_INTERVAL (a Go duration)
// overrides it (IdleInterval explains why it is not 2 s).
func idleInterval(t *testing.T) time.Duration {
	s := os.Getenv("LAB_IDLE_INTERVAL")
	if s == "" {
		return IdleInterval
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("LAB_IDLE_INTERVAL %q: want a positive duration", s)
	}
	return d
}

// TestIdleFigure measures lb1's daemon, idle with 100 services, 1,000 real
// servers and their HTTP checks, for keepalived and for director (one lab
// run each): RSS (summed over all of the daemon's processes) and CPU in
// percent of one core, and prints them with the director/keepalived
// ratios. It is a benchmark, so it runs only with LAB_FIGURES=1.
func TestIdleFigure(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	interval := idleInterval(t)
	rows := map[string]*idleRow{}
	for _, c := range idleCases {
		row := &idleRow{}
		rows[c.label] = row
		t.Run(c.label, func(t *testing.T) {
			p := IdleParams(c.impl, interval, c.shared)
			p.Idle.Burners = c.burners
			res := Run(t, IdlePlan(name(t), p))
			*row = idleResult(t, res, p)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "idle figure: %s\n", RanOn(t))
	fmt.Fprintf(&b, "idle figure: lb1 alone, %d services x %d real servers, HTTP check every %v (timeout %v, own path per service; shared: all GET /), %v sample after %v settling\n",
		IdleServices, IdlePerService, interval, min(IdleTimeout, interval), IdleSample, IdleSettle)
	fmt.Fprintf(&b, "idle figure: +burn rows: %d CPU burners (busy shell loops) beside the daemon from settling to the last table; down = healthy real servers marked down meanwhile\n", IdleBurners)
	fmt.Fprintf(&b, "idle figure: %-16s %8s %8s %8s %6s %6s %10s %6s %5s %9s %5s %s\n", "impl", "RSS MiB", "max MiB", "PSS MiB", "CPU %", "procs", "checks/s", "guest%", "ready", "up before/after", "down", "keeps up")
	for _, c := range idleCases {
		r := rows[c.label]
		if !r.ok {
			fmt.Fprintf(&b, "idle figure: %-16s failed\n", c.label)
			continue
		}
		s := r.sample
		keeps := "yes"
		if len(r.lagged) > 0 {
			keeps = "NO: " + strings.Join(r.lagged, "; ")
		}
		fmt.Fprintf(&b, "idle figure: %-16s %8.1f %8.1f %8.1f %6.2f %6d %10.1f %6.0f %5t %4d/%-4d      %5d %s\n", c.label, mib(s.RSSKiB), mib(s.RSSMaxKiB), mib(s.PSSKiB),
			s.CPUPercent, len(s.Procs), r.checkRate, s.GuestBusyPercent, r.ready, r.upBefore, r.upAfter, r.markedDown, keeps)
	}
	// Where each row's CPU went, by process, over the same sample.
	for _, c := range idleCases {
		r := rows[c.label]
		if !r.ok || r.sample.Ticks <= 0 {
			continue
		}
		var parts []string
		for _, p := range r.sample.Procs {
			parts = append(parts, fmt.Sprintf("%s[%d] %.2f", p.Comm, p.PID, r.sample.CPUPercent*float64(p.SampleTicks)/float64(r.sample.Ticks)))
		}
		fmt.Fprintf(&b, "idle figure: %-16s CPU %% by process: %s\n", c.label, strings.Join(parts, ", "))
	}
	if k, d := rows["keepalived"], rows["director"]; k.ok && d.ok && k.sample.RSSKiB > 0 && k.sample.CPUPercent > 0 {
		note := ""
		if len(d.lagged)+len(k.lagged) > 0 {
			note = " (not like for like: a daemon did not keep up, see above)"
		}
		pss := "n/a"
		if k.sample.PSSKiB > 0 {
			pss = fmt.Sprintf("%.2f", float64(d.sample.PSSKiB)/float64(k.sample.PSSKiB))
		}
		fmt.Fprintf(&b, "idle figure: director/keepalived: RSS %.2f, PSS %s, CPU %.2f%s\n",
			float64(d.sample.RSSKiB)/float64(k.sample.RSSKiB), pss, d.sample.CPUPercent/k.sample.CPUPercent, note)
	}
	for line := range strings.Lines(b.String()) {
		t.Log(strings.TrimRight(line, "\n"))
	}
	fmt.Print(b.String())
	// go test runs in the package directory: labtests/.work/idle-figure.txt.
	out := filepath.Join(".work", "idle-figure.txt")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", out, err)
	}
}

// idleResult judges one idle run: every real server healthy before and
// after the sample, the checks running at about the configured rate, and
// a plausible sample.
func idleResult(t *testing.T, res *Results, p Params) idleRow {
	t.Helper()
	i := p.Idle
	step := func(label string) lp.StepResult {
		s, ok := res.Step(label)
		if !ok || s.Exec == nil {
			t.Fatalf("no output of step %q\n%s", label, Diagnose(res))
		}
		return s
	}
	// A daemon keeping up has at least 90% of the real servers up around
	// the sample (a few checks time out now and then in the loaded guest,
	// with both daemons) and runs its checks at the configured rate. One
	// that does not is a result, not a harness failure: the table shows
	// it (and the CPU figure is then for less work than configured).
	enough := i.Checks() * 9 / 10
	var row idleRow
	ready, _ := res.Step(LabelIdleReady)
	row.ready = ready.OK
	if p.Impl[lp.LB1] == lp.Director {
		// director keeps an unchecked real server at its weight, so the
		// table alone does not prove the checks pass; its state does.
		if n := healthyInState(step(LabelIdleState).Exec.Stdout); n < enough {
			row.lagged = append(row.lagged, fmt.Sprintf("state: %d of %d up", n, i.Checks()))
		}
	}
	for _, c := range []struct {
		label string
		up    *int
	}{{LabelIdleUp, &row.upBefore}, {LabelIdleTable, &row.upAfter}} {
		svcs, up, err := idleCounts(step(c.label).Exec.Stdout)
		if err != nil || svcs != i.Services {
			t.Errorf("%s: %d services (%v), want %d", c.label, svcs, err, i.Services)
		}
		if up < enough {
			row.lagged = append(row.lagged, fmt.Sprintf("%s: %d of %d at weight 1", c.label, up, i.Checks()))
		}
		*c.up = up
	}
	before, after := step(LabelIdleBefore), step(LabelIdleAfter)
	n0, err0 := nftCount(before.Exec.Stdout)
	n1, err1 := nftCount(after.Exec.Stdout)
	if err0 != nil || err1 != nil {
		t.Fatalf("check counter: %v %v", err0, err1)
	}
	rate := float64(n1-n0) / after.Start.Sub(before.End).Seconds()
	s, err := ParseProcSample(step(LabelIdleSample).Exec.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	want := i.CheckRate(p.Impl[lp.LB1])
	t.Logf("%s: %+v; %.1f checks/s (configured %.1f)", p.Impl[lp.LB1], s, rate, want)
	// A faster rate than configured means checks are not shared (or not
	// counted) as expected: a harness error. A slower one, lagging.
	if rate <= 0 || rate > 1.2*want {
		t.Errorf("%.1f checks/s, want %.1f (at most 20%% more)", rate, want)
	}
	if rate < 0.8*want {
		row.lagged = append(row.lagged, fmt.Sprintf("%.1f of %.1f checks/s", rate, want))
	}
	if len(row.lagged) > 0 {
		t.Logf("idle figure: WARNING %s did not keep up with its checks: %s", p.Impl[lp.LB1], strings.Join(row.lagged, "; "))
	}
	wantProcs := 1
	if p.Impl[lp.LB1] == lp.Keepalived {
		wantProcs = 3 // parent, VRRP child, checker child
	}
	if len(s.Procs) < wantProcs || s.RSSKiB <= 0 || s.PSSKiB <= 0 || s.PSSKiB > s.RSSMaxKiB || s.Ticks <= 0 || s.Wall.D() < IdleSample {
		t.Errorf("implausible sample: %d processes (want %d), RSS %d KiB (max %d), PSS %d KiB, %d ticks over %v", len(s.Procs), wantProcs, s.RSSKiB, s.RSSMaxKiB, s.PSSKiB, s.Ticks, s.Wall)
	}
	from := step(LabelIdleUp).Start
	if i.Burners > 0 {
		from = step(LabelIdleBurn).Start
	}
	row.markedDown = MarkedDown(res.Logs[lp.LB1], from, step(LabelIdleTable).End)
	row.sample, row.checkRate, row.ok = s, rate, !t.Failed()
	return row
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
