package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Failure is how a failover plan takes the master (lb1) out.
type Failure string

// Failures the plans know.
const (
	// FailCut takes lb1's bridge port down; heal brings it back.
	FailCut Failure = "cut"
	// FailTerm stops lb1's daemon with SIGTERM (graceful: priority-0
	// advert); it is restarted afterwards.
	FailTerm Failure = "term"
	// FailKill kills lb1's daemon with SIGKILL (a crash: the VIP stays on
	// lb1's interface); it is restarted afterwards.
	FailKill Failure = "kill"
	// FailPartition drops VRRP between lb1 and lb2 only, so both become
	// master; heal removes the filter.
	FailPartition Failure = "partition"
)

// Step labels set by the plan builders, for Results.Step and ProbeOf.
const (
	LabelElected  = "elected"  // wait_vip lb1 after both started
	LabelFail     = "fail"     // the failure (cut, signal, partition)
	LabelTakeover = "takeover" // wait_vip lb2 after the failure
	LabelExit     = "exit"     // wait_exit lb1 after TERM
	LabelRecover  = "recover"  // heal / restart / heal_partition
	LabelBack     = "back"     // wait_no_vip lb2 after recovery
	LabelProbe    = "probe"    // probe_stop of the failover plan's one probe run
)

// masterDown is an upper bound of RFC 5798's Master_Down_Interval (three
// adverts plus skew, under one advert).
func masterDown(p Params) time.Duration { return 4 * p.Advert.D() }

// electTimeout allows for daemon start-up on top of the first election.
func electTimeout(p Params) time.Duration { return masterDown(p) + startAllowance }

// startAllowance bounds a daemon's start in the guest, where every page
// the kernel maps is a trap: director is three Go processes (the daemon,
// its VRRP process, its check worker) that each take a second or more to
// reach main in a loaded guest, and over 6 s has been seen. Only a bound:
// a run waits for the event itself.
const startAllowance = 15 * time.Second

// takeoverTimeout bounds how long a backup may take to claim the VIP.
func takeoverTimeout(p Params) time.Duration { return masterDown(p) + 3*time.Second }

// settle is how long to let a situation last so that a wrong move (a
// backup claiming the VIP, a slow ARP update) would show.
func settle(p Params) time.Duration { return max(time.Second, 2*p.Advert.D()) }

// startPair starts both daemons and waits for lb1, the higher priority, to
// win the first election.
func startPair(p Params) []Step {
	return []Step{
		lp.Start(lp.LB1),
		lp.Start(lp.LB2),
		lp.WaitVIP(lp.LB1, electTimeout(p)).As(LabelElected),
	}
}

// ElectionPlan starts both nodes, waits for lb1 to win and lets the client
// talk to the VIP for a second.
func ElectionPlan(name string, p Params) Plan {
	steps := startPair(p)
	steps = append(steps,
		lp.Sleep(settle(p)),
		lp.ProbeStart(),
		lp.Sleep(time.Second),
		lp.ProbeStop().As(LabelProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// FailoverPlan elects lb1, takes it out the given way, waits for lb2 to
// take over, then brings lb1 back and waits for it to take the VIP back.
// One probe run covers the whole sequence (LabelProbe); its last
// SteadyWindow shows the final state.
func FailoverPlan(name string, p Params, how Failure) Plan {
	steps := startPair(p)
	steps = append(steps, lp.Sleep(settle(p)), lp.ProbeStart(), lp.Sleep(500*time.Millisecond))
	steps = append(steps, failSteps(p, how)...)
	steps = append(steps, lp.Sleep(settle(p)))
	steps = append(steps, recoverSteps(p, how)...)
	final := settle(p)
	var sysctls map[string]map[string]string
	if how == FailPartition {
		final = 4 * time.Second
		if p.Impl[lp.LB1] == lp.Keepalived || p.Impl[lp.LB2] == lp.Keepalived {
			// When the partition heals, keepalived's lb2 may step down
			// before any of its adverts reaches lb1; lb1, master all
			// along, then has no reason to send a gratuitous ARP and the
			// client keeps lb2's MAC until its ARP entry expires (up to a
			// minute by default). Short client neighbour timers bound that
			// to about two seconds. director's loser sends a priority-0
			// advert as it steps down, so its winner re-announces at once:
			// a director pair runs with the default timers.
			sysctls = map[string]map[string]string{lp.Client: FastNeighbour()}
		}
	}
	steps = append(steps, lp.Sleep(final), lp.ProbeStop().As(LabelProbe))
	return Plan{Name: name, Params: p, Steps: steps, Sysctls: sysctls}
}

// SteadyWindow is the tail of a probe run that must be clean once a plan
// has settled.
const SteadyWindow = 500 * time.Millisecond

// FastNeighbour are IPv4 neighbour settings for a host's eth0 under which
// a stale ARP entry is noticed and re-resolved within about two seconds.
func FastNeighbour() map[string]string {
	return map[string]string{
		"net/ipv4/neigh/eth0/base_reachable_time_ms": "500",
		"net/ipv4/neigh/eth0/delay_first_probe_time": "1",
		"net/ipv4/neigh/eth0/retrans_time_ms":        "100",
	}
}

// failSteps takes lb1 out and waits for lb2 to hold the VIP.
func failSteps(p Params, how Failure) []Step {
	var s []Step
	switch how {
	case FailCut:
		s = append(s, lp.Cut(lp.LB1).As(LabelFail))
	case FailTerm:
		s = append(s, lp.Signal(lp.LB1, "TERM").As(LabelFail))
	case FailKill:
		s = append(s, lp.Signal(lp.LB1, "KILL").As(LabelFail))
	case FailPartition:
		s = append(s, lp.Partition().As(LabelFail))
	default:
		panic(fmt.Sprintf("unknown failure %q", how))
	}
	s = append(s, lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover))
	if how == FailTerm {
		s = append(s, lp.WaitExit(lp.LB1, 10*time.Second).As(LabelExit))
	}
	return s
}

// recoverSteps brings lb1 back and waits until lb2 has let the VIP go and
// lb1 holds it.
func recoverSteps(p Params, how Failure) []Step {
	var s []Step
	switch how {
	case FailCut:
		s = append(s, lp.Heal(lp.LB1).As(LabelRecover))
	case FailTerm, FailKill:
		s = append(s, lp.Restart(lp.LB1).As(LabelRecover))
	case FailPartition:
		s = append(s, lp.HealPartition().As(LabelRecover))
	}
	return append(s,
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
	)
}

// FiguresPlan repeats a failover and recovery cycles times, each with its
// own probe run labelled "cycle-N", for outage measurements.
func FiguresPlan(name string, p Params, how Failure, cycles int) Plan {
	steps := startPair(p)
	steps = append(steps, lp.Sleep(settle(p)))
	for i := range cycles {
		steps = append(steps, lp.ProbeStart(), lp.Sleep(500*time.Millisecond))
		steps = append(steps, failSteps(p, how)...)
		steps = append(steps, lp.Sleep(time.Second), lp.ProbeStop().As(CycleLabel(i)))
		steps = append(steps, recoverSteps(p, how)...)
		steps = append(steps, lp.Sleep(settle(p)))
	}
	return Plan{Name: name, Params: p, Steps: steps}
}

// CycleLabel labels the probe_stop of cycle i of a FiguresPlan.
func CycleLabel(i int) string { return fmt.Sprintf("cycle-%d", i) }

// DemoPlan tells the story of a DSR load balancer pair with running
// commentary: balancing over both real servers, a failover, the old
// master's return, and the IPVS table as an operator sees it.
func DemoPlan(p Params) Plan {
	say := lp.Say
	vip := lp.VIP4.Addr().String()
	// One wait is enough for the story: the echo service's rs2 is the
	// last entry a fresh daemon writes.
	wait := waitTable(lp.LB1, 10*time.Second)
	steps := []Step{
		say(fmt.Sprintf("lb1 (priority %d) and lb2 (priority %d) run %s, VRRP %s; VIP %s",
			p.Priority[lp.LB1], p.Priority[lp.LB2], p.Impl[lp.LB1], p.Describe(), vip)),
		say("both program kernel IPVS: http://" + vip + "/ round-robin over rs1 and rs2, direct server return"),
		say("starting both load balancers; the higher priority should win the election"),
		lp.Start(lp.LB1),
		lp.Start(lp.LB2),
		lp.WaitVIP(lp.LB1, electTimeout(p)).As(LabelElected),
	}
	steps = append(steps,
		wait[len(wait)-1],
		say("lb1 holds the VIP; its IPVS table:"),
		lp.Status(lp.LB1, "-Ln"),
		say("the client requests http://"+vip+"/ every 10 ms for 2 s; rs1 and rs2 answer it directly"),
		lp.ProbeStart(),
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As("steady"),
		say("lb1's counters (IPVS adds them up every 2 s): packets in, none out, as the replies bypass it"),
		lp.Sleep(2*time.Second),
		lp.Status(lp.LB1, "-Ln", "--stats"),
		say("cutting lb1 off the network segment; lb2 should notice the missing adverts and take over"),
		lp.ProbeStart(),
		lp.Sleep(500*time.Millisecond),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(time.Second),
		lp.ProbeStop().As("failover"),
		say("lb2 had the same services installed all along, so only the VIP moved; its connection counts:"),
		lp.Status(lp.LB2, "-Ln"),
		say("lb1 is back on the segment; with the higher priority it preempts lb2"),
		lp.ProbeStart(),
		lp.Heal(lp.LB1).As(LabelRecover),
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.Sleep(time.Second),
		lp.ProbeStop().As("return"),
		say("addresses on eth0 of each load balancer now:"),
		lp.Exec(lp.LB1, "ip", "-br", "-4", "addr", "show", "dev", "eth0"),
		lp.Exec(lp.LB2, "ip", "-br", "-4", "addr", "show", "dev", "eth0"),
		say("done"),
	)
	return Plan{Name: "demo", Params: p, Steps: steps}
}
