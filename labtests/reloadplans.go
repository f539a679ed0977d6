package labtests

import (
	"fmt"
	"regexp"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// The reload plan's configuration variants, applied in this order, each
// on top of the one before.
const (
	VariantAddRS    = "add-rs"    // the sorry host joins as a third real server
	VariantWeight   = "weight"    // rs1's weight 1 -> ReloadWeight
	VariantRemoveRS = "remove-rs" // rs2 removed: drains, then deleted
	VariantAddVIP   = "add-vip"   // ReloadVIP joins the instance, with an HTTP service
)

// ReloadVariants lists the variants in the order the plan applies them.
func ReloadVariants() []string {
	return []string{VariantAddRS, VariantWeight, VariantRemoveRS, VariantAddVIP}
}

// Settings of the reload plan.
const (
	// ReloadRS3 plays the added real server: the sorry host holds the
	// VIPs on lo like rs1 and rs2 and runs the same servers.
	ReloadRS3 = lp.Sorry
	// ReloadVIP is the address the last reload adds (unused in the
	// topology, in the VIP's /24).
	ReloadVIP = "10.0.0.101"
	// ReloadWeight is rs1's weight after the weight change.
	ReloadWeight = 3
	// ReloadDrain is ipvs.drain_timeout: longer than the rest of the
	// plan, so the echo connections on the removed rs2 hold it at weight 0
	// until they close. At the timeout director deletes a destination
	// whatever its connections, and with its expire_nodest_conn=1 their
	// next packets reach lb1's own stack and are reset: the timeout is a
	// bound, not part of a lossless drain.
	ReloadDrain = 60 * time.Second
	// ReloadConns long-lived echo connections stream every ReloadEvery
	// through the whole sequence.
	ReloadConns = 4
	ReloadEvery = 100 * time.Millisecond
	// ReloadSettle is how long each configuration serves the client
	// before the next reload: enough requests to judge the split.
	ReloadSettle = 3 * time.Second
)

// Labels of the reload plan's steps. ReloadLabel(variant) marks lb1's
// SIGHUP of each variant; AppliedLabel(variant) the wait until the change
// shows in lb1's kernel table.
const (
	LabelReloadDrained = "reload-drained" // rs2 at weight 0 on lb1 (echo service)
	LabelReloadDeleted = "reload-deleted" // rs2 gone from lb1 once the echo connections closed (before add-vip)
	LabelReloadVIP     = "reload-vip"     // lb1's eth0 holds ReloadVIP
	LabelReloadCurl    = "reload-curl"    // the client reached ReloadVIP:80
	LabelReloadFinal   = "reload-final"   // ipvsadm -Ln on lb1 at the end
	LabelOpenVIP       = "open-vip"       // conns_open of the set watching add-vip
	LabelConnsVIP      = "conns-vip"      // its conns_close
)

// ReloadLabel labels lb1's SIGHUP applying variant.
func ReloadLabel(variant string) string { return "reload-" + variant }

// AppliedLabel labels the wait until variant shows in lb1's table.
func AppliedLabel(variant string) string { return "applied-" + variant }

// TableLabel labels ipvsadm -Ln on lb1 once variant is applied.
func TableLabel(variant string) string { return "table-" + variant }

// ReloadParams are the reload plan's starting point: a director pair (lb1
// master), wrr over rs1 and rs2 (so weights shape the split), a short
// drain timeout, adverts every second (a starved guest missing three
// 100 ms adverts would hand the VIP to lb2, which has no entry for the
// echo connections: a reset that is not the reload's doing).
func ReloadParams(impl lp.Impl) Params {
	p := IPVSParams(impl)
	p.Advert = lp.Duration(time.Second)
	p.IPVS = &lp.IPVS{Scheduler: "wrr", DrainTimeout: lp.Duration(ReloadDrain)}
	return p
}

// reloadVariants derives the cumulative configurations from base.
func reloadVariants(base Params) map[string]Params {
	v := *base.IPVS
	out := map[string]Params{}
	put := func(name string, ipvs lp.IPVS) {
		p := base
		p.IPVS = &ipvs
		out[name] = p
	}
	v.RealServers = []string{lp.RS1, lp.RS2, ReloadRS3}
	put(VariantAddRS, v)
	v.Weights = map[string]int{lp.RS1: ReloadWeight}
	put(VariantWeight, v)
	v.RealServers = []string{lp.RS1, ReloadRS3}
	put(VariantRemoveRS, v)
	v.ExtraVIPs = []string{ReloadVIP}
	put(VariantAddVIP, v)
	return out
}

// reloadLB1 switches lb1 to variant and sends it SIGHUP.
func reloadLB1(variant string) []Step {
	return []Step{
		lp.Say("reload: " + variant),
		lp.UseConfig(lp.LB1, variant),
		lp.Signal(lp.LB1, "HUP").As(ReloadLabel(variant)),
	}
}

// reloadLB2 does the same on lb2 once lb1 is done, as an operator would
// (one node at a time).
func reloadLB2(variant string) []Step {
	return []Step{lp.UseConfig(lp.LB2, variant), lp.Signal(lp.LB2, "HUP")}
}

// applied waits until variant's change shows in lb1's kernel table. For
// keepalived (the figure's baseline) the drain wait may fail: keepalived
// deletes a removed real server at once.
func applied(variant string, p Params) []Step {
	wait := func(d time.Duration, re string) Step {
		return lp.WaitExec(lp.LB1, d, re, "ipvsadm", "-Ln")
	}
	var steps []Step
	switch variant {
	case VariantAddRS:
		steps = []Step{wait(5*time.Second, destRE(ReloadRS3, lp.HTTPPort, 1, -1)), wait(5*time.Second, destRE(ReloadRS3, lp.EchoPort, 1, -1))}
	case VariantWeight:
		steps = []Step{wait(5*time.Second, destRE(lp.RS1, lp.HTTPPort, ReloadWeight, -1)), wait(5*time.Second, destRE(lp.RS1, lp.EchoPort, ReloadWeight, -1))}
	case VariantRemoveRS:
		drained := wait(5*time.Second, destRE(lp.RS2, lp.EchoPort, 0, ReloadConns/2)).As(LabelReloadDrained)
		if p.Impl[lp.LB1] == lp.Keepalived {
			drained = drained.Tolerant()
		}
		// The echo connections on rs2 hold it at weight 0 (deleted
		// once they close, at the end); the HTTP service has no
		// established connection to it and loses it at once.
		steps = []Step{
			drained,
			lp.WaitExecAbsent(lp.LB1, 5*time.Second, regexp.QuoteMeta(lp.RSAddr(lp.RS2, lp.HTTPPort)), "ipvsadm", "-Ln"),
		}
	case VariantAddVIP:
		svc := fmt.Sprintf(`(?m)^TCP\s+%s:%d\s+wrr`, regexp.QuoteMeta(ReloadVIP), lp.HTTPPort)
		steps = []Step{
			wait(5*time.Second, svc),
			lp.WaitExec(lp.LB1, 5*time.Second, `inet `+regexp.QuoteMeta(ReloadVIP)+`/`, "ip", "-4", "addr", "show", "dev", "eth0").As(LabelReloadVIP),
			lp.WaitExec(lp.Client, 5*time.Second, `^(`+lp.RS1+`|`+ReloadRS3+`)`, "curl", "-sS", "-m", "1", fmt.Sprintf("http://%s:%d/", ReloadVIP, lp.HTTPPort)).As(LabelReloadCurl),
		}
	}
	return append(steps, lp.Say(variant+" applied on lb1").As(AppliedLabel(variant)), ipvsadm(lp.LB1, "-Ln").As(TableLabel(variant)))
}

// ReloadPlan runs the client's prober and ReloadConns streaming echo
// connections through lb1 while both nodes reload, one change at a time:
// a real server added, a weight changed, a real server removed (drained,
// then deleted), a VIP added. Each configuration serves for ReloadSettle.
// The real servers get ReloadVIP on lo up front (it is not answered for by
// ARP there, and unused until the last reload).
func ReloadPlan(name string, p Params) Plan {
	steps := ipvsStart(p)
	for _, rs := range []string{lp.RS1, lp.RS2, ReloadRS3} {
		steps = append(steps, lp.Exec(rs, "ip", "addr", "add", ReloadVIP+"/32", "dev", "lo"))
	}
	steps = append(steps,
		lp.ConnsOpen(ReloadConns, ReloadEvery).As(LabelOpen),
		lp.ProbeStart(),
		lp.Sleep(ReloadSettle),
	)
	rs2 := regexp.QuoteMeta(lp.RSAddr(lp.RS2, lp.EchoPort))
	for _, v := range ReloadVariants() {
		if v == VariantAddVIP {
			// The drain ends: the echo connections close cleanly
			// through lb1 (judged by the test from the record) and rs2
			// goes. A fresh set watches the last reload, which adds a
			// VIP to the running VRRP instance.
			steps = append(steps,
				lp.ConnsCheck().As(LabelCheck).Tolerant(),
				lp.ConnsClose().As(LabelConns),
				lp.WaitExecAbsent(lp.LB1, 8*time.Second, rs2, "ipvsadm", "-Ln").As(LabelReloadDeleted),
				lp.ConnsOpen(ReloadConns, ReloadEvery).As(LabelOpenVIP),
			)
		}
		steps = append(steps, reloadLB1(v)...)
		steps = append(steps, applied(v, p)...)
		steps = append(steps, reloadLB2(v)...)
		steps = append(steps, lp.Sleep(ReloadSettle))
	}
	steps = append(steps,
		lp.ProbeStop().As(LabelProbe),
		lp.ConnsClose().As(LabelConnsVIP),
		ipvsadm(lp.LB1, "-Ln").As(LabelReloadFinal),
	)
	return Plan{Name: name, Params: p, Steps: steps, Variants: reloadVariants(p)}
}
