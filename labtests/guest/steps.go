package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/director-lb/director/labtests/labplan"
)

// handler runs one step. It may fill sr (Exec, Probe); the runner sets the
// times and the outcome.
type handler func(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error

// handlers maps each step kind to its implementation; adding a kind means
// adding a constant in labplan and an entry here.
var handlers = map[labplan.StepKind]handler{
	labplan.KindStart:    stepStart,
	labplan.KindRestart:  stepRestart,
	labplan.KindSignal:   stepSignal,
	labplan.KindWaitExit: stepWaitExit,
	labplan.KindWaitVIP: func(ctx context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
		return r.waitVIP(ctx, s, true)
	},
	labplan.KindWaitNoVIP: func(ctx context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
		return r.waitVIP(ctx, s, false)
	},
	labplan.KindWaitSole:   stepWaitSole,
	labplan.KindSleep:      stepSleep,
	labplan.KindProbeStart: stepProbeStart,
	labplan.KindProbeStop:  stepProbeStop,
	labplan.KindCut: func(ctx context.Context, _ *runner, s labplan.Step, _ *labplan.StepResult) error {
		return setPort(ctx, s.Node, "down")
	},
	labplan.KindHeal: func(ctx context.Context, _ *runner, s labplan.Step, _ *labplan.StepResult) error {
		return setPort(ctx, s.Node, "up")
	},
	labplan.KindPartition:     stepPartition,
	labplan.KindHealPartition: stepHealPartition,
	labplan.KindExec:          stepExec,
	labplan.KindSay:           stepSay,
	labplan.KindUseConfig:     stepUseConfig,
	labplan.KindWaitExec:      stepWaitExec,
	labplan.KindStatus:        stepStatus,
	labplan.KindConnsOpen:     stepConnsOpen,
	labplan.KindConnsCheck:    stepConnsCheck,
	labplan.KindConnsClose:    stepConnsClose,
	labplan.KindServe:         stepServe,
	labplan.KindDNSQuery:      stepDNSQuery,
	labplan.KindSampleProc:    stepSampleProc,
	labplan.KindFlood:         stepFlood,
	labplan.KindServer:        stepServer,
	labplan.KindWaitIPVS:      stepWaitIPVS,
	labplan.KindLoad:          stepLoad,
	labplan.KindHoldPlant:     stepHoldPlant,
}

func (r *runner) startDaemon(node string) error {
	n, ok := r.plan.Node(node)
	if !ok {
		return fmt.Errorf("no node %q in plan", node)
	}
	live, err := r.writeLiveConfig(n)
	if err != nil {
		return err
	}
	n.Config = live
	argv, err := labplan.DaemonArgv(n, r.plan.Paths)
	if err != nil {
		return err
	}
	// keepalived's pid files go here; /run is the guest's tmpfs.
	if err := os.MkdirAll(filepath.Join("/run", node), 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	cmd, logf, err := r.daemonCmd(node, node+".log", argv)
	if err != nil {
		return err
	}
	if r.plan.Params.EC2 {
		// The AWS SDK's default chain reads credentials from the
		// environment; the fake accepts these.
		cmd.Env = append(cmd.Env, labplan.EC2Env()...)
	}
	return r.procs.start(node, cmd, logf)
}

// daemonCmd prepares argv to run in node's namespace with the guest's
// environment, its output appended to the run directory's log after a
// line that says what started.
func (r *runner) daemonCmd(node, log string, argv []string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(filepath.Join(r.plan.Paths.Out, log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	fmt.Fprintf(logf, "==== %s started at %s: %s\n", node, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", node}, argv...)...)
	cmd.Env = []string{guestPath, "HOME=/root"}
	return cmd, logf, nil
}

func stepStart(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	return r.startDaemon(s.Node)
}

func stepRestart(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	if p, ok := r.procs.get(s.Node); ok && p.running() {
		p.stop(5 * time.Second)
	}
	return r.startDaemon(s.Node)
}

func (r *runner) daemon(node string) (*proc, error) {
	p, ok := r.procs.get(node)
	if !ok {
		return nil, fmt.Errorf("%s was never started", node)
	}
	return p, nil
}

// killWait bounds how long a KILL step waits for the process to be reaped.
const killWait = 10 * time.Second

func stepSignal(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	p, err := r.daemon(s.Node)
	if err != nil {
		return err
	}
	if !p.running() {
		return fmt.Errorf("%s is not running", s.Node)
	}
	switch s.Signal {
	case "TERM":
		return p.signal(syscall.SIGTERM, false)
	case "KILL":
		// The whole group: keepalived's children would otherwise shut
		// down cleanly when their parent dies.
		if err := p.signal(syscall.SIGKILL, true); err != nil {
			return err
		}
		// Until the process is reaped it counts as running, and a start
		// right after this step would be refused. A killed process goes
		// at once; the bound only keeps a stuck guest from hanging here.
		if !p.wait(killWait) {
			return fmt.Errorf("%s still running %v after SIGKILL", s.Node, killWait)
		}
		return nil
	case "HUP":
		// Reload: the daemon re-reads its live configuration file.
		return p.signal(syscall.SIGHUP, false)
	}
	return fmt.Errorf("unsupported signal %q", s.Signal)
}

func stepWaitExit(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	p, err := r.daemon(s.Node)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(s.Duration.D()):
		return fmt.Errorf("%s still running after %v", s.Node, s.Duration)
	case <-ctx.Done():
		return ctx.Err()
	}
	st := p.cmd.ProcessState
	sr.Exec = &labplan.ExecOutput{ExitCode: st.ExitCode(), Stderr: st.String()}
	if !st.Success() {
		return fmt.Errorf("%s exited: %v", s.Node, st)
	}
	return nil
}

func (r *runner) waitVIP(ctx context.Context, s labplan.Step, want bool) error {
	verb := "hold"
	if !want {
		verb = "release"
	}
	return within(ctx, s, fmt.Sprintf("did not %s %s", verb, labplan.VIP4Addr), func(ctx context.Context) error {
		return r.vips.wait(ctx, s.Node, want)
	})
}

func stepWaitSole(ctx context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	return within(ctx, s, fmt.Sprintf("was not the only holder of %s for %v", labplan.VIP4Addr, s.Interval), func(ctx context.Context) error {
		return r.vips.waitSole(ctx, s.Node, s.Interval.D())
	})
}

// within runs wait under the step's Duration; running out of it is the
// error "NODE failed within DURATION".
func within(ctx context.Context, s labplan.Step, failed string, wait func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.Duration.D())
	defer cancel()
	err := wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s within %v", s.Node, failed, s.Duration)
	}
	return err
}

func stepSleep(ctx context.Context, _ *runner, s labplan.Step, _ *labplan.StepResult) error {
	select {
	case <-time.After(s.Duration.D()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func stepProbeStart(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	if r.probe != nil {
		return errors.New("prober already running")
	}
	target, port := s.Target, "80"
	if s.Mode == labplan.ProbeDNS {
		port = strconv.Itoa(labplan.DNSPort)
	}
	if target == "" {
		target = net.JoinHostPort(labplan.VIP4Addr, port)
	}
	probe := httpProbe(target)
	if s.Mode == labplan.ProbeDNS {
		probe = dnsProbe(target)
	}
	if s.Fine {
		f, err := startFine(labplan.Client, labplan.FineInterval, labplan.FineTimeout)
		if err != nil {
			return err
		}
		r.fine = f
	}
	p, err := startProber(labplan.Client, probe, labplan.ProbeInterval, labplan.ProbeTimeout)
	if err != nil {
		if r.fine != nil {
			r.fine.stop()
			r.fine = nil
		}
		return err
	}
	r.probe = p
	return nil
}

func stepProbeStop(_ context.Context, r *runner, _ labplan.Step, sr *labplan.StepResult) error {
	if r.probe == nil {
		return errors.New("no prober running")
	}
	run := r.probe.stop()
	r.probe = nil
	if r.fine != nil {
		fine := r.fine.stop()
		r.fine = nil
		run.Fine = &fine
	}
	r.res.Probes = append(r.res.Probes, run)
	sr.Probe = len(r.res.Probes) - 1
	r.log.Info(fmt.Sprintf("probe #%d: %s", sr.Probe, run.Stats()))
	if run.Fine != nil {
		r.log.Info(fmt.Sprintf("fine probe #%d: %s", sr.Probe, run.Fine.Stats()))
	}
	return nil
}

// setPort takes node's bridge port down or up over netlink, in process,
// so that the step's start and end bracket the cut to a syscall.
func setPort(_ context.Context, node, state string) error {
	l, err := netlink.LinkByName(labplan.BridgePort(node))
	if err != nil {
		return fmt.Errorf("%s: %w", labplan.BridgePort(node), err)
	}
	if state == "down" {
		err = netlink.LinkSetDown(l)
	} else {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("set %s %s: %w", labplan.BridgePort(node), state, err)
	}
	return nil
}

func stepPartition(ctx context.Context, _ *runner, _ labplan.Step, _ *labplan.StepResult) error {
	_, err := runIn(ctx, "", []byte(partitionRules()), "nft", "-f", "-")
	return err
}

func stepHealPartition(ctx context.Context, _ *runner, _ labplan.Step, _ *labplan.StepResult) error {
	_, err := run(ctx, "nft", "delete", "table", "bridge", "lab_partition")
	return err
}

// argv is a plan's command line as the guest runs it: the director
// binary is not on the guest's PATH, and plans name it "director".
func (r *runner) argv(argv []string) []string {
	if len(argv) > 0 && argv[0] == "director" && r.plan.Paths.DirectorBin != "" {
		return append([]string{r.plan.Paths.DirectorBin}, argv[1:]...)
	}
	return argv
}

func stepExec(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	d := s.Duration.D()
	if d == 0 {
		d = 10 * time.Second
	}
	out, err := execIn(ctx, s.Node, r.argv(s.Argv), d)
	sr.Exec = out
	// Shown on the console too: exec steps are how the demo and the
	// tests show state (addresses, ipvsadm -Ln, director status).
	r.show(s.Node, out.Stdout)
	return err
}

// execIn runs argv in namespace node ("" = guest root) for up to d and
// captures its output.
func execIn(ctx context.Context, node string, argv []string, d time.Duration) (*labplan.ExecOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	full := argv
	if node != "" {
		full = append([]string{"ip", "netns", "exec", node}, argv...)
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = []string{guestPath, "HOME=/root"}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := &labplan.ExecOutput{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		out.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return out, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}

// show prints a command's output on the console, one line per record.
func (r *runner) show(node, stdout string) {
	for _, line := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		if line != "" {
			r.log.Info(node + "$ " + line)
		}
	}
}

func stepUseConfig(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	n, ok := r.plan.Node(s.Node)
	if !ok {
		return fmt.Errorf("no node %q in plan", s.Node)
	}
	c, ok := n.Variants[s.Variant]
	if !ok {
		return fmt.Errorf("%s has no configuration variant %q", s.Node, s.Variant)
	}
	r.configs[s.Node] = c
	// A running daemon reads the new file at its next reload.
	_, err := r.writeLiveConfig(n)
	return err
}

// stepWaitExec polls a command until its output matches (or, Absent,
// stops matching). The step's duration is then how long that took, which
// is how the tests time a repair or a drain. The output is shown only on
// failure: plans show state with exec and status steps.
func stepWaitExec(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	re, err := regexp.Compile(s.Match)
	if err != nil {
		return fmt.Errorf("match: %w", err)
	}
	deadline := time.Now().Add(s.Duration.D())
	for {
		out, err := execIn(ctx, s.Node, r.argv(s.Argv), 5*time.Second)
		sr.Exec = out
		if err == nil && re.MatchString(out.Stdout) != s.Absent {
			return nil
		}
		if time.Now().After(deadline) {
			r.show(s.Node, out.Stdout)
			want := "match"
			if s.Absent {
				want = "stop matching"
			}
			return errors.Join(fmt.Errorf("output of %q did not %s %q within %v", strings.Join(s.Argv, " "), want, s.Match, s.Duration), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stepWaitIPVS polls Node's ipvsadm -Ln until its normalised table is the
// step's Text. The step's output is the table as ipvsadm last listed it.
func stepWaitIPVS(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	deadline := time.Now().Add(s.Duration.D())
	for {
		out, err := execIn(ctx, s.Node, []string{"ipvsadm", "-Ln"}, 5*time.Second)
		sr.Exec = out
		got := labplan.NormalizeIPVS(out.Stdout)
		if err == nil && got == s.Text {
			return nil
		}
		if time.Now().After(deadline) {
			r.show(s.Node, out.Stdout)
			return errors.Join(fmt.Errorf("%s's table did not become, within %v:\n%sit is:\n%s", s.Node, s.Duration, s.Text, got), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stepStatus shows node's IPVS table the way an operator would: with
// "director status" where the node runs a director that has it, else
// with ipvsadm, which takes the same arguments.
func stepStatus(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	args := s.Argv
	if len(args) == 0 {
		args = []string{"-Ln"}
	}
	argv := append([]string{"ipvsadm"}, args...)
	if n, ok := r.plan.Node(s.Node); ok && n.Impl == labplan.Director && r.plan.Paths.DirectorStatus {
		argv = append([]string{r.plan.Paths.DirectorBin, "status"}, args...)
	}
	r.log.Info(s.Node + "$ " + strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " "))
	out, err := execIn(ctx, s.Node, argv, 10*time.Second)
	sr.Exec = out
	r.show(s.Node, out.Stdout)
	return err
}

func stepConnsOpen(_ context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	if r.conns != nil {
		return errors.New("connections already open")
	}
	addr := net.JoinHostPort(labplan.VIP4Addr, strconv.Itoa(labplan.EchoPort))
	raw, err := dialIn(labplan.Client, addr, s.Count)
	if err != nil {
		return err
	}
	cs, err := openConns(raw, s.Interval.D())
	if err != nil {
		return err
	}
	r.conns = cs
	sr.Exec = &labplan.ExecOutput{Stdout: cs.servers()}
	r.log.Info(fmt.Sprintf("opened %d connections to %s: %s", s.Count, addr, cs.servers()))
	return nil
}

func stepConnsCheck(_ context.Context, r *runner, _ labplan.Step, _ *labplan.StepResult) error {
	if r.conns == nil {
		return errors.New("no connections open")
	}
	return r.conns.check()
}

func stepConnsClose(_ context.Context, r *runner, _ labplan.Step, sr *labplan.StepResult) error {
	if r.conns == nil {
		return errors.New("no connections open")
	}
	set := r.conns.close()
	r.conns = nil
	r.res.Conns = append(r.res.Conns, set)
	sr.Conns = len(r.res.Conns) - 1
	r.log.Info(fmt.Sprintf("connections #%d: %s", sr.Conns, set.Stats()))
	return nil
}

func stepSay(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	r.log.Info("== " + s.Text)
	return nil
}
