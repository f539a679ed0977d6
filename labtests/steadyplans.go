package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the loaded steady-state plan's steps.
const (
	LabelSteadyReady = "steady-ready" // lb1's table complete (tolerant)
	LabelSteadyBurn  = "steady-burn"  // the CPU burners start
	LabelSteady      = "steady"       // the steady period
	LabelSteadyUp1   = "steady-up-lb1"
	LabelSteadyUp2   = "steady-up-lb2"
)

// The loaded steady state (issue 16, item 5): the pair at 20 ms adverts,
// each node checking 1,000 real servers over HTTP every 5 s, IPVS
// connection sync on, and SteadyBurners CPU burners beside them, for
// SteadyFor. Nothing fails: any VRRP state change, and any real server
// marked down, is the load's doing.
const (
	SteadyAdvert   = 20 * time.Millisecond
	SteadyInterval = 5 * time.Second
	SteadyFor      = 5 * time.Minute
	SteadyBurners  = 1
	// SteadyRTRow is the figure's row of director with rt_priority
	// SteadyRTPriority.
	SteadyRTRow      = "director-rt"
	SteadyRTPriority = 10
)

// SteadyParams are the loaded steady state's parameters for impl.
func SteadyParams(impl lp.Impl) Params {
	p := lp.DefaultParams(impl)
	p.Advert = lp.Duration(SteadyAdvert)
	p.Idle = &lp.Idle{Services: IdleServices, PerService: IdlePerService,
		Interval: lp.Duration(SteadyInterval), Timeout: lp.Duration(IdleTimeout), Sync: true, Burners: SteadyBurners}
	return p
}

// SteadyPlan starts the pair with the idle services, lets the checks
// settle, starts the burners and holds still for d, then lists both
// tables.
func SteadyPlan(name string, p Params, d time.Duration) Plan {
	i := p.Idle
	steps := idleAddrSteps(i)
	steps = append(steps,
		lp.Start(lp.LB1),
		lp.Start(lp.LB2),
		// Generous: a daemon loading 1,000 real servers and their checks
		// in the busy guest takes seconds to start.
		lp.WaitVIP(lp.LB1, 60*time.Second).As(LabelElected),
		lp.WaitExec(lp.LB1, 90*time.Second, idleTableRE(i), idleTableArgv(2*time.Second)...).As(LabelSteadyReady).Tolerant(),
		lp.Sleep(IdleSettle),
		lp.BurnStart(lp.LB1, i.Burners).As(LabelSteadyBurn),
		lp.Sleep(d).As(LabelSteady),
		// Each process's CPU time, for the log: which part of a daemon
		// (VRRP and dataplane, check worker, keepalived's children) costs what.
		lp.Exec(lp.LB1, "sh", "-c", "ps -eo pid,ppid,nlwp,time,pcpu,args | grep -v ' \\['"),
		lp.Exec(lp.LB1, idleTableArgv(0)...).As(LabelSteadyUp1),
		lp.Exec(lp.LB2, idleTableArgv(0)...).As(LabelSteadyUp2),
		lp.BurnStop(lp.LB1),
	)
	return Plan{
		Name:    name,
		Params:  p,
		Steps:   steps,
		Modules: append(lp.DefaultModules(), lp.IPVSModules()...),
		Timeout: loadedTimeout(steps),
	}
}

// steadyDuration is SteadyFor unless LAB_STEADY_FOR (a Go duration)
// overrides it.
func steadyDuration(getenv func(string) string) (time.Duration, error) {
	s := getenv("LAB_STEADY_FOR")
	if s == "" {
		return SteadyFor, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("LAB_STEADY_FOR %q: want a positive duration", s)
	}
	return d, nil
}
