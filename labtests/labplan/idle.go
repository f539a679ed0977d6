package labplan

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Idle is the idle-footprint configuration (Params.Idle): Services IPVS
// services on VIPs 10.0.1.1 upwards, port 80, direct routing, each over
// the same PerService real servers (IdleRealServers) with an HTTP check
// every Interval. It replaces the lab's usual two services.
type Idle struct {
	Services   int      `json:"services"`
	PerService int      `json:"per_service"`
	Interval   Duration `json:"interval"`
	Timeout    Duration `json:"timeout"`
	// SharedPath checks GET / everywhere. director runs one check per
	// distinct (server, definition), so then it runs only PerService
	// checks; otherwise each service checks its own path (/s001, ...;
	// the lab's HTTP servers answer any path) and every one of the
	// Services x PerService checks runs, as in keepalived.
	SharedPath bool `json:"shared_path,omitempty"`
	// Burners is how many CPU burners (BurnStart) run in lb1's namespace
	// from the end of settling until the sample's last table.
	Burners int `json:"burners,omitempty"`
	// Sync runs IPVS connection sync (ipvs.sync, keepalived's
	// lvs_sync_daemon) on eth0 beside the idle services.
	Sync bool `json:"sync,omitempty"`
}

// burnerPIDs is where BurnStart notes its processes.
const burnerPIDs = "/run/lab-burners.pids"

// BurnStart starts n CPU burners in node's namespace: shells spinning in
// a loop without system calls, at normal priority, so that they compete
// with the daemons for the guest's one CPU as any busy neighbour would.
// BurnStop ends them.
//
// First it raises the lab's guest process, every thread of it, to nice
// RealServerNice. That process serves the real servers' HTTP: in a real
// deployment the real servers are other machines, which a busy load
// balancer does not slow down. Starved beside the burners, they answered
// checks after their timeout, so every row marked real servers down that
// were not failing on a machine of their own. Threads the guest starts
// later inherit the value. (The exec's shell runs in place of
// "ip netns exec", so its parent is the guest.)
func BurnStart(node string, n int) Step {
	s := Exec(node, "sh", "-c", fmt.Sprintf(
		`for t in /proc/$PPID/task/*; do renice -n %d -p ${t##*/} >/dev/null || exit 1; done; `+
			`for i in $(seq %d); do sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $! >> %s; done; cat %s`,
		RealServerNice, n, burnerPIDs, burnerPIDs))
	// One renice per thread of the guest process: in a guest that a
	// starting pair keeps busy, that took more than the default 10 s.
	s.Duration = Duration(time.Minute)
	return s
}

// RealServerNice is the guest process's nice value while burners run.
const RealServerNice = -10

// BurnStop ends BurnStart's burners.
func BurnStop(node string) Step {
	return Exec(node, "sh", "-c", fmt.Sprintf(`kill $(cat %s) && rm %s`, burnerPIDs, burnerPIDs))
}

// path is the check path of service n (from 0).
func (i *Idle) path(n int) string {
	if i.SharedPath {
		return "/"
	}
	return fmt.Sprintf("/s%03d", n+1)
}

// DistinctChecks is how many checks director runs: it shares identical
// ones. keepalived runs Checks() whatever the paths.
func (i *Idle) DistinctChecks() int {
	if i.SharedPath {
		return i.PerService
	}
	return i.Checks()
}

// IdleVIPBase is the first idle service's VIP; the others follow it.
var IdleVIPBase = netip.MustParseAddr("10.0.1.1")

// idleRSBase is the first real-server address of the idle configuration.
var idleRSBase = netip.MustParseAddr("10.0.0.51")

// Validate keeps the addresses inside their ranges.
func (i *Idle) Validate() error {
	var errs []error
	if i.Services < 1 || i.Services > 250 {
		errs = append(errs, fmt.Errorf("idle: %d services, want 1..250", i.Services))
	}
	if i.PerService < 1 || i.PerService > 40 {
		errs = append(errs, fmt.Errorf("idle: %d real servers, want 1..40", i.PerService))
	}
	if i.Interval <= 0 || i.Timeout <= 0 || i.Timeout > i.Interval {
		errs = append(errs, errors.New("idle: want 0 < timeout <= interval"))
	}
	return errors.Join(errs...)
}

// IdleVIPs are the services' VIPs.
func (i *Idle) IdleVIPs() []netip.Addr { return seq(IdleVIPBase, i.Services) }

// IdleRealServers maps each real-server host (rs1, rs2) to the extra
// addresses it carries on eth0, alternating so that the checks are spread
// over both hosts.
func (i *Idle) IdleRealServers() map[string][]netip.Addr {
	m := map[string][]netip.Addr{}
	for j, a := range seq(idleRSBase, i.PerService) {
		h := RS1
		if j%2 == 1 {
			h = RS2
		}
		m[h] = append(m[h], a)
	}
	return m
}

func (i *Idle) realServers() []netip.Addr { return seq(idleRSBase, i.PerService) }

// Checks are the per-real-server checks: keepalived's HTTP_GET has no
// rise and, with retry 0, fails on the first failed attempt, so director
// gets rise 1 and fall 1.
func (i *Idle) checks() *Checks {
	return &Checks{Interval: i.Interval, Timeout: i.Timeout, Rise: 1, Fall: 1}
}

// Checks is the total number of checked real servers.
func (i *Idle) Checks() int { return i.Services * i.PerService }

// CheckRate is the checks per second impl should run.
func (i *Idle) CheckRate(impl Impl) float64 {
	n := i.Checks()
	if impl == Director {
		n = i.DistinctChecks()
	}
	return float64(n) / i.Interval.D().Seconds()
}

func seq(a netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// directorIdle renders the ipvs: and services: sections for Idle.
func directorIdle(b *strings.Builder, i *Idle, node string) {
	fmt.Fprintf(b, "ipvs:\n  state_file: %s\n", StateFile(node))
	if i.Sync {
		fmt.Fprintf(b, "  sync: {interface: eth0, sync_id: %d}\n", SyncID)
	}
	fmt.Fprintf(b, "decisions: {file: %s}\nservices:\n", DecisionsFile(node))
	for n, vip := range i.IdleVIPs() {
		fmt.Fprintf(b, "  - name: idle%03d\n    vip: %s\n    port: %d\n    protocol: tcp\n", n+1, vip, HTTPPort)
		b.WriteString("    scheduler: rr\n    forwarding: dr\n")
		i.checks().director(b, "http", fmt.Sprintf("        http: {path: %s, status: [\"200\"]}\n", i.path(n)))
		b.WriteString("    real_servers:\n")
		for _, rs := range i.realServers() {
			fmt.Fprintf(b, "      - {address: %s}\n", rs)
		}
	}
}

// keepalivedIdle renders one virtual_server per idle service. alpha makes
// every real server start down, so that a real server at weight 1 in the
// kernel proves that its check succeeded (director only sets weights from
// check results, so state -json says the same for it).
func keepalivedIdle(b *strings.Builder, i *Idle) {
	c := i.checks()
	secs := func(d Duration) string { return strconv.FormatFloat(d.D().Seconds(), 'f', -1, 64) }
	for n, vip := range i.IdleVIPs() {
		fmt.Fprintf(b, "\nvirtual_server %s %d {\n", vip, HTTPPort)
		fmt.Fprintf(b, "    delay_loop %s\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    alpha\n",
			secs(i.Interval))
		for _, rs := range i.realServers() {
			fmt.Fprintf(b, "    real_server %s %d {\n        weight 1\n", rs, HTTPPort)
			fmt.Fprintf(b, "        HTTP_GET {\n            url {\n                path %s\n                status_code 200\n            }\n", i.path(n))
			fmt.Fprintf(b, "            connect_timeout %s\n            retry 0\n        }\n", secs(c.Timeout))
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	}
}

// ProcSample is what a sample_proc step measured about a daemon's
// processes (its process group), written as JSON into the step's stdout.
type ProcSample struct {
	// Wall is the time between the first and last CPU reading.
	Wall Duration `json:"wall"`
	// Ticks is the group's utime+stime delta in clock ticks (USER_HZ).
	Ticks int64 `json:"ticks"`
	// CPUPercent is Ticks over Wall, in percent of one core.
	CPUPercent float64 `json:"cpu_percent"`
	// RSSKiB is the group's summed VmRSS, averaged over the readings;
	// RSSMaxKiB is the largest reading.
	RSSKiB    int64 `json:"rss_kib"`
	RSSMaxKiB int64 `json:"rss_max_kib"`
	// PSSKiB is the group's summed proportional set size at the end: a
	// page shared by n processes counts 1/n in each, so the text of a
	// binary that all of them run counts once, where RSS counts it in
	// every process.
	PSSKiB int64 `json:"pss_kib"`
	// Procs lists the group's processes at the end.
	Procs []ProcInfo `json:"procs"`
	// GuestBusyPercent is the whole guest's non-idle CPU over Wall: near
	// 100 means the one UML CPU was saturated and the figure is suspect.
	GuestBusyPercent float64 `json:"guest_busy_percent"`
}

// ProcInfo is one process of a sample.
type ProcInfo struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	RSSKiB int64  `json:"rss_kib"`
	PSSKiB int64  `json:"pss_kib"`
	Ticks  int64  `json:"ticks"`
	// SampleTicks is the process's share of the sample's Ticks: its
	// utime+stime delta over the sample (all of Ticks for a process that
	// started meanwhile).
	SampleTicks int64 `json:"sample_ticks"`
}

// SampleProc samples node's daemon (all processes of its group) for d:
// RSS every second, CPU as the utime+stime delta over d.
func SampleProc(node string, d time.Duration) Step {
	return Step{Kind: KindSampleProc, Node: node, Duration: Duration(d)}
}
