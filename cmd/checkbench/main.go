// Command checkbench measures how many HTTP health checks one process
// sustains: it starts HTTP servers on several loopback addresses in a child
// process, runs -targets checks at -interval against them with a
// checks.Manager, and reports the check rate, latency, the checker's CPU
// and RSS, and the servers' CPU: µs of CPU per check and, in a second
// window after the first (so that counting does not bias the CPU figure),
// system calls per check, counted with perf (raw_syscalls) where it works,
// else strace -c -f (as in a User-Mode Linux guest, which has no perf
// events), with the commonest calls named when strace counts them.
//
//	go run ./cmd/checkbench -targets 10000 -interval 1s -duration 60s
//
// Traffic stays on 127.0.0.0/8.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/director-lb/director/checks"
)

func main() {
	var (
		targets  = flag.Int("targets", 1000, "number of checks")
		interval = flag.Duration("interval", time.Second, "check interval")
		duration = flag.Duration("duration", 30*time.Second, "measurement window")
		warmup   = flag.Duration("warmup", 0, "time before measuring (default: 2 intervals + 1s)")
		servers  = flag.Int("servers", 8, "loopback addresses to serve on (127.0.0.2 up)")
		ports    = flag.Int("ports", 2, "listening ports per address")
		serve    = flag.Bool("serve", false, "internal: be the HTTP servers")
		profile  = flag.String("cpuprofile", "", "write the checker's CPU profile of the window to this file")
		memprof  = flag.String("memprofile", "", "write the checker's heap profile at the end to this file")
		inflight = flag.Int("maxinflight", 0, "checks.Options.MaxInFlight (0: the default)")
		coalesce = flag.Duration("coalesce", 0, "checks.Options.Coalesce (0: the default, negative: off)")
		countWin = flag.Duration("count", 10*time.Second, "system-call counting window after the CPU window (0: none)")
		counter  = flag.String("counter", "auto", "how to count system calls: auto, perf or strace")
		slowPath = flag.Bool("ctxprobe", false, "run every check the old way, under a context deadline through the net package's dialer")
		loop     = flag.Bool("loop", true, "checks.Options.EventLoop, as the check worker runs: plain HTTP and TCP checks on one goroutine over epoll")
	)
	flag.Parse()
	if *serve {
		if err := runServers(*servers, *ports); err != nil {
			fmt.Fprintln(os.Stderr, "checkbench servers:", err)
			os.Exit(1)
		}
		return
	}
	if *warmup == 0 {
		*warmup = 2**interval + time.Second
	}
	o := runOpts{targets: *targets, interval: *interval, warmup: *warmup, duration: *duration, servers: *servers, ports: *ports,
		profile: *profile, memprof: *memprof, inflight: *inflight, coalesce: *coalesce, countWin: *countWin, counter: *counter,
		slow: *slowPath, loop: *loop && !*slowPath}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "checkbench:", err)
		os.Exit(1)
	}
}

// runServers serves HTTP on servers×ports loopback sockets, prints their
// addresses, and exits when stdin closes (the parent is gone).
func runServers(servers, ports int) error {
	if servers < 1 || servers > 250 {
		return fmt.Errorf("-servers %d: want 1-250", servers)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	for i := range servers {
		for range ports {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+2))
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			srv.SetKeepAlivesEnabled(false)
			go srv.Serve(ln)
			fmt.Println("ADDR", ln.Addr())
		}
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// counter wraps a prober to count attempts, failures and latency.
type counter struct {
	p  checks.Prober
	st *stats
}

type stats struct {
	n, failed atomic.Int64
	firstFail atomic.Value // the first failed attempt's reason
	// Latency histogram: bucket i holds latencies below 25µs·2^i.
	lat [20]atomic.Int64
}

func (c *counter) Probe(ctx context.Context, t checks.Target) checks.Result {
	start := time.Now()
	return c.count(t, c.p.Probe(ctx, t), start)
}

// counterUntil is counter for a checks.DeadlineProber, which the Manager
// runs the cheaper way: wrapping must not change the path measured.
type counterUntil struct {
	counter
	dp checks.DeadlineProber
}

func (c *counterUntil) ProbeUntil(ctx context.Context, t checks.Target, deadline time.Time) checks.Result {
	start := time.Now()
	return c.count(t, c.dp.ProbeUntil(ctx, t, deadline), start)
}

func (c *counter) count(t checks.Target, r checks.Result, start time.Time) checks.Result {
	c.st.count(t.Addr, r, time.Since(start))
	return r
}

// count adds an attempt against addr that took d.
func (st *stats) count(addr netip.AddrPort, r checks.Result, d time.Duration) {
	st.n.Add(1)
	if !r.OK {
		st.failed.Add(1)
		st.firstFail.CompareAndSwap(nil, addr.String()+": "+r.Reason)
	}
	i := 0
	for b := 25 * time.Microsecond; d >= b && i < len(st.lat)-1; b *= 2 {
		i++
	}
	st.lat[i].Add(1)
}

type snapshot struct {
	at       time.Time
	n, fail  int64
	lat      [20]int64
	cpu, sys time.Duration // this process: user+system, system
	childCPU time.Duration
}

func take(st *stats, child int) snapshot {
	s := snapshot{at: time.Now(), n: st.n.Load(), fail: st.failed.Load()}
	for i := range s.lat {
		s.lat[i] = st.lat[i].Load()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.sys = time.Duration(ru.Stime.Nano())
	}
	s.childCPU = procCPU(child)
	return s
}

// procCPU reads a process's user+system time from /proc (in 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// statusKB reads a field such as VmRSS from /proc/self/status.
func statusKB(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// timeWait counts TCP sockets in TIME_WAIT to or from the servers.
func timeWait(servers []netip.AddrPort) int {
	ours := map[string]bool{}
	for _, s := range servers {
		a := s.Addr().As4() // /proc/net/tcp writes the address little-endian
		ours[fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], s.Port())] = true
	}
	b, _ := os.ReadFile("/proc/net/tcp")
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "06" && (ours[f[1]] || ours[f[2]]) {
			n++
		}
	}
	return n
}

func quantile(lat [20]int64, q float64) time.Duration {
	var total int64
	for _, c := range lat {
		total += c
	}
	want := int64(q * float64(total))
	var seen int64
	for i, c := range lat {
		seen += c
		if seen > want {
			return 25 * time.Microsecond << i
		}
	}
	return 25 * time.Microsecond << (len(lat) - 1)
}

type runOpts struct {
	targets                              int
	interval, warmup, duration, countWin time.Duration
	servers, ports, inflight             int
	coalesce                             time.Duration
	profile, memprof, counter            string
	slow                                 bool // -ctxprobe
	loop                                 bool // -loop
}

func run(o runOpts) error {
	targets, interval, warmup, duration, servers, ports := o.targets, o.interval, o.warmup, o.duration, o.servers, o.ports
	profile, memprof, inflight, slow := o.profile, o.memprof, o.inflight, &o.slow
	child := exec.Command(os.Args[0], "-serve", "-servers", strconv.Itoa(servers), "-ports", strconv.Itoa(ports))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start servers: %w", err)
	}
	defer func() {
		stdin.Close()
		child.Process.Kill()
		child.Wait()
	}()
	var addrs []netip.AddrPort
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "READY" {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addrs = append(addrs, netip.MustParseAddrPort(a))
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("servers did not start")
	}

	st := &stats{}
	var firstFail atomic.Value
	m := checks.NewManager(checks.Options{
		Logger:      slog.New(slog.DiscardHandler),
		MaxInFlight: inflight,
		Coalesce:    o.coalesce,
		EventLoop:   o.loop,
		// The loop runs only the package's own probers, unwrapped: its
		// attempts are counted from their results.
		OnResult: func(id checks.ID, r checks.Result) {
			if o.loop {
				st.count(id.Server, r, r.Latency)
			}
		},
		NewProber: func(s checks.Spec) (checks.Prober, error) {
			p, err := checks.NewProber(s)
			if err != nil || o.loop {
				return p, err
			}
			if dp, ok := p.(checks.DeadlineProber); ok && !*slow {
				return &counterUntil{counter{p: p, st: st}, dp}, nil
			}
			return &counter{p: p, st: st}, nil
		},
		OnEvent: func(e checks.Event) {
			if e.Status.Health == checks.Down {
				firstFail.CompareAndSwap(nil, e.ID.String()+": "+e.Reason())
			}
		},
	})
	defer m.Close()
	for i := range targets {
		spec := checks.Spec{Type: checks.TypeHTTP, Interval: interval, Timeout: time.Second,
			HTTP: checks.HTTPSpec{Path: fmt.Sprintf("/health?n=%d", i)}}
		if _, err := m.Add(checks.Check{Server: addrs[i%len(addrs)], Spec: spec}); err != nil {
			return err
		}
	}
	fmt.Printf("checkbench: %d HTTP checks every %v against %d loopback servers; warm-up %v, measuring %v\n",
		targets, interval, len(addrs), warmup, duration)
	time.Sleep(warmup)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	a := take(st, child.Process.Pid)
	var peakRSS int64
	var maxTW int
	for end := time.Now().Add(duration); time.Now().Before(end); {
		time.Sleep(min(time.Second, time.Until(end)))
		peakRSS = max(peakRSS, statusKB("VmRSS"))
		maxTW = max(maxTW, timeWait(addrs))
	}
	b := take(st, child.Process.Pid)
	if profile != "" {
		pprof.StopCPUProfile()
	}

	wall := b.at.Sub(a.at).Seconds()
	var lat [20]int64
	for i := range lat {
		lat[i] = b.lat[i] - a.lat[i]
	}
	fmt.Printf("targets      %d\n", targets)
	fmt.Printf("checks/s     %.0f (expected %.0f)\n", float64(b.n-a.n)/wall, float64(targets)/interval.Seconds())
	fmt.Printf("failed       %d\n", b.fail-a.fail)
	fmt.Printf("latency      p50 < %v, p99 < %v\n", quantile(lat, 0.5), quantile(lat, 0.99))
	fmt.Printf("checker CPU  %.1f%% of one core (%.1f%% in the kernel), %.0f µs per check\n",
		100*(b.cpu-a.cpu).Seconds()/wall, 100*(b.sys-a.sys).Seconds()/wall,
		float64((b.cpu-a.cpu).Microseconds())/float64(max(b.n-a.n, 1)))
	fmt.Printf("checker RSS  %.1f MB (peak in window %.1f MB, high-water %.1f MB)\n",
		float64(statusKB("VmRSS"))/1024, float64(peakRSS)/1024, float64(statusKB("VmHWM"))/1024)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("Go memory    heap in use %.1f MB, stacks %.1f MB, from the OS %.1f MB, %d GCs\n",
		float64(ms.HeapInuse)/(1<<20), float64(ms.StackInuse)/(1<<20), float64(ms.Sys)/(1<<20), ms.NumGC)
	fmt.Printf("goroutines   %d\n", runtime.NumGoroutine())
	fmt.Printf("servers CPU  %.1f%% of one core\n", 100*(b.childCPU-a.childCPU).Seconds()/wall)
	fmt.Printf("TIME_WAIT    %d sockets at most (to or from the servers)\n", maxTW)
	if o.countWin > 0 {
		c := take(st, child.Process.Pid)
		sc, err := countSyscalls(o.counter, o.countWin)
		d := take(st, child.Process.Pid)
		if err != nil {
			fmt.Printf("syscalls     not counted: %v\n", err)
		} else {
			n := max(d.n-c.n, 1)
			fmt.Printf("syscalls     %.1f per check (%d in %v over %d checks, by %s)\n",
				float64(sc.total)/float64(n), sc.total, d.at.Sub(c.at).Round(time.Millisecond), d.n-c.n, sc.by)
			if len(sc.top) > 0 {
				var parts []string
				for _, e := range sc.top {
					parts = append(parts, fmt.Sprintf("%s %.1f", e.name, float64(e.calls)/float64(n)))
				}
				fmt.Printf("syscalls     per check: %s\n", strings.Join(parts, ", "))
			}
		}
	}
	if memprof != "" {
		f, err := os.Create(memprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	if f, ok := st.firstFail.Load().(string); ok {
		fmt.Printf("first failed attempt: %s\n", f)
	}
	if f, ok := firstFail.Load().(string); ok {
		fmt.Printf("first down   %s\n", f)
	}
	return nil
}
