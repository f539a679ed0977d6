//go:build lab

package labtests

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// reloadLogRE matches lb1's log lines about reloads ("reloading",
// "reload" with each change, "reloaded", "reload refused ...") and the
// IPVS writes and VRRP transitions they cause.
var reloadLogRE = regexp.MustCompile(`msg="?(reload|ipvs: |.*(MASTER|BACKUP|state))`)

// share is rs's fraction of the answered requests in st.
func share(st lp.ProbeStats, rs string) float64 {
	ok := st.Total - st.Failed
	if ok == 0 {
		return 0
	}
	return float64(st.Responders[rs]) / float64(ok)
}

// TestReload: under client traffic (a new HTTP connection every 10 ms and
// ReloadConns long-lived echo connections streaming every 100 ms) both
// nodes reload four times (SIGHUP on a new file): a real server added, a
// weight changed, a real server removed, a VIP added. No request may fail,
// no echo connection may die, lb1 stays master throughout, and each change
// shows in lb1's kernel table and in who answers.
func TestReload(t *testing.T) {
	res := Run(t, ReloadPlan(name(t), ReloadParams(lp.Director)))
	log := logAfterLastStart(res, lp.LB1)
	failed := false
	defer func() {
		if failed || t.Failed() {
			t.Logf("lb1's reload log:\n%s\n%s", strings.Join(grepLines(log, reloadLogRE), "\n"), Diagnose(res))
		}
	}()
	errorf := func(format string, a ...any) { failed = true; t.Errorf(format, a...) }

	open, _ := res.Step(LabelOpen)
	if got := open.Exec.Stdout; got != fmt.Sprintf("%s=%d %s=%d", lp.RS1, ReloadConns/2, lp.RS2, ReloadConns/2) {
		t.Fatalf("echo connections on %q, want half on each of rs1 and rs2\n%s", got, Diagnose(res))
	}
	run, ok := res.ProbeOf(LabelProbe)
	if !ok {
		t.Fatalf("no probe run\n%s", Diagnose(res))
	}
	conns, ok := res.ConnsOf(LabelConns)
	if !ok {
		t.Fatalf("no connection record\n%s", Diagnose(res))
	}

	// The last reload (a VIP added) has its own echo connections: the
	// first ones end before it, once rs2's drain has been seen through.
	vs := ReloadVariants()
	vipHUP, _ := res.Step(ReloadLabel(VariantAddVIP))
	cut := vipHUP.Start
	st, cst := run.Stats(), conns.StatsBetween(time.Time{}, cut)
	timeouts := 0
	for _, s := range run.Samples {
		if !s.OK {
			t.Logf("failed request at %s after %v: %s", s.At.Format("15:04:05.000"), s.Took.D().Round(time.Millisecond), s.Err)
			if strings.Contains(s.Err, "i/o timeout") {
				timeouts++
			}
		}
	}
	vipConns, ok := res.ConnsOf(LabelConnsVIP)
	if !ok {
		t.Fatalf("no connection record of the add-vip reload\n%s", Diagnose(res))
	}
	pcst := vipConns.Stats()
	t.Logf("reload figure: %d requests, %d failed (%d of them 100 ms timeouts), %d/%d echo connections reset across %d reloads (add-rs, weight, remove-rs, add-vip), VIP moves %d",
		st.Total, st.Failed, timeouts, cst.Died+pcst.Died, cst.Total+pcst.Total, len(vs), len(res.VIPChanges(run.Start, run.Stop)))
	// A reload that dropped or reset a request shows as refused/reset; a
	// lone timeout of the 100 ms prober is the single-CPU guest stalling
	// (seen in windows without any reload too); two are allowed.
	if st.Failed-timeouts != 0 || timeouts > 2 || st.Total < 500 {
		errorf("client across the reloads: %s; want no failed request", st)
	}
	if pcst.Died != 0 {
		errorf("echo connections across the add-vip reload: %s; want none reset", pcst)
	}
	for _, lb := range []string{lp.LB1, lp.LB2} {
		if n := run.Stats().Responders[lb]; n > 0 {
			errorf("%s's own HTTP server answered %d requests for the VIP", lb, n)
		}
	}
	if cst.Died != 0 {
		errorf("echo connections: %s; want none reset", cst)
	}
	if c, ok := res.Step(LabelCheck); !ok || !c.OK {
		errorf("conns_check before the last reload: %s", c.Err)
	}
	for _, c := range conns.Conns {
		// Streaming every 100 ms through three reloads (over 10 s).
		if c.Echoed < 80 {
			errorf("echo connection via %s echoed only %d messages: %+v", c.Server, c.Echoed, c)
		}
	}

	// Mastership: the VIP never moved, adding a VIP included, and lb1
	// holds it at the end.
	if ch := res.VIPChanges(run.Start, run.Stop); len(ch) != 0 {
		errorf("the VIP moved during the reloads: %+v", ch)
	}
	if h := res.Holders(run.Stop); len(h) != 1 || h[0] != lp.LB1 {
		errorf("VIP holders at the end: %v, want lb1 alone", h)
	}

	// Who answered under each configuration: from the moment it showed
	// in lb1's table until the next reload.
	windows := map[string]lp.ProbeStats{}
	first, _ := res.Step(ReloadLabel(vs[0]))
	windows["before"] = run.Between(run.Start, first.Start).Stats()
	for i, v := range vs {
		from, _ := res.Step(AppliedLabel(v))
		to := run.Stop
		if i+1 < len(vs) {
			next, _ := res.Step(ReloadLabel(vs[i+1]))
			to = next.Start
		}
		windows[v] = run.Between(from.End, to).Stats()
	}
	for _, k := range append([]string{"before"}, vs...) {
		t.Logf("%-10s %s (rs1 %.0f%%)", k, windows[k], 100*share(windows[k], lp.RS1))
	}
	for _, k := range append([]string{"before"}, vs...) {
		if windows[k].Total < 100 {
			errorf("%s: only %d requests", k, windows[k].Total)
		}
	}
	if w := windows["before"]; w.Responders[ReloadRS3] != 0 || share(w, lp.RS1) < 0.4 || share(w, lp.RS1) > 0.6 {
		errorf("before the reloads: %s, want rs1 and rs2 half each", w)
	}
	// wrr 1:1:1 after the add, 3:1:1 after the weight change, 3:0:1 once
	// rs2 is gone.
	if w := windows[VariantAddRS]; share(w, ReloadRS3) < 0.25 || share(w, lp.RS1) > 0.42 {
		errorf("after adding %s: %s, want a third each", ReloadRS3, w)
	}
	if w := windows[VariantWeight]; share(w, lp.RS1) < 0.52 || share(w, lp.RS1) > 0.68 || w.Responders[lp.RS2] == 0 {
		errorf("after rs1's weight 1 -> %d: %s, want rs1 at 3/5", ReloadWeight, w)
	}
	for _, v := range vs[2:] {
		if w := windows[v]; w.Responders[lp.RS2] != 0 || share(w, lp.RS1) < 0.67 || share(w, lp.RS1) > 0.83 {
			errorf("after %s: %s, want rs1 at 3/4, sorry the rest, rs2 none", v, w)
		}
	}

	// The kernel's table after each reload.
	tbl := func(v string) lp.IPVSTable { return lp.ParseIPVSTable(execOut(t, res, TableLabel(v))) }
	weight := func(v string, port int, rs string) int64 {
		return counter(t, execOut(t, res, TableLabel(v)), port, rs, lp.ColWeight)
	}
	for _, s := range lp.Services() {
		if w := weight(VariantAddRS, s.Port, ReloadRS3); w != 1 {
			errorf("after add-rs %s has weight %d on :%d, want 1", ReloadRS3, w, s.Port)
		}
		if w := weight(VariantWeight, s.Port, lp.RS1); w != ReloadWeight {
			errorf("after the weight change rs1 has weight %d on :%d, want %d", w, s.Port, ReloadWeight)
		}
	}
	// HTTP holds no established connection to rs2: it goes at once (the
	// echo service's drain is checked below).
	if svc, _ := tbl(VariantRemoveRS).Service("TCP", lp.VIPService(lp.HTTPPort)); len(svc.Dests) != 2 {
		errorf("after remove-rs :%d still has rs2 or lacks a real server:\n%s", lp.HTTPPort, execOut(t, res, TableLabel(VariantRemoveRS)))
	} else if _, ok := svc.Dest(lp.RSAddr(lp.RS2, lp.HTTPPort)); ok {
		errorf("after remove-rs :%d still has rs2:\n%s", lp.HTTPPort, execOut(t, res, TableLabel(VariantRemoveRS)))
	}
	if svc, ok := tbl(VariantAddVIP).Service("TCP", fmt.Sprintf("%s:%d", ReloadVIP, lp.HTTPPort)); !ok || len(svc.Dests) != 2 {
		errorf("after add-vip lb1 has no service %s:%d over rs1 and %s:\n%s", ReloadVIP, lp.HTTPPort, ReloadRS3, execOut(t, res, TableLabel(VariantAddVIP)))
	}
	curl, _ := res.Step(LabelReloadCurl)
	t.Logf("client via %s: %q", ReloadVIP, strings.TrimSpace(curl.Exec.Stdout))

	// The drain: rs2 at weight 0 holding the echo connections (which
	// still echo), gone from HTTP at once, deleted once they close.
	hup, _ := res.Step(ReloadLabel(VariantRemoveRS))
	drained, _ := res.Step(LabelReloadDrained)
	t.Logf("rs2 at weight 0 holding %d connections %v after SIGHUP", ReloadConns/2, drained.End.Sub(hup.End).Round(time.Millisecond))
	dt := execOut(t, res, TableLabel(VariantRemoveRS))
	if w, a := counter(t, dt, lp.EchoPort, lp.RS2, lp.ColWeight), counter(t, dt, lp.EchoPort, lp.RS2, lp.ColActiveConn); w != 0 || a != ReloadConns/2 {
		errorf("draining rs2 on :%d has weight %d ActiveConn %d, want 0 and %d:\n%s", lp.EchoPort, w, a, ReloadConns/2, dt)
	}
	onRS2 := 0
	for _, c := range conns.Conns {
		if c.Server == lp.RS2 && c.Alive() {
			onRS2++
		}
	}
	if onRS2 != ReloadConns/2 {
		errorf("%d echo connections on rs2 lived through its drain, want %d", onRS2, ReloadConns/2)
	}
	closed, _ := res.Step(LabelConns)
	deleted, _ := res.Step(LabelReloadDeleted)
	took := deleted.End.Sub(closed.End)
	t.Logf("rs2 deleted %v after its connections closed", took.Round(time.Millisecond))
	if took > maxDelete {
		errorf("rs2 deleted %v after its connections closed, want within %v", took, maxDelete)
	}
	if strings.Contains(execOut(t, res, LabelReloadFinal), lp.RSAddr(lp.RS2, lp.EchoPort)) {
		errorf("rs2 still in lb1's table at the end")
	}

	// lb1 reloaded each time, never refusing or half-applying.
	if n := len(grepLines(log, regexp.MustCompile(`msg=reloaded `))); n != len(vs) {
		errorf("lb1 logged %d successful reloads, want %d", n, len(vs))
	}
	for _, bad := range []string{"reload refused", "reload applied with errors"} {
		if strings.Contains(log, bad) {
			errorf("lb1's log says %q", bad)
		}
	}
}

// TestReloadFigure runs the same reloads under the same traffic with
// keepalived on both nodes, then director, and reports failed requests,
// reset echo connections and VIP moves side by side.
func TestReloadFigure(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	var lines []string
	for _, impl := range []lp.Impl{lp.Keepalived, lp.Director} {
		res := Run(t, ReloadPlan(name(t)+"_"+string(impl), ReloadParams(impl)))
		run, ok := res.ProbeOf(LabelProbe)
		c1, ok1 := res.ConnsOf(LabelConns)
		c2, ok2 := res.ConnsOf(LabelConnsVIP)
		if !ok || !ok1 || !ok2 {
			t.Fatalf("%s: no probe or connection record\n%s", impl, Diagnose(res))
		}
		st, s1, s2 := run.Stats(), c1.Stats(), c2.Stats()
		lines = append(lines, fmt.Sprintf("  %-10s %5d requests, %3d failed, %d/%d echo connections reset, VIP moves %d",
			impl, st.Total, st.Failed, s1.Died+s2.Died, s1.Total+s2.Total, len(res.VIPChanges(run.Start, run.Stop))))
	}
	t.Logf("%s\nreload figure (add rs, weight, remove rs, add VIP, both nodes, under traffic):\n%s", RanOn(t), strings.Join(lines, "\n"))
}
