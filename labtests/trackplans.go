package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the HAProxy pair plan.
const (
	LabelHAProxyKill = "haproxy-kill"
	LabelHAProxyMove = "haproxy-moved"
	LabelMaintOn     = "maintenance-on"
	LabelMaintMoved  = "maintenance-moved"
	LabelMaintOff    = "maintenance-off"
	LabelMaintBack   = "maintenance-back"
	LabelMaintProbe  = "maintenance"
)

// HAProxyParams is the most common keepalived deployment: two HAProxy
// nodes sharing a VIP, no IPVS, each tracking its own HAProxy with a
// script (every second, fall 2, rise 2, weight -60: 150 falls below 100)
// and a maintenance file.
func HAProxyParams(impl lp.Impl) Params {
	p := lp.DefaultParams(impl)
	p.Track = &lp.Track{Interval: lp.Duration(time.Second), Fall: 2, Rise: 2, Weight: -60, Maintenance: true}
	return p
}

const haproxyConfigFile = "haproxy.cfg"

// startHAProxy starts node's HAProxy in the background, its pid in
// lp.HAProxyPIDFile(node).
func startHAProxy(node string) Step {
	return lp.Exec(node, "haproxy", "-f", "/mnt/out/"+haproxyConfigFile, "-D", "-p", lp.HAProxyPIDFile(node))
}

// haproxyDetect bounds the move after HAProxy dies on the master: fall
// checks of interval each (the first may come up to one interval late),
// then the backup's master-down time, with room for a loaded guest.
func haproxyDetect(p Params) time.Duration {
	t := p.Track
	return time.Duration(t.Fall+1)*t.Interval.D() + masterDown(p) + 2*time.Second
}

// HAProxyPlan: both load balancers serve the VIP with HAProxy instead of
// their own web server. HAProxy on the master (lb1) is killed cycles
// times, each cycle with its own probe run (CycleLabel), and restarted,
// and lb1 takes the VIP back once its check has risen. Then lb1's
// maintenance file is set (lb1 goes to FAULT, lb2 takes over) and cleared
// (lb1 preempts back), under one more probe run.
func HAProxyPlan(name string, p Params, cycles int) Plan {
	steps := []Step{
		lp.Serve(lp.LB1, lp.ServeDown, 0), lp.Serve(lp.LB2, lp.ServeDown, 0),
		startHAProxy(lp.LB1), startHAProxy(lp.LB2),
	}
	steps = append(steps, startPair(p)...)
	back := haproxyDetect(p) + time.Duration(p.Track.Rise)*p.Track.Interval.D()
	steps = append(steps, lp.Sleep(settle(p)))
	for i := range cycles {
		steps = append(steps,
			lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
			lp.Exec(lp.LB1, "sh", "-c", "kill -9 $(cat "+lp.HAProxyPIDFile(lp.LB1)+")").As(LabelHAProxyKill),
			lp.WaitVIP(lp.LB2, haproxyDetect(p)).As(LabelHAProxyMove),
			lp.Sleep(time.Second), lp.ProbeStop().As(CycleLabel(i)),
			startHAProxy(lp.LB1),
			lp.WaitNoVIP(lp.LB2, back), lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
			lp.Sleep(settle(p)),
		)
	}
	maint := lp.MaintenanceFile(lp.LB1)
	steps = append(steps,
		lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
		lp.Exec(lp.LB1, "sh", "-c", "echo 1 > "+maint).As(LabelMaintOn),
		lp.WaitVIP(lp.LB2, haproxyDetect(p)).As(LabelMaintMoved),
		lp.Sleep(settle(p)),
		lp.Exec(lp.LB1, "sh", "-c", "echo 0 > "+maint).As(LabelMaintOff),
		lp.WaitVIP(lp.LB1, haproxyDetect(p)).As(LabelMaintBack),
		lp.Sleep(settle(p)),
		lp.ProbeStop().As(LabelMaintProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps, Files: map[string]string{
		haproxyConfigFile:          lp.HAProxyConfig(),
		lp.CheckScriptFile(lp.LB1): lp.CheckScript(lp.LB1),
		lp.CheckScriptFile(lp.LB2): lp.CheckScript(lp.LB2),
	}}
}

func haproxyCycleName(i int) string { return fmt.Sprintf("cycle %d", i) }

// Labels of the hooks plan.
const (
	LabelHookLeft = "hook-left"
	LabelFIFO     = "fifo"
)

// fifoCopy is where the plan keeps what lb2's notify FIFO received.
const fifoCopy = "fifo-lb2.txt"

// HooksParams: director on both nodes, each with a notify_master hook that
// hangs for 10 s and leaves a child, hooks.timeout 1 s, and a notify FIFO.
func HooksParams() Params {
	p := lp.DefaultParams(lp.Director)
	p.Hooks = &lp.Hooks{Timeout: lp.Duration(time.Second)}
	return p
}

// HooksPlan: a reader drains lb2's notify FIFO into the run directory;
// lb1 is cut off and lb2 takes over while its notify_master hook hangs;
// after the hook's timeout (and the kill's grace) no process of the hook
// may remain; lb1 comes back and preempts. The takeover time is compared
// by the test with a failover without hooks.
func HooksPlan(name string, p Params) Plan {
	fifo := lp.NotifyFIFO(lp.LB2)
	steps := []Step{
		lp.Exec(lp.LB2, "mkfifo", "-m", "600", fifo),
		lp.Exec(lp.LB2, "sh", "-c", "cat "+fifo+" > /mnt/out/"+fifoCopy+" 2>&1 &"),
	}
	steps = append(steps, startPair(p)...)
	steps = append(steps,
		lp.Sleep(settle(p)),
		lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(time.Second), lp.ProbeStop().As(LabelProbe),
		// The hook's timeout, then SIGKILL's grace (2 s), then a margin.
		lp.Sleep(p.Hooks.Timeout.D()+3*time.Second),
		lp.Exec(lp.LB2, "sh", "-c", "ps -eo args | grep -c '^sleep 60[.]5' || true").As(LabelHookLeft),
		lp.Heal(lp.LB1).As(LabelRecover),
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
		lp.Sleep(settle(p)),
		lp.Exec("", "cat", "/mnt/out/"+fifoCopy).As(LabelFIFO),
	)
	return Plan{Name: name, Params: p, Steps: steps, Files: map[string]string{lp.SlowHookFile: lp.SlowHook}}
}
