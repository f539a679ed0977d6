package labtests

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the IPVS plans' steps.
const (
	LabelIPVSReady   = "ipvs-ready"   // wait_exec until lb1's table is complete
	LabelStats       = "stats"        // ipvsadm -Ln --stats --exact on lb1
	LabelCounters    = "counters"     // the bridge's DSR packet counters
	LabelClear       = "clear"        // ipvsadm -C on lb1
	LabelRepairClear = "repair-clear" // wait_exec until the table is back
	LabelDelete      = "delete"       // ipvsadm -d of rs2 from the HTTP service
	LabelRepairDel   = "repair-del"   // wait_exec until rs2 is back
	LabelOpen        = "open"         // conns_open
	LabelDrained     = "drained"      // wait_exec until rs2 is at weight 0 holding one connection
	LabelHeld        = "held"         // ipvsadm -Ln while the drained connection lives
	LabelCheck       = "check"        // conns_check
	LabelConns       = "conns"        // conns_close
	LabelDeleted     = "deleted"      // wait_exec until rs2 is gone
	LabelRulesBefore = "rules-before" // ipvsadm -Sn before the daemon restart
	LabelRulesAfter  = "rules-after"
	LabelStatsBefore = "stats-before"
	LabelStatsAfter  = "stats-after"
	LabelSynced      = "synced" // ipvsadm -Lnc on lb2 before the cut
)

// VariantNoRS2 is the drain plan's second configuration: rs2 removed.
const VariantNoRS2 = "no-rs2"

// IPVSParams are DefaultParams with the lab's IPVS services (rr over rs1
// and rs2, direct routing).
func IPVSParams(impl lp.Impl) Params {
	p := lp.DefaultParams(impl)
	p.IPVS = &lp.IPVS{}
	return p
}

// ipvsadm runs the real ipvsadm: the tests judge the kernel with the
// reference tool, not with the daemon's own view of it.
func ipvsadm(node string, args ...string) Step {
	return lp.Exec(node, append([]string{"ipvsadm"}, args...)...)
}

// destRE matches rs's line in ipvsadm -Ln for the service on port, with
// the given weight (and active connections, when activeConns >= 0).
func destRE(rs string, port, weight, activeConns int) string {
	re := fmt.Sprintf(`(?m)^\s+-> %s\s+Route\s+%d\s`, regexp.QuoteMeta(lp.RSAddr(rs, port)), weight)
	if activeConns >= 0 {
		re += fmt.Sprintf(`+%d\s`, activeConns)
	}
	return re
}

// tableRE matches an ipvsadm -Ln listing holding both services with both
// real servers at weight 1, in any order.
func tableRE() []string {
	var res []string
	for _, s := range lp.Services() {
		for _, rs := range []string{lp.RS1, lp.RS2} {
			res = append(res, destRE(rs, s.Port, 1, -1))
		}
	}
	return res
}

// waitTable waits until node's kernel table is the configured one. The
// last destination the reconciler writes is rs2 in the echo service, but
// the wait checks all four so that it also proves a repair complete.
func waitTable(node string, d time.Duration) []Step {
	var steps []Step
	for _, re := range tableRE() {
		steps = append(steps, lp.WaitExec(node, d, re, "ipvsadm", "-Ln"))
	}
	return steps
}

// ipvsStart starts both nodes, waits for lb1 to win and for its IPVS
// table to be in place (LabelIPVSReady marks the last wait), then for the
// election to be over: when both daemons' first Master_Down_Timers fire
// within one advert's delivery, lb2 holds the VIP too until lb1's next
// advert, and connections opened then may go to lb2 and miss lb1's table.
func ipvsStart(p Params) []Step {
	steps := startPair(p)
	wait := waitTable(lp.LB1, 10*time.Second)
	wait[len(wait)-1] = wait[len(wait)-1].As(LabelIPVSReady)
	steps = append(steps, wait...)
	return append(steps, lp.WaitSole(lp.LB1, electTimeout(p), p.Advert.D()+500*time.Millisecond))
}

// DSR counters on the bridge, by comment: replies of the real servers
// (source VIP:80) delivered to lb1 and to the client, replies coming out
// of lb1 (its own HTTP server), and requests delivered to lb1.
const (
	CountRepliesToLB1    = "replies to lb1"
	CountRepliesToClient = "replies to client"
	CountRepliesFromLB1  = "replies from lb1"
	CountRequestsToLB1   = "requests to lb1"
)

// dsrCountRules count, on the bridge, packets with source VIP:80 by
// where they go and come from, and requests to VIP:80 reaching lb1.
// Direct server return means replies never touch the director.
func dsrCountRules() string {
	vip, lb1, client := lp.VIP4.Addr(), lp.BridgePort(lp.LB1), lp.BridgePort(lp.Client)
	var b strings.Builder
	b.WriteString("table bridge lab_dsr {\n  chain forward {\n    type filter hook forward priority -10; policy accept;\n")
	for _, r := range []struct{ match, comment string }{
		{fmt.Sprintf("oifname %q ip saddr %s tcp sport %d", lb1, vip, lp.HTTPPort), CountRepliesToLB1},
		{fmt.Sprintf("oifname %q ip saddr %s tcp sport %d", client, vip, lp.HTTPPort), CountRepliesToClient},
		{fmt.Sprintf("iifname %q ip saddr %s tcp sport %d", lb1, vip, lp.HTTPPort), CountRepliesFromLB1},
		{fmt.Sprintf("oifname %q ip daddr %s tcp dport %d", lb1, vip, lp.HTTPPort), CountRequestsToLB1},
	} {
		fmt.Fprintf(&b, "    %s counter comment %q\n", r.match, r.comment)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// dsrRulesFile is the name of the counting rules in the run directory.
const dsrRulesFile = "dsr.nft"

var counterRE = regexp.MustCompile(`counter packets (\d+) bytes \d+ comment "([^"]+)"`)

// ParseCounters reads nft list output into packets by comment.
func ParseCounters(out string) map[string]int64 {
	m := map[string]int64{}
	for _, sm := range counterRE.FindAllStringSubmatch(out, -1) {
		var n int64
		fmt.Sscan(sm[1], &n)
		m[sm[2]] = n
	}
	return m
}

// DSRPlan elects lb1 with the IPVS services, counts packets on the bridge
// and lets the client request http://VIP/ for two seconds.
func DSRPlan(name string, p Params) Plan {
	steps := ipvsStart(p)
	steps = append(steps,
		// In the guest's root namespace, the bridge's.
		lp.Exec("", "nft", "-f", path.Join(guestOut, dsrRulesFile)),
		lp.ProbeStart(),
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelProbe),
		// IPVS sums its per-CPU counters in the rate estimator, every 2 s.
		lp.Sleep(2500*time.Millisecond),
		ipvsadm(lp.LB1, "-Ln", "--stats", "--exact").As(LabelStats),
		lp.Exec("", "nft", "list", "table", "bridge", "lab_dsr").As(LabelCounters),
	)
	return Plan{Name: name, Params: p, Steps: steps, Files: map[string]string{dsrRulesFile: dsrCountRules()}}
}

// DriftPlan breaks lb1's table twice under client traffic, flushing it
// (ipvsadm -C) and deleting one destination (ipvsadm -d), and times each
// repair. The daemon re-reads the kernel every second.
func DriftPlan(name string, p Params) Plan {
	v := *p.IPVS
	v.ResyncInterval = lp.Duration(time.Second)
	p.IPVS = &v
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ProbeStart(),
		lp.Sleep(time.Second),
		ipvsadm(lp.LB1, "-C").As(LabelClear),
	)
	// Repair is judged from the kernel: all four destinations back.
	rep := waitTable(lp.LB1, 8*time.Second)
	rep[len(rep)-1] = rep[len(rep)-1].As(LabelRepairClear)
	steps = append(steps, rep...)
	steps = append(steps,
		lp.Sleep(time.Second),
		ipvsadm(lp.LB1, "-d", "-t", lp.VIPService(lp.HTTPPort), "-r", lp.RSAddr(lp.RS2, lp.HTTPPort)).As(LabelDelete),
		lp.WaitExec(lp.LB1, 8*time.Second, destRE(lp.RS2, lp.HTTPPort, 1, -1), "ipvsadm", "-Ln").As(LabelRepairDel),
		lp.Sleep(time.Second),
		lp.ProbeStop().As(LabelProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// DrainPlan opens two idle connections to the echo service (rr puts one
// on each real server), restarts lb1 with rs2 removed from its
// configuration, and follows rs2 on lb1: weight 0 while its connection
// lives, deleted once it is closed.
//
// Restarting lb1 hands the VIP to lb2 and back. The connections stay idle
// meanwhile: lb2 holds no entry for them (no sync here), so a packet sent
// through it would be reset. Back on lb1 their entries are still there.
func DrainPlan(name string, p Params) Plan {
	without := p
	ipvs := *p.IPVS
	ipvs.RealServers = []string{lp.RS1}
	without.IPVS = &ipvs
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ConnsOpen(2, 0).As(LabelOpen),
		lp.UseConfig(lp.LB1, VariantNoRS2),
		lp.Restart(lp.LB1).As(LabelRecover),
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
		lp.WaitExec(lp.LB1, 10*time.Second, destRE(lp.RS2, lp.EchoPort, 0, 1), "ipvsadm", "-Ln").As(LabelDrained),
		lp.ProbeStart(),
		lp.Sleep(2*time.Second),
		ipvsadm(lp.LB1, "-Ln").As(LabelHeld),
		lp.ConnsCheck().As(LabelCheck),
		lp.ConnsClose().As(LabelConns),
		lp.WaitExecAbsent(lp.LB1, 8*time.Second, regexp.QuoteMeta(lp.RSAddr(lp.RS2, lp.EchoPort))+"|"+regexp.QuoteMeta(lp.RSAddr(lp.RS2, lp.HTTPPort)), "ipvsadm", "-Ln").As(LabelDeleted),
		lp.Sleep(time.Second),
		lp.ProbeStop().As(LabelProbe),
		ipvsadm(lp.LB1, "-Ln"),
	)
	return Plan{Name: name, Params: p, Steps: steps, Variants: map[string]Params{VariantNoRS2: without}}
}

// AdoptPlan kills lb1's director (SIGKILL: the table stays in the kernel)
// under client traffic, lets lb2 take over and serve for a while, and
// starts lb1 again with the same configuration: the new daemon must adopt
// the table without a single write, and take the VIP back.
func AdoptPlan(name string, p Params) Plan {
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ProbeStart(),
		// Long enough for the rate estimator (every 2 s) to have summed
		// the counters once, so "before" is not zero.
		lp.Sleep(2500*time.Millisecond),
		ipvsadm(lp.LB1, "-Sn").As(LabelRulesBefore),
		ipvsadm(lp.LB1, "-Ln", "--stats", "--exact").As(LabelStatsBefore),
		lp.Signal(lp.LB1, "KILL").As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(2*time.Second),
		lp.Restart(lp.LB1).As(LabelRecover),
		// lb1 comes back holding its table and preempts lb2.
		lp.WaitNoVIP(lp.LB2, electTimeout(p)),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)).As(LabelBack),
		lp.Sleep(time.Second),
		ipvsadm(lp.LB1, "-Sn").As(LabelRulesAfter),
		ipvsadm(lp.LB1, "-Ln", "--stats", "--exact").As(LabelStatsAfter),
		lp.ProbeStop().As(LabelProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// SyncConns is how many long-lived connections the sync plan opens, and
// SyncEvery how often each sends a message.
const (
	SyncConns = 20
	SyncEvery = 20 * time.Millisecond
)

// SyncPlan streams SyncConns connections through lb1, cuts lb1 off the
// segment and records which connections survive on lb2. With sync the
// kernel's sync daemon has given lb2 their entries beforehand.
func SyncPlan(name string, p Params, sync bool) Plan {
	v := *p.IPVS
	v.Sync = sync
	p.IPVS = &v
	steps := ipvsStart(p)
	steps = append(steps, waitTable(lp.LB2, 10*time.Second)...)
	if sync {
		steps = append(steps, syncRunning()...)
	}
	return Plan{Name: name, Params: p, Steps: append(steps, syncCut(p)...)}
}

// VariantSync is SyncReloadPlan's configuration with ipvs.sync.
const VariantSync = "sync"

// SyncReloadPlan is SyncPlan started without ipvs.sync, which a reload of
// both nodes (SIGHUP, lb1 first) then turns on.
func SyncReloadPlan(name string, p Params) Plan {
	v := *p.IPVS
	v.Sync = false
	p.IPVS = &v
	on := v
	on.Sync = true
	withSync := p
	withSync.IPVS = &on
	steps := ipvsStart(p)
	steps = append(steps, waitTable(lp.LB2, 10*time.Second)...)
	steps = append(steps,
		lp.Say("reload both nodes with ipvs.sync"),
		lp.UseConfig(lp.LB1, VariantSync), lp.Signal(lp.LB1, "HUP"),
		lp.UseConfig(lp.LB2, VariantSync), lp.Signal(lp.LB2, "HUP"),
	)
	steps = append(steps, syncRunning()...)
	return Plan{Name: name, Params: p, Steps: append(steps, syncCut(p)...), Variants: map[string]Params{VariantSync: withSync}}
}

// syncRunning waits for the master's sync daemon on lb1 and the backup's
// on lb2.
func syncRunning() []Step {
	return []Step{
		lp.WaitExec(lp.LB1, 5*time.Second, "master sync daemon", "ipvsadm", "-L", "--daemon"),
		lp.WaitExec(lp.LB2, 5*time.Second, "backup sync daemon", "ipvsadm", "-L", "--daemon"),
	}
}

// syncCut opens the long-lived connections, lets sync carry them to lb2,
// cuts lb1 off and records the connections through the takeover.
func syncCut(p Params) []Step {
	return []Step{
		lp.ConnsOpen(SyncConns, SyncEvery).As(LabelOpen),
		// The master's sync thread sends its buffer about once a second.
		lp.Sleep(2500 * time.Millisecond),
		ipvsadm(lp.LB2, "-Lnc").As(LabelSynced),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(3 * time.Second),
		lp.ConnsClose().As(LabelConns),
	}
}
