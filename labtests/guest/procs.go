package main

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is a background process of the guest: a daemon, an HTTP server or
// the prober. Each runs in its own process group so that a KILL can reach
// all of a forking daemon's processes at once.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait reports whether the process exited within d.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) signal(sig syscall.Signal, group bool) error {
	pid := p.cmd.Process.Pid
	if group {
		pid = -pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %s %v: %w", p.name, sig, err)
	}
	return nil
}

// stop asks politely, then kills the whole group.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.signal(syscall.SIGTERM, false)
	if !p.wait(grace) {
		_ = p.signal(syscall.SIGKILL, true)
		p.wait(2 * time.Second)
	}
}

type procs struct {
	mu sync.Mutex
	m  map[string]*proc
}

func newProcs() *procs { return &procs{m: map[string]*proc{}} }

// start runs cmd under name; its output goes to log, or to the console
// when log is nil. A name can be reused once its process has exited.
func (ps *procs) start(name string, cmd *exec.Cmd, log *os.File) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if old, ok := ps.m[name]; ok && old.running() {
		return fmt.Errorf("%s is already running (pid %d)", name, old.cmd.Process.Pid)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := log
	if out == nil {
		out = os.Stderr
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		if log != nil {
			fmt.Fprintf(log, "==== %s exited at %s: %v\n", name, time.Now().Format(time.RFC3339Nano), cmd.ProcessState)
		}
		close(p.done)
	}()
	ps.m[name] = p
	return nil
}

func (ps *procs) get(name string) (*proc, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[name]
	return p, ok
}

// stopAll stops every process still running, in parallel.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := make([]*proc, 0, len(ps.m))
	for _, p := range ps.m {
		list = append(list, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
}
