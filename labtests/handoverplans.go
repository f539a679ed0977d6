package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// HandoverCycles is how many times the handover plan runs each of
// "director failover" and "director failback".
const HandoverCycles = 10

// Labels of the handover plan's commands: HandoverLabel("failover", i).
func HandoverLabel(cmd string, i int) string { return fmt.Sprintf("%s-%d", cmd, i) }

// HandoverParams is a director pair at VRRPv3 1 s adverts. At 100 ms a
// loaded host stalled the guest (both daemons in it) long enough, now and
// then, for a backup to take over after a stall (seen twice in two runs):
// a flap that has nothing to do with the handover under test.
//
// The client's HTTP goes through IPVS to the real servers (DSR), as an
// operator's does, with what a pair needs for a handover to lose no
// connection: connection sync, so the new master knows the old master's
// connections, and mh with sloppy_tcp, so a connection too young to have
// been synced is sent by the new master to the real server that already
// has it (README, "How a pair behaves": Handover). Before, the load
// balancers answered HTTP themselves, and a connection in flight at the
// client's ARP flip was lost whatever the daemons did.
func HandoverParams() Params {
	p := lp.DefaultParams(lp.Director)
	p.Advert = lp.Duration(time.Second)
	on := true
	p.IPVS = &lp.IPVS{Scheduler: "mh", SchedulerFlags: []string{"mh-fallback", "mh-port"}, Sloppy: &on, Sync: true}
	return p
}

// handoverCmd runs "director CMD" for the lab's instance on lb1.
func handoverCmd(cmd string, i int) Step {
	s := lp.Exec(lp.LB1, "director", cmd, "-socket", "/run/lb1/director.sock", lp.InstanceName)
	s.Duration = lp.Duration(40 * time.Second)
	return s.As(HandoverLabel(cmd, i))
}

// HandoverPlan hands mastership back and forth under client traffic: a
// director pair (HandoverParams), "director failover" on lb1 gives the
// VIP to lb2, "director failback" on lb1 takes it back, HandoverCycles
// times each, with the HTTP prober and the fine probe running throughout
// (LabelProbe). Both commands are make-before-break, so no request may be
// lost.
func HandoverPlan(name string, p Params) Plan {
	steps := []Step{lp.Start(lp.LB1), lp.Start(lp.LB2),
		lp.WaitVIP(lp.LB1, electTimeout(p)).As(LabelElected)}
	steps = append(steps, lp.Sleep(settle(p)), lp.ProbeStartFine(), lp.Sleep(300*time.Millisecond))
	for i := range HandoverCycles {
		steps = append(steps,
			handoverCmd("failover", i),
			lp.WaitVIP(lp.LB2, takeoverTimeout(p)), lp.WaitNoVIP(lp.LB1, takeoverTimeout(p)),
			lp.Sleep(300*time.Millisecond),
			handoverCmd("failback", i),
			lp.WaitVIP(lp.LB1, takeoverTimeout(p)), lp.WaitNoVIP(lp.LB2, takeoverTimeout(p)),
			lp.Sleep(300*time.Millisecond))
	}
	steps = append(steps, holdSteps(p)...)
	steps = append(steps, lp.ProbeStop().As(LabelProbe))
	return Plan{Name: name, Params: p, Steps: steps}
}

// Labels of the hold scenario (holdSteps).
const (
	LabelHoldMoved = "hold-moved" // wait_exec: the client's entry on lb2's MAC again
)

// holdSteps: a client that asks for the VIP's MAC while the old master
// holds the VIP after a handover can be answered by it last, and be sent
// to it (seen once in a CI run, at a start). The plan makes that case
// certain: "director failover" on lb1 and, once the client's entry has
// lb2's MAC and lb2's takeover burst is over (plantAfter), lb1's MAC
// written into the entry while lb1 still holds the VIP (HoldPlant, one
// step: HandoverLabel("failover", HandoverCycles)). Only lb2's later
// announcements can then move the client back, and they must do so
// before lb1 stops forwarding. The probes run throughout; lb1 takes the
// VIP back after.
func holdSteps(p Params) []Step {
	return []Step{
		lp.Say("a client is sent to the old master during its hold (lb1's MAC planted in its ARP entry)"),
		lp.HoldPlant(lp.LB1, lp.LB2, plantAfter, 40*time.Second,
			"director", "failover", "-socket", "/run/lb1/director.sock", lp.InstanceName).As(HandoverLabel("failover", HandoverCycles)),
		lp.WaitExec("", 4*p.Advert.D()+5*time.Second, "moved", "sh", "-c", movedScript()).As(LabelHoldMoved),
		lp.WaitNoVIP(lp.LB1, takeoverTimeout(p)),
		lp.Sleep(300 * time.Millisecond),
		handoverCmd("failback", HandoverCycles),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)), lp.WaitNoVIP(lp.LB2, takeoverTimeout(p)),
		lp.Sleep(300 * time.Millisecond),
	}
}

// plantAfter is how long after the client's entry first has lb2's MAC the
// plan plants lb1's: past lb2's takeover burst (5 announcements 10 ms
// apart by default).
const plantAfter = 150 * time.Millisecond

// movedScript prints "moved" once the client's entry for the VIP has lb2's
// MAC.
func movedScript() string {
	return fmt.Sprintf(`m=$(ip -n %s -br link show dev eth0 | awk '{print $3}'); ip -n %s neigh show %s | grep -q "lladdr $m " && echo moved || true`,
		lp.LB2, lp.Client, lp.VIP4.Addr())
}
