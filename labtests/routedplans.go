package labtests

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
	lp "github.com/director-lb/director/labtests/labplan"
)

// Routed plans: three active directors behind the router's ECMP
// (Params.Routed, labplan/routed.go).

// Variants of the routed plan's survival cycles.
const (
	// VariantMHSync is the routed default: mh (with mh-fallback, so a
	// dead server's flows go to a live one, and mh-port, so one client's
	// flows spread), sloppy_tcp, sync master and backup on every director.
	VariantMHSync = "mh-sync"
	// VariantMHOnly is consistent hashing alone: mh and sloppy_tcp, no
	// sync. A flow ECMP moves survives only if the new director's mh
	// picks the same real server.
	VariantMHOnly = "mh-only"
	// VariantRR is what routing without consistent hashing or sync
	// gives (MetalLB-style ECMP to nodes that each choose on their own):
	// rr, no sync, no sloppy_tcp.
	VariantRR = "rr"
)

// SurvivalVariants are run in this order, the first on the plan's own
// configuration.
var SurvivalVariants = []string{VariantMHSync, VariantMHOnly, VariantRR}

// Routed scenario sizes: long-lived connections and how often each
// streams a message.
const (
	RoutedConns      = 100
	RoutedConnsEvery = 500 * time.Millisecond
	// RoutedCheckInterval is the directors' HTTP check interval.
	RoutedCheckInterval = time.Second
)

// Labels of the routed plan; per-variant ones get "-<variant>".
const (
	LabelHops        = "hops"         // wait_exec: three next hops on the router
	LabelSpread      = "spread"       // probe_stop of the spread run
	LabelStatsPrefix = "stats-"       // exec: ipvsadm --stats on lbN ("stats-lb1")
	LabelRouteView   = "route-view"   // exec: the router's kernel route and FRR's view
	LabelRSDown      = "rs-down"      // serve rs2 down
	LabelRSOut       = "rs-out"       // exec: when each director took rs2 out
	LabelRSProbe     = "rs-probe"     // probe_stop across rs2's death
	LabelKill        = "kill"         // cut lb1 (after its KILL)
	LabelGone        = "gone"         // wait_exec: lb1's next hop gone from the router
	LabelSurvProbe   = "surv-probe"   // probe_stop across lb1's death
	LabelSurvConns   = "surv-conns"   // conns_close after lb1's death
	LabelBFDUp       = "bfd-up"       // wait_exec: the router's BFD sessions up with the three directors
	LabelHopsBack    = "hops-back"    // three next hops again after lb1 is back
	LabelDrainNode   = "drain-node"   // exec: director drain-node on lb2
	LabelDrainGone   = "drain-gone"   // wait_exec: lb2's next hop gone from the router
	LabelDrainStats  = "drain-stats"  // exec: lb2's stats after the drain ("drain-stats-0", "-1": 3 s apart)
	LabelDrainProbe  = "drain-probe"  // probe_stop across the drain
	LabelDrainConns  = "drain-conns"  // conns_close after the drain
	LabelUndrain     = "undrain-node" // exec: director undrain-node on lb2
)

// RoutedBFDMultiplier is the scenarios' BFD multiplier, at 100 ms: 1 s.
// At 100 ms x 3 a loaded host stalled the guest past the detection time
// often enough that BFD took sessions down every few seconds (FRR logs
// "Cease/BFD Down"), in a lab that other guests shared; the figures
// measure x3.
const RoutedBFDMultiplier = 10

// RoutedBFD is whether TestRouted runs BFD. It was off while director's
// GoBGP BFD and FRR 8.4's bfdd took every session down one to four
// seconds after it came up: FRR re-keys its BFD session once BGP is up,
// and the Down it sends made GoBGP reset the healthy BGP session. The
// speaker now runs BFD only while the session is established
// (internal/routing/gobgp, bfdWhileEstablished; docs/design/routed-mode.md).
const RoutedBFD = true

// RoutedParams: three directors announcing the VIP to the router (BFD
// at 100 ms x RoutedBFDMultiplier when RoutedBFD), the lab's services on
// routed mode's default scheduler (mh with mh-fallback and mh-port),
// sloppy_tcp and connection sync, HTTP checks every second.
func RoutedParams(announcer string) Params {
	p := lp.DefaultParams(lp.Director)
	p.Impl[lp.LB3] = lp.Director
	p.Priority[lp.LB3] = 50
	p.Routed = &lp.Routed{Announcer: announcer, BFD: RoutedBFD, BFDMultiplier: RoutedBFDMultiplier}
	p.IPVS = routedIPVS(VariantMHSync, announcer)
	return p
}

// routedIPVS is the services' settings of a survival variant.
func routedIPVS(variant, announcer string) *lp.IPVS {
	on, off := true, false
	v := &lp.IPVS{
		// Routed mode's own default scheduler.
		Scheduler: config.DefaultRoutedScheduler, SchedulerFlags: slices.Clone(config.DefaultRoutedSchedulerFlags), Sloppy: &on, Sync: true,
		HandSync: announcer == lp.AnnounceFRR,
		// Fall 2: in a loaded guest a single timeout now and then is
		// no death.
		Checks: &lp.Checks{Interval: lp.Duration(RoutedCheckInterval), Timeout: lp.Duration(900 * time.Millisecond), Rise: 1, Fall: 2},
	}
	switch variant {
	case VariantMHOnly:
		v.Sync = false
	case VariantRR:
		v.Scheduler, v.SchedulerFlags, v.Sloppy, v.Sync = "rr", nil, &off, false
	}
	return v
}

// routedVariant is p with the services of a survival variant.
func routedVariant(p Params, variant string) Params {
	v := p
	v.IPVS = routedIPVS(variant, p.Routed.Announcer)
	return v
}

// vipRoute is the router's command showing its route to the VIP.
func vipRoute() []string { return []string{"ip", "route", "show", lp.VIP4.Addr().String() + "/32"} }

// hopRE matches one next hop of the VIP route: via a director.
var hopRE = regexp.MustCompile(`via (10\.0\.0\.1[1-3]) `)

// NextHops lists the directors the router's VIP route goes through.
func NextHops(ipRoute string) []string {
	var out []string
	for _, m := range hopRE.FindAllStringSubmatch(ipRoute, -1) {
		out = append(out, m[1])
	}
	return out
}

// waitHops waits until the router's VIP route has n next hops.
func waitHops(n int, d time.Duration) Step {
	return lp.WaitExec(lp.Router, d, `(?s)`+strings.Repeat(`via 10\.0\.0\.1[1-3] .*`, n), vipRoute()...)
}

// hopOf matches node's next hop in the router's VIP route.
func hopOf(node string) string {
	h, _ := lp.HostByName(node)
	return `via ` + regexp.QuoteMeta(h.IPv4.Addr().String()) + ` `
}

// handSync starts (or, start false, stops) both sync daemons on node,
// where the FRR stand-in leaves them to the plan: one exec step, as each
// costs a second or more in a loaded guest.
func handSync(node string, start bool) []Step {
	script := "ipvsadm --stop-daemon master; ipvsadm --stop-daemon backup; true"
	if start {
		id := strconv.Itoa(lp.SyncID)
		script = "ipvsadm --start-daemon master --mcast-interface eth0 --syncid " + id +
			" && ipvsadm --start-daemon backup --mcast-interface eth0 --syncid " + id
	}
	return []Step{lp.Exec(node, "sh", "-c", script)}
}

// syncFor brings node's sync daemons to what variant wants after node's
// daemon (re)started: the FRR stand-in's are the plan's to start; and
// director, restarted on a configuration without ipvs.sync, leaves the
// daemons its previous run started (it stops only those a reload turns
// off), so a variant without sync stops them by hand.
func syncFor(p Params, variant, node string) []Step {
	want := routedVariant(p, variant).IPVS.Sync
	var out []Step
	if p.Routed.Announcer == lp.AnnounceFRR || !want {
		out = append(out, handSync(node, false)...)
	}
	if p.Routed.Announcer == lp.AnnounceFRR && want {
		out = append(out, handSync(node, true)...)
	}
	return out
}

// bfdPeers is the router's command listing its BFD sessions.
func bfdPeers() []string {
	return []string{"vtysh", "-N", lp.Router, "-c", "show bfd peers brief"}
}

// bfdUpRE matches n BFD sessions up with directors in bfdPeers' output.
func bfdUpRE(n int) string {
	return `(?s)` + strings.Repeat(`10\.0\.0\.1[1-3]\s+up\b.*`, n)
}

// routerView shows the router's kernel route to the VIP, FRR's view of it
// and the BGP and BFD sessions.
func routerView() Step {
	return lp.Exec(lp.Router, "sh", "-c", "ip route show "+lp.VIP4.Addr().String()+"/32; vtysh -N "+lp.Router+
		" -c 'show ip route "+lp.VIP4.Addr().String()+"/32' -c 'show bgp summary' -c 'show bfd peers brief'")
}

// statsScript prints each director's ipvsadm --stats line of the HTTP
// service, prefixed by its name.
func statsScript(lbs []string) string {
	return fmt.Sprintf(`for n in %s; do ip netns exec $n ipvsadm -Ln --stats -t %s:%d | sed -n "s/^TCP/$n TCP/p"; done`,
		strings.Join(lbs, " "), lp.VIP4.Addr(), lp.HTTPPort)
}

// rsOutScript prints, for each director, the milliseconds from its start
// until the director's table had rs2 at weight 0 (or without rs2).
func rsOutScript(lbs []string) string {
	rs, _ := lp.HostByName(lp.RS2)
	return fmt.Sprintf(`t0=$(date +%%s%%N); left="%s"
while [ -n "$left" ]; do next=""
  for n in $left; do
    if ! ip netns exec $n ipvsadm -Ln -t %s:%d | grep -Eq '%s:%d +Route +[1-9]'; then echo "$n $(( ($(date +%%s%%N) - t0) / 1000000 ))"; else next="$next $n"; fi
  done
  left=$next; sleep 0.05
done`, strings.Join(lbs, " "), lp.VIP4.Addr(), lp.HTTPPort, regexp.QuoteMeta(rs.IPv4.Addr().String()), lp.HTTPPort)
}

// rsBackScript waits until every director has rs2 at weight 1 again.
func rsBackScript(lbs []string) string {
	rs, _ := lp.HostByName(lp.RS2)
	return fmt.Sprintf(`for n in %s; do until ip netns exec $n ipvsadm -Ln -t %s:%d | grep -Eq '%s:%d +Route +1 '; do sleep 0.1; done; done`,
		strings.Join(lbs, " "), lp.VIP4.Addr(), lp.HTTPPort, regexp.QuoteMeta(rs.IPv4.Addr().String()), lp.HTTPPort)
}

// RoutedPlan is the routed scenarios in one boot: the three directors
// start and the router installs three next hops; the spread of the
// client's requests over the directors; a real server's death under
// three directors; then, for each survival variant, lb1's death (KILL
// and its link cut) under 100 streaming connections and the prober, and
// lb1's return; with director's own BGP, a drain of lb2 last.
func RoutedPlan(name string, p Params) Plan {
	lbs := p.LBs()
	hand := p.Routed.Announcer == lp.AnnounceFRR
	var steps []Step
	for _, n := range lbs {
		steps = append(steps, lp.Start(n))
		if hand {
			steps = append(steps, handSync(n, true)...)
		}
	}
	steps = append(steps,
		waitHops(3, 40*time.Second).As(LabelHops),
	)
	if p.Routed.BFD {
		// BFD is up with every director, and stays up: the survival
		// cycles below need it to take a dead director's hop away.
		steps = append(steps, lp.WaitExec(lp.Router, 30*time.Second, bfdUpRE(3), bfdPeers()...).As(LabelBFDUp))
	}
	steps = append(steps,
		routerView().As(LabelRouteView),
		lp.Sleep(time.Second),
		lp.Say("spread: one request every 10 ms, each on a new connection"),
		lp.ProbeStart(), lp.Sleep(3*time.Second), lp.ProbeStop().As(LabelSpread),
		// IPVS sums its counters every 2 s.
		lp.Sleep(2500*time.Millisecond),
	)
	steps = append(steps,
		lp.Exec("", "sh", "-c", statsScript(lbs)).As(LabelStats),
		lp.Say("a real server dies under three directors"),
		lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
		lp.Serve(lp.RS2, lp.ServeDown, 0).As(LabelRSDown),
		withTimeout(lp.Exec("", "sh", "-c", rsOutScript(lbs)), 20*time.Second).As(LabelRSOut),
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelRSProbe),
		lp.Serve(lp.RS2, lp.ServeUp, 0),
		withTimeout(lp.Exec("", "sh", "-c", rsBackScript(lbs)), 20*time.Second),
	)
	if !hand {
		steps = append(steps, drainCycle(lp.LB2)...)
	}
	for i, v := range SurvivalVariants {
		if i > 0 {
			// Every director on the variant's services (and sync
			// daemons as the variant wants), one after the other.
			for _, n := range lbs {
				steps = append(steps, lp.UseConfig(n, v), lp.Restart(n))
				steps = append(steps, syncFor(p, v, n)...)
			}
			steps = append(steps, waitHops(3, 40*time.Second))
		}
		steps = append(steps, survivalCycle(p, v)...)
	}
	return Plan{Name: name, Params: p, Steps: steps, Variants: map[string]Params{
		VariantMHOnly: routedVariant(p, VariantMHOnly),
		VariantRR:     routedVariant(p, VariantRR),
	}}
}

// withTimeout gives an exec step a longer limit than the default 10 s.
func withTimeout(s Step, d time.Duration) Step { s.Duration = lp.Duration(d); return s }

// survivalCycle: 100 connections streaming every 100 ms and the prober;
// lb1 is killed (SIGKILL) and its link cut; the router drops its next
// hop; two seconds later the prober stops and the connections are
// judged and closed; lb1 comes back and the router has three next hops
// again.
func survivalCycle(p Params, variant string) []Step {
	steps := []Step{
		lp.Say("survival (" + variant + "): lb1 dies under 100 streaming connections"),
		lp.ConnsOpen(RoutedConns, RoutedConnsEvery),
		lp.ProbeStart(), lp.Sleep(time.Second),
		lp.Signal(lp.LB1, "KILL"),
		lp.Cut(lp.LB1).As(LabelKill + "-" + variant),
		lp.WaitExecAbsent(lp.Router, 20*time.Second, hopOf(lp.LB1), vipRoute()...).As(LabelGone + "-" + variant),
		lp.Sleep(2 * time.Second),
		lp.ProbeStop().As(LabelSurvProbe + "-" + variant),
		lp.ConnsCheck().Tolerant(),
		lp.ConnsClose().As(LabelSurvConns + "-" + variant),
		lp.Heal(lp.LB1),
		lp.Start(lp.LB1),
	}
	steps = append(steps, syncFor(p, variant, lp.LB1)...)
	return append(steps, waitHops(3, 40*time.Second).As(LabelHopsBack+"-"+variant), routerView())
}

// Labels of the routed figures' plans.
const (
	LabelDetect    = "detect" // exec: cut lb1, milliseconds until its next hop left the router ("detect-<i>")
	LabelLoadPrefx = "load-"  // load with n directors ("load-3")
)

// detectScript cuts node's link and prints the milliseconds until the
// router's VIP route lost node's next hop, polling as fast as ip allows
// (ip -n, no exec per poll).
func detectScript(node string) string {
	h, _ := lp.HostByName(node)
	return fmt.Sprintf(`ip link set %s down; t0=$(date +%%s%%N)
while ip -n %s route show %s/32 | grep -q 'via %s '; do :; done
echo $(( ($(date +%%s%%N) - t0) / 1000000 ))`, lp.BridgePort(node), lp.Router, lp.VIP4.Addr(), h.IPv4.Addr())
}

// RoutedDetectPlan: the three directors; cycles times lb1 is killed and
// its link cut, and the time until the router drops its next hop is
// measured; lb1 comes back between cycles.
func RoutedDetectPlan(name string, p Params, cycles int) Plan {
	var steps []Step
	for _, n := range p.LBs() {
		steps = append(steps, lp.Start(n))
	}
	steps = append(steps, waitHops(3, 60*time.Second), lp.Sleep(2*time.Second))
	for i := range cycles {
		// The link goes first: a killed director's kernel would
		// otherwise close its BGP session at once (a FIN), and the
		// figure is the router's detection of a director that is
		// gone, host and all.
		steps = append(steps,
			withTimeout(lp.Exec("", "sh", "-c", detectScript(lp.LB1)), 60*time.Second).As(fmt.Sprintf("%s-%d", LabelDetect, i)),
			lp.Signal(lp.LB1, "KILL"),
			lp.Heal(lp.LB1), lp.Start(lp.LB1),
			waitHops(3, 60*time.Second), lp.Sleep(2*time.Second),
		)
	}
	return Plan{Name: name, Params: p, Steps: steps}
}

// RoutedScalePlan: load through three directors, then two (lb3's link
// cut), then one (lb2's too), clients requests back to back for d each.
func RoutedScalePlan(name string, p Params, clients int, d time.Duration) Plan {
	var steps []Step
	for _, n := range p.LBs() {
		steps = append(steps, lp.Start(n))
	}
	steps = append(steps, waitHops(3, 60*time.Second), lp.Sleep(2*time.Second),
		lp.Load(clients, d).As(LabelLoadPrefx+"3"),
		lp.Cut(lp.LB3), lp.WaitExecAbsent(lp.Router, 30*time.Second, hopOf(lp.LB3), vipRoute()...), lp.Sleep(time.Second),
		lp.Load(clients, d).As(LabelLoadPrefx+"2"),
		lp.Cut(lp.LB2), lp.WaitExecAbsent(lp.Router, 30*time.Second, hopOf(lp.LB2), vipRoute()...), lp.Sleep(time.Second),
		lp.Load(clients, d).As(LabelLoadPrefx+"1"),
		lp.Exec(lp.Router, "ip", "route", "show", lp.VIP4.Addr().String()+"/32"),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// controlSocket is node's director control socket in the lab.
func controlSocket(node string) string { return "/run/" + node + "/director.sock" }

// drainStatsScript prints node's ipvsadm --stats lines of both services.
func drainStatsScript(node string) string {
	return fmt.Sprintf(`ip netns exec %s ipvsadm -Ln --stats | grep -E '^(TCP|UDP)'`, node)
}

// drainCycle: under 100 streaming connections, the prober and the fine
// probe (the witness that tells a guest stall from a lost request),
// director drain-node on node withdraws its route and waits for its
// traffic to end; node's IPVS packet counters are read twice 3 s apart;
// the connections are judged; undrain-node announces again.
func drainCycle(node string) []Step {
	return []Step{
		lp.Say("drain: director drain-node on " + node + " under 100 streaming connections"),
		lp.ConnsOpen(RoutedConns, RoutedConnsEvery),
		lp.ProbeStartFine(), lp.Sleep(time.Second),
		withTimeout(lp.Exec(node, "director", "drain-node", "-socket", controlSocket(node)), lp.RoutedDrainTimeout+15*time.Second).As(LabelDrainNode),
		lp.WaitExecAbsent(lp.Router, 10*time.Second, hopOf(node), vipRoute()...).As(LabelDrainGone),
		lp.Exec("", "sh", "-c", drainStatsScript(node)).As(LabelDrainStats + "-0"),
		lp.Sleep(3 * time.Second),
		lp.Exec("", "sh", "-c", drainStatsScript(node)).As(LabelDrainStats + "-1"),
		lp.ProbeStop().As(LabelDrainProbe),
		lp.ConnsCheck().Tolerant(),
		lp.ConnsClose().As(LabelDrainConns),
		lp.Exec(node, "director", "undrain-node", "-socket", controlSocket(node)).As(LabelUndrain),
		waitHops(3, 40*time.Second),
	}
}
