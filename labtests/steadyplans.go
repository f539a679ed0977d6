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
		// Each daemon process's time runnable but not running (schedstat,
		// summed over its threads): a process that waits for the CPU
		// as long per slice as keepalived's VRRP child is not starved
		// by the kernel, and its late timers come from inside it.
		lp.Exec(lp.LB1, "sh", "-c", schedstatScript).Tolerant(),
		// Where each keepalived process is blocked, if it is: a VRRP
		// child that keeps the VIP without adverts (the split above)
		// may be stuck in a system call rather than idle.
		lp.Exec(lp.LB1, "sh", "-c", blockedScript).Tolerant(),
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

// schedstatScript prints, for each director process (daemon, check worker,
// VRRP process), keepalived process and the kernel's softirq thread, its
// threads' CPU time, time spent runnable but waiting for the CPU, time
// slices, and the mean wait per slice (/proc/PID/task/TID/schedstat).
const schedstatScript = `awk 'FNR == 1 { split(FILENAME, f, "/"); pid = f[3]
    if (!(pid in comm)) { c = ""; cf = "/proc/" pid "/comm"; getline c < cf; close(cf); comm[pid] = c }
    if (comm[pid] != "director" && comm[pid] != "director-check" && comm[pid] != "director-vrrp" && comm[pid] != "keepalived" && comm[pid] != "ksoftirqd/0") next
    run[pid] += $1; wait[pid] += $2; n[pid] += $3 }
  END { printf "schedstat: %7s %-15s %9s %9s %8s %13s\n", "pid", "comm", "cpu_s", "wait_s", "slices", "wait/slice_ms"
    for (p in run) printf "schedstat: %7s %-15s %9.2f %9.2f %8d %13.3f\n", p, comm[p], run[p]/1e9, wait[p]/1e9, n[p], n[p] ? wait[p]/n[p]/1e6 : 0 }' /proc/[0-9]*/task/[0-9]*/schedstat
# Packets the kernel's receive path processed, dropped and left for later
# (time_squeeze): adverts that wait for ksoftirqd wait with the CPU.
while read a b c rest; do echo "softnet: processed $((0x$a)) dropped $((0x$b)) time_squeeze $((0x$c))"; done < /proc/net/softnet_stat`

// blockedScript prints, for each keepalived and director process, its
// state, the system call it is in (number and arguments, or "running")
// and its kernel stack, where the guest kernel offers them.
const blockedScript = `for p in $(pidof keepalived director director-vrrp); do
  echo "blocked: $p $(cat /proc/$p/comm) state=$(awk '/^State:/ {print $2}' /proc/$p/status) syscall=$(cat /proc/$p/syscall 2>&1)"
  cat /proc/$p/stack 2>/dev/null | sed "s/^/blocked: $p   /"
done`
