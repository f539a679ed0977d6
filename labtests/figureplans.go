package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// FigureAdverts are the VRRPv3 advert intervals of the failover figures.
var FigureAdverts = []time.Duration{time.Second, 100 * time.Millisecond, 50 * time.Millisecond, 20 * time.Millisecond}

// figureVariant names the configuration variant of advert interval a.
func figureVariant(a time.Duration) string { return "v3-" + a.String() }

// FigureCutLabel labels cycle i's cut at advert interval a; FigureCycleLabel
// its probe_stop.
func FigureCutLabel(a time.Duration, i int) string {
	return fmt.Sprintf("%s/cut-%d", figureVariant(a), i)
}

// FigureCycleLabel labels the probe_stop of cycle i at advert interval a.
func FigureCycleLabel(a time.Duration, i int) string {
	return fmt.Sprintf("%s/cycle-%d", figureVariant(a), i)
}

// FailoverFiguresPlan measures cut failovers of impl on both nodes at each
// advert interval in one boot: the daemons are stopped, switched to the
// interval's configuration variant and started again between intervals.
// Each cycle has its own probe run (HTTP and fine), from 500 ms (plus the
// cycle's cutPhase) before the cut to a second after lb2 holds the VIP;
// lb1 then comes back and takes the VIP back before the next cycle. The
// client records the adverts (WatchAdverts), so that each cut's place
// between two of lb1's adverts is known.
func FailoverFiguresPlan(name string, impl lp.Impl, adverts []time.Duration, cycles int) Plan {
	params := func(a time.Duration) Params {
		p := lp.DefaultParams(impl)
		p.Version, p.Advert = 3, lp.Duration(a)
		return p
	}
	main := params(adverts[0])
	main.WatchAdverts = true
	variants := map[string]Params{}
	var steps []Step
	for k, a := range adverts {
		p := params(a)
		variants[figureVariant(a)] = p
		if k > 0 {
			prev := params(adverts[k-1])
			stop := prev.Advert.D()*4 + 5*time.Second
			steps = append(steps,
				lp.Signal(lp.LB2, "TERM"), lp.WaitExit(lp.LB2, stop),
				lp.Signal(lp.LB1, "TERM"), lp.WaitExit(lp.LB1, stop),
				lp.UseConfig(lp.LB1, figureVariant(a)), lp.UseConfig(lp.LB2, figureVariant(a)))
		}
		steps = append(steps, lp.Start(lp.LB1), lp.Start(lp.LB2),
			lp.WaitVIP(lp.LB1, electTimeout(p)).As(LabelElected))
		steps = append(steps, lp.Sleep(settle(p)))
		for i := range cycles {
			steps = append(steps,
				lp.ProbeStartFine(), lp.Sleep(500*time.Millisecond+cutPhase(a, i, cycles)),
				lp.Cut(lp.LB1).As(FigureCutLabel(a, i)),
				lp.WaitVIP(lp.LB2, takeoverTimeout(p)),
				lp.Sleep(time.Second), lp.ProbeStop().As(FigureCycleLabel(a, i)))
			steps = append(steps, recoverSteps(p, FailCut)...)
			steps = append(steps, lp.Sleep(settle(p)))
		}
	}
	return Plan{Name: name, Params: main, Steps: steps, Variants: variants}
}

// cutPhase spreads the cycles' cuts over one advert interval a: cycle i
// of n waits (2i+1)/2n of it more. The steps before a cut take much the
// same time in every cycle, so without it the cuts would fall at much the
// same place between two adverts, and that place, which differs between
// implementations (when each starts advertising against when its VIP
// shows), would weigh on the outage as much as the takeover does.
func cutPhase(a time.Duration, i, n int) time.Duration {
	return a * time.Duration(2*i+1) / time.Duration(2*n)
}
