package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
}

func (r *runner) startDaemon(node string) error {
	n, ok := r.plan.Node(node)
	if !ok {
		return fmt.Errorf("no node %q in plan", node)
	}
	argv, err := labplan.DaemonArgv(n, r.plan.Paths)
	if err != nil {
		return err
	}
	// keepalived's pid files go here; /run is the guest's tmpfs.
	if err := os.MkdirAll(filepath.Join("/run", node), 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(r.plan.Paths.Out, node+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	fmt.Fprintf(logf, "==== %s started at %s: %s\n", node, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", node}, argv...)...)
	cmd.Env = []string{guestPath, "HOME=/root"}
	return r.procs.start(node, cmd, logf)
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
		return p.signal(syscall.SIGKILL, true)
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
	ctx, cancel := context.WithTimeout(ctx, s.Duration.D())
	defer cancel()
	if err := r.vips.wait(ctx, s.Node, want); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			verb := "hold"
			if !want {
				verb = "release"
			}
			return fmt.Errorf("%s did not %s %s within %v", s.Node, verb, labplan.VIP4Addr, s.Duration)
		}
		return err
	}
	return nil
}

func stepSleep(ctx context.Context, _ *runner, s labplan.Step, _ *labplan.StepResult) error {
	select {
	case <-time.After(s.Duration.D()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func stepProbeStart(_ context.Context, r *runner, _ labplan.Step, _ *labplan.StepResult) error {
	if r.probe != nil {
		return errors.New("prober already running")
	}
	p, err := startProber(labplan.Client, net.JoinHostPort(labplan.VIP4Addr, "80"), 10*time.Millisecond, 100*time.Millisecond)
	if err != nil {
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
	r.res.Probes = append(r.res.Probes, run)
	sr.Probe = len(r.res.Probes) - 1
	r.log.Info(fmt.Sprintf("probe #%d: %s", sr.Probe, run.Stats()))
	return nil
}

func setPort(ctx context.Context, node, state string) error {
	_, err := run(ctx, "ip", "link", "set", labplan.BridgePort(node), state)
	return err
}

func stepPartition(ctx context.Context, _ *runner, _ labplan.Step, _ *labplan.StepResult) error {
	_, err := runIn(ctx, "", []byte(partitionRules()), "nft", "-f", "-")
	return err
}

func stepHealPartition(ctx context.Context, _ *runner, _ labplan.Step, _ *labplan.StepResult) error {
	_, err := run(ctx, "nft", "delete", "table", "bridge", "lab_partition")
	return err
}

func stepExec(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	d := s.Duration.D()
	if d == 0 {
		d = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	argv := s.Argv
	if s.Node != "" {
		argv = append([]string{"ip", "netns", "exec", s.Node}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{guestPath, "HOME=/root"}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	sr.Exec = &labplan.ExecOutput{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		sr.Exec.ExitCode = cmd.ProcessState.ExitCode()
	}
	// Shown on the console too: exec steps are how the demo and the
	// tests show state (addresses, ipvsadm -Ln, director status).
	for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		if line != "" {
			r.log.Info(s.Node + "$ " + line)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(s.Argv, " "), err)
	}
	return nil
}

func stepSay(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	r.log.Info("== " + s.Text)
	return nil
}
