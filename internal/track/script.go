package track

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/director-lb/director/internal/config"
)

// OutputCap is how much of a script's output is kept for display.
const OutputCap = 4096

// ScriptEnv is the whole environment a script gets: nothing of the
// daemon's (no cloud credentials or other secrets) leaks into it.
var scriptEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// Result is one run of a script.
type Result struct {
	OK     bool
	Detail string // "exit status 0", "timed out after 1s", "cannot start: ..."
	Output string
}

// Runner runs a script once, within its timeout.
type Runner interface {
	Run(ctx context.Context, s config.Script) Result
}

// ExecRunner runs scripts as processes: each in its own process group,
// killed whole (children too) when the timeout passes, with the fixed
// environment and the output capped.
type ExecRunner struct{}

// Run runs s once.
func (ExecRunner) Run(ctx context.Context, s config.Script) Result {
	if s.Timeout <= 0 {
		s.Timeout = config.Duration(config.DefaultScriptInterval) // unvalidated: never run unbounded
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout.D())
	defer cancel()
	argv := s.Command
	if s.Shell != "" {
		argv = []string{"/bin/sh", "-c", s.Shell}
	}
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		// exec would look it up in the daemon's PATH; scripts get the
		// fixed one, so look it up there.
		prog = lookPath(prog)
	}
	cmd := exec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Env = scriptEnv
	cmd.Dir = "/"
	out := &capped{max: OutputCap}
	cmd.Stdout, cmd.Stderr = out, out
	attr := &syscall.SysProcAttr{Setpgid: true}
	if s.User != "" {
		cred, err := credential(s.User)
		if err != nil {
			return Result{Detail: fmt.Sprintf("cannot start: %v", err)}
		}
		attr.Credential = cred
	}
	cmd.SysProcAttr = attr
	// Kill the whole group: a shell's children die with it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that escaped the group and holds the output open must
	// not hold the tracker up.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	r := Result{Output: out.String()}
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.Detail = fmt.Sprintf("timed out after %s", s.Timeout.D())
	case err == nil:
		r.OK, r.Detail = true, "exit status 0"
	case errors.As(err, &ee):
		r.Detail = ee.ProcessState.String() // "exit status 1", "signal: killed"
	default:
		r.Detail = fmt.Sprintf("cannot start: %v", err)
	}
	return r
}

// lookPath finds a bare program name in scripts' PATH.
func lookPath(name string) string {
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if p, err := exec.LookPath(d + "/" + name); err == nil {
			return p
		}
	}
	return name
}

// credential is user's uid and primary gid, with no supplementary groups.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	more bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(p), c.max-len(c.buf))
	c.buf = append(c.buf, p[:n]...)
	if n < len(p) {
		c.more = true
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.more {
		return string(c.buf) + "…"
	}
	return string(c.buf)
}
