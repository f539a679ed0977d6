package labtests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the idle plan's steps.
const (
	LabelIdleReady  = "idle-ready"  // wait_exec until lb1 has every service and real server at weight 1 (tolerant)
	LabelIdleUp     = "idle-up"     // services and weight-1 real servers before the sample
	LabelIdleState  = "idle-state"  // director state -json (director only)
	LabelIdleBefore = "idle-before" // bridge counter of lb1's check SYNs before the sample
	LabelIdleSample = "idle-sample" // sample_proc of lb1's daemon
	LabelIdleAfter  = "idle-after"  // the counter after the sample
	LabelIdleTable  = "idle-table"  // services and weight-1 real servers after the sample
	LabelIdleBurn   = "idle-burn"   // CPU burners started (Idle.Burners)
	LabelIdleUnburn = "idle-unburn" // and stopped
)

// IdleBurners is how many CPU burners the idle figure's burner rows run
// beside the daemon: two busy neighbours leave it a third of the CPU when
// all are runnable.
const IdleBurners = 2

// Shape of the idle figure: 100 services x 10 real servers, HTTP checks
// every 10 s with a 1 s timeout (100 checks/s), sampled for 30 s after 20 s
// of settling. The one UML CPU also runs the real servers' web servers: at
// 2 s (500 checks/s) neither daemon kept up, at 5 s (200 checks/s)
// keepalived did and director did not (its checks cost about 1.7 times
// keepalived's in UML, where every clock read of the Go runtime is a
// trapped system call, and once checks time out the flaps feed on
// themselves). At 10 s both keep every real server up, so the figure
// compares like with like; LAB_IDLE_INTERVAL sets another interval.
const (
	IdleServices   = 100
	IdlePerService = 10
	IdleInterval   = 10 * time.Second
	IdleTimeout    = time.Second
	IdleSettle     = 20 * time.Second
	IdleSample     = 30 * time.Second
)

// IdleParams are DefaultParams with VRRPv3 adverts every second and the
// idle services, checked every interval (on one path for all, with
// shared, which director turns into PerService checks).
func IdleParams(impl lp.Impl, interval time.Duration, shared bool) Params {
	p := lp.DefaultParams(impl)
	p.Advert = lp.Duration(time.Second)
	p.Idle = &lp.Idle{Services: IdleServices, PerService: IdlePerService,
		Interval: lp.Duration(interval), Timeout: lp.Duration(min(IdleTimeout, interval)), SharedPath: shared}
	return p
}

// markedDownRE matches a daemon's log line for a real server taken out
// after a failed check: director's health transition to down, keepalived's
// removal from its virtual server.
var markedDownRE = regexp.MustCompile(`health check state change.* to=down|Removing service \[`)

// MarkedDown counts the real servers a daemon's log (lbN.log) says it took
// out between from and to. Every real server of the idle plans is
// healthy, so each one is a false alarm. Lines without a time are skipped.
func MarkedDown(log string, from, to time.Time) int {
	n := 0
	for line := range strings.Lines(log) {
		if !markedDownRE.MatchString(line) {
			continue
		}
		at, ok := logTime(line)
		if ok && !at.Before(from.Truncate(time.Second)) && !at.After(to) {
			n++
		}
	}
	return n
}

var (
	slogTimeRE = regexp.MustCompile(`^time=(\S+)`)
	kaTimeRE   = regexp.MustCompile(`^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}):`)
)

// logTime reads the time of a director (slog) or keepalived (-l) log line.
// keepalived's has whole seconds in the guest's zone, UTC.
func logTime(line string) (time.Time, bool) {
	if m := slogTimeRE.FindStringSubmatch(line); m != nil {
		t, err := time.Parse(time.RFC3339Nano, m[1])
		return t, err == nil
	}
	if m := kaTimeRE.FindStringSubmatch(line); m != nil {
		t, err := time.Parse("Mon Jan _2 15:04:05 2006", m[1])
		return t, err == nil
	}
	return time.Time{}, false
}

// idleCountFile holds the bridge rule counting lb1's check connections:
// SYNs (without ACK) from lb1 to port 80. Nothing else talks to port 80
// in this plan, so the counter is the check rate.
const idleCountFile = "idle.nft"

func idleCountRules() string {
	return fmt.Sprintf("table bridge lab_idle {\n  chain forward {\n    type filter hook forward priority -20; policy accept;\n"+
		"    iifname %q tcp dport %d tcp flags & (syn | ack) == syn counter comment \"checks from lb1\"\n  }\n}\n",
		lp.BridgePort(lp.LB1), lp.HTTPPort)
}

// idleTableArgv prints "<services> <real servers at weight 1>" for lb1's
// kernel table, after pause: listing 1,000 destinations costs the one UML
// CPU a lot, and wait_exec would otherwise run it back to back.
func idleTableArgv(pause time.Duration) []string {
	cmd := `ipvsadm -Ln | awk '/^TCP/ {s++} / Route +1 / {r++} END {print s+0, r+0}'`
	if pause > 0 {
		cmd = fmt.Sprintf("sleep %g; %s", pause.Seconds(), cmd)
	}
	return []string{"sh", "-c", cmd}
}

// idleTableRE matches idleTableArgv's output for a complete, healthy table.
func idleTableRE(i *lp.Idle) string {
	return fmt.Sprintf(`^%d %d\n`, i.Services, i.Checks())
}

// IdlePlan runs lb1 alone with p's idle services: it gives the real
// servers their addresses, waits until every real server is in at weight
// 1, lets the daemon settle and samples it, counting lb1's checks on the
// bridge meanwhile.
func IdlePlan(name string, p Params) Plan {
	i := p.Idle
	steps := []Step{lp.Exec("", "nft", "-f", guestOut+"/"+idleCountFile)}
	steps = append(steps, idleAddrSteps(i)...)
	steps = append(steps,
		lp.Start(lp.LB1),
		// Generous: the checks starting up load the guest.
		lp.WaitVIP(lp.LB1, 30*time.Second).As(LabelElected),
		// Tolerant: under the guest's load a few checks time out now and
		// then (both daemons), so a complete table may never be seen at
		// the instant of a poll; the test judges the counts around the
		// sample instead.
		lp.WaitExec(lp.LB1, 60*time.Second, idleTableRE(i), idleTableArgv(2*time.Second)...).As(LabelIdleReady).Tolerant(),
		lp.Sleep(IdleSettle),
	)
	if i.Burners > 0 {
		// A settle with the burners first: the daemon meets them while its
		// checks run at the steady rate.
		steps = append(steps, lp.BurnStart(lp.LB1, i.Burners).As(LabelIdleBurn), lp.Sleep(IdleSettle))
	}
	steps = append(steps, lp.Exec(lp.LB1, idleTableArgv(0)...).As(LabelIdleUp))
	if p.Impl[lp.LB1] == lp.Director {
		steps = append(steps, lp.Exec(lp.LB1, "director", "state", "-json", "-socket", "/run/lb1/director.sock").As(LabelIdleState))
	}
	steps = append(steps,
		lp.Exec("", "nft", "list", "table", "bridge", "lab_idle").As(LabelIdleBefore),
		lp.SampleProc(lp.LB1, IdleSample).As(LabelIdleSample),
		lp.Exec("", "nft", "list", "table", "bridge", "lab_idle").As(LabelIdleAfter),
		lp.Exec(lp.LB1, idleTableArgv(0)...).As(LabelIdleTable),
	)
	if i.Burners > 0 {
		steps = append(steps, lp.BurnStop(lp.LB1).As(LabelIdleUnburn))
	}
	return Plan{
		Name:    name,
		Params:  p,
		Steps:   steps,
		Modules: append(lp.DefaultModules(), lp.IPVSModules()...),
		Files:   map[string]string{idleCountFile: idleCountRules()},
		Timeout: loadedTimeout(steps),
	}
}

// loadedTimeout is the plan timeout of a loaded guest: the steps' own
// durations and three minutes for the rest (listing 1,000 real servers
// takes seconds in a busy guest, tens of them beside burners).
func loadedTimeout(steps []Step) lp.Duration {
	total := 3 * time.Minute
	for _, s := range steps {
		total += s.Duration.D()
	}
	return lp.Duration(total)
}

// idleCounts parses idleTableArgv's output.
func idleCounts(out string) (services, up int, err error) {
	if _, err := fmt.Sscanf(out, "%d %d", &services, &up); err != nil {
		return 0, 0, fmt.Errorf("table counts %q: %w", out, err)
	}
	return services, up, nil
}

var nftPackets = regexp.MustCompile(`packets (\d+)`)

// nftCount reads the one counter of an "nft list table" output.
func nftCount(out string) (int64, error) {
	m := nftPackets.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no counter in %q", out)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// ParseProcSample decodes a sample_proc step's stdout.
func ParseProcSample(stdout string) (lp.ProcSample, error) {
	var s lp.ProcSample
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		return s, fmt.Errorf("sample: %w", err)
	}
	return s, nil
}

var healthUp = regexp.MustCompile(`"health":\s*"up"`)

// healthyInState counts real servers reported up by director state -json.
func healthyInState(stdout string) int { return len(healthUp.FindAllStringIndex(stdout, -1)) }

// idleAddrSteps give each real server the addresses of its idle services.
func idleAddrSteps(i *lp.Idle) []Step {
	rs := i.IdleRealServers()
	var steps []Step
	for _, h := range []string{lp.RS1, lp.RS2} {
		var cmds []string
		for _, a := range rs[h] {
			cmds = append(cmds, fmt.Sprintf("ip addr add %s/24 dev eth0", a))
		}
		steps = append(steps, lp.Exec(h, "sh", "-c", strings.Join(cmds, " && ")))
	}
	return steps
}
