package hooks

import (
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ExecStarter starts argv as a real process, without a shell, in a new
// process group (so a timeout kills its children too), with its output
// captured up to OutputLimit.
func ExecStarter(argv, env []string) (Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &execProcess{cmd: cmd}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	// A child left running in the background may hold the output pipe
	// open; Wait gives up on it this long after the command exits.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return p, nil
}

type execProcess struct {
	cmd *exec.Cmd
	out capped
}

func (p *execProcess) Wait() error { return p.cmd.Wait() }

func (p *execProcess) Signal(sig syscall.Signal) error {
	// The negative pid signals the whole group the command leads.
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *execProcess) Output() []byte { return p.out.bytes() }

// capped keeps the first OutputLimit bytes written and discards the rest,
// so a chatty hook cannot grow the daemon.
type capped struct {
	mu        sync.Mutex
	b         []byte
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := OutputLimit - len(c.b)
	if len(p) > room {
		c.b = append(c.b, p[:max(room, 0)]...)
		c.truncated = true
	} else {
		c.b = append(c.b, p...)
	}
	return len(p), nil
}

func (c *capped) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truncated {
		return append(append([]byte(nil), c.b...), "...(truncated)"...)
	}
	return append([]byte(nil), c.b...)
}
