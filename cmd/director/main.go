// Command director runs and controls a director load balancer node.
//
// Usage:
//
//	director <command> [flags]
//
// The commands are those the usage text below lists (run, validate,
// status, state, reload, failback, failover, drain, disable, enable,
// weight, drain-node, undrain-node, import-keepalived, pair-cert, version); "director" alone prints it, and
// "director <command> -h" a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/director-lb/director/internal/checkproc"
	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/daemon"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/kaimport"
	"github.com/director-lb/director/ipvs/ipvsadm"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const defaultConfig = "/etc/director/director.yaml"

const usage = `director runs a pair of Linux load balancers: VRRP election, VIP failover,
kernel IPVS and health checks, as a replacement for keepalived.

Usage:

	director <command> [flags]

The commands are:

	run        run the daemon
	validate   check a configuration file and exit
	status     print the kernel's IPVS table exactly as ipvsadm -Ln does
	state      show the running daemon's VRRP instances and services
	reload     make the running daemon re-read its configuration
	failback   make this node master now (one-time preemption)
	failover   hand mastership to the peer
	drain      stop new connections to a real server (weight 0)
	disable    remove a real server from its services
	enable     undo drain, disable and weight
	weight     set a real server's weight at run time
	drain-node    routed mode: withdraw this node's routes and wait for its traffic to leave
	undrain-node  routed mode: announce this node's routes again
	import-keepalived  convert a keepalived.conf to director.yaml
	pair-cert  make the pair API's CA and node certificates (mutual TLS)
	version    print the version and exit

Use "director <command> -h" for more about a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "state":
		return cmdState(rest, stdout, stderr)
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "import-keepalived":
		return kaimport.Main(rest, stdout, stderr)
	case "pair-cert":
		return cmdPairCert(rest, stdout, stderr)
	case "status":
		// Reads the kernel directly, so it works while the daemon is down.
		return ipvsadm.Main(rest, stdout, stderr)
	case "failback", "failover":
		return cmdHandover(cmd, rest, stdout, stderr)
	case "drain", "enable", "disable", "weight":
		return cmdRealServer(cmd, rest, stdout, stderr)
	case "drain-node", "undrain-node":
		return cmdNode(cmd, rest, stdout, stderr)
	case "check-worker":
		// Internal: the daemon's health-check process (internal/checkproc),
		// talking to the daemon on descriptors 3 and 4.
		return cmdCheckWorker(rest, stderr)
	case "vrrp":
		// Internal: the daemon's VRRP process (internal/vrrpproc), on
		// descriptors 3 and 4.
		return cmdVRRP(rest, stderr)
	case "version":
		fmt.Fprintln(stdout, "director", buildVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "director: unknown command %q\nRun 'director help' for usage.\n", cmd)
	return 2
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: director %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// loadFlagged parses a command's -c flag and loads that configuration; on
// failure it returns nil and the exit code (2 usage, 1 bad configuration).
func loadFlagged(name, synopsis string, args []string, stderr io.Writer) (*config.Config, int) {
	fs := newFlags(name, synopsis, stderr)
	path := fs.String("c", defaultConfig, "configuration `file`")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return cfg, 0
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadFlagged("validate", "validate [-c file]\n\nValidate checks a configuration and lists every problem as file:line: field: message,\nand warns of settings that load but are likely wrong.", args, stderr)
	if cfg == nil {
		return code
	}
	if err := daemon.CheckAPIFiles(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.File, err)
		return 1
	}
	if err := daemon.CheckRoutingSecrets(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.File, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok, %d instance(s), %d service(s)\n", cfg.File, len(cfg.Instances), len(cfg.Services))
	reportDecisions(stdout, cfg.DecisionsFile(), cfg.LegacyDecisionsFile())
	// With a daemon running, say what a reload of this file would change.
	if running := runningConfig(cfg.ControlSocket); running != nil {
		fmt.Fprintln(stdout, "compared with the running daemon:")
		var lines []string
		for _, c := range config.Diff(running, cfg) {
			lines = append(lines, c.String())
		}
		printChanges(stdout, lines)
	}
	return 0
}

// reportDecisions lists the bad entries of the decisions file (or of the
// legacy one the daemon would move from) as warnings. They do not fail
// validate: the daemon skips them and starts, and validate runs before
// every start (the unit's ExecStartPre).
func reportDecisions(w io.Writer, path, legacy string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && legacy != "" {
		if _, err := os.Stat(legacy); err == nil {
			path = legacy
		}
	}
	rep, err := decisions.Inspect(path)
	if err != nil {
		fmt.Fprintf(w, "warning: runtime decisions: %v\n", err)
		return
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "warning: runtime decisions: %s: %v (the daemon skips it and keeps a copy of the file)\n", path, p)
	}
}

func cmdRun(args []string, stderr io.Writer) int {
	cfg, code := loadFlagged("run", "run [-c file]\n\nRun starts the daemon in the foreground. SIGTERM or SIGINT stops it gracefully:\na master hands its VIPs to the peer before it exits. A second signal exits at once.", args, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.LogLevel, level)
	log.Info("starting", "version", buildVersion(), "config", cfg.File)

	// Catch signals before anything can be interrupted half-way.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	edges := daemon.DefaultEdges()
	// The checks run in a child process, so that their work never delays
	// VRRP in this one (docs/design/check-worker.md). /proc/self/exe is
	// this very binary even after a package upgrade replaced the file.
	edges.CheckWorker = []string{"/proc/self/exe", "check-worker"}
	// The instances run in a process of their own, which does nothing
	// else, as keepalived's VRRP child (docs/design/vrrp-under-load.md).
	edges.VRRPWorker = []string{"/proc/self/exe", "vrrp"}
	d, err := daemon.New(cfg, edges, buildVersion(), level, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		stopping := false
		for s := range sigs {
			switch {
			case s == syscall.SIGHUP:
				// Reloads are serialised inside the daemon; it logs the outcome.
				go d.ReloadFile(context.Background(), false)
			case stopping:
				log.Warn("second signal: exiting without handover", "signal", s.String())
				os.Exit(1)
			default:
				log.Info("stopping", "signal", s.String())
				stopping = true
				stop()
			}
		}
	}()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// checkWorkerComm is the check worker's process name (at most 15 bytes).
const checkWorkerComm = "director-check"

// cmdCheckWorker runs the health checks for the daemon that started it,
// until the daemon closes its pipe.
func cmdCheckWorker(args []string, stderr io.Writer) int {
	from, to, rc := childMain("check-worker", checkWorkerComm, args, stderr)
	if from == nil {
		return rc
	}
	// At least two Ps, even on one CPU. With one, the runtime's monitor
	// takes the P from any thread that stays in a system call past its
	// 20 µs tick (every call does, in a VM that traps them) and wakes
	// another thread to run the P; the first then sleeps on its return.
	// Beside CPU burners in the lab that cut the worker's checks per
	// second by more than half (docs/design/check-worker.md).
	// Only then: setting it stops the runtime following the CPU limit.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	// Every record goes to the daemon, which filters by its own level.
	if err := checkproc.Serve(from, to, slog.LevelDebug); err != nil {
		fmt.Fprintln(stderr, "director check-worker:", err)
		return 1
	}
	return 0
}

// childMain starts a helper process that the daemon runs (director
// check-worker, director vrrp): it takes no arguments, names itself comm,
// and returns its pipes to the daemon; or nil and an exit code.
func childMain(cmd, comm string, args []string, stderr io.Writer) (from, to *os.File, rc int) {
	if len(args) != 0 {
		fmt.Fprintf(stderr, "director %s: takes no arguments; the daemon runs it\n", cmd)
		return nil, nil, 2
	}
	// Started as /proc/self/exe, the process would be called "exe" in
	// ps, top and /proc/PID/comm; name it for the operator. Best effort.
	_ = os.WriteFile("/proc/self/comm", []byte(comm), 0)
	from, to, err := childproc.Pipes()
	if err != nil {
		fmt.Fprintf(stderr, "director %s: %v\n", cmd, err)
		return nil, nil, 1
	}
	return from, to, 0
}

// vrrpComm is the VRRP process's name (at most 15 bytes).
const vrrpComm = "director-vrrp"

// cmdVRRP runs the VRRP instances for the daemon that started it, until the
// daemon closes its pipe; then its masters hand over and it exits.
func cmdVRRP(args []string, stderr io.Writer) int {
	from, to, rc := childMain("vrrp", vrrpComm, args, stderr)
	if from == nil {
		return rc
	}
	// Its work is a few packets per advert interval: one P keeps the Go
	// scheduler from waking a second thread to share it, and under
	// rt_priority two realtime threads of one process would take turns
	// on a busy CPU (docs/design/vrrp-under-load.md).
	runtime.GOMAXPROCS(1)
	// Stopping is the daemon's to decide, through the pipe: a Ctrl-C in a
	// terminal reaches the whole process group, and this process must
	// hand over, not die.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	level := new(slog.LevelVar)
	// Its lines share the daemon's standard error: say whose they are.
	log := newLogger(stderr, "info", level).With("process", "vrrp")
	edges := daemon.DefaultEdges()
	if err := daemon.ServeVRRP(from, to, edges, buildVersion(), level, log); err != nil {
		log.Error("vrrp process stopped with error", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string, lv *slog.LevelVar) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	lv.Set(l)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}
