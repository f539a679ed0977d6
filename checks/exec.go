package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ExecSpec configures an external-command check (keepalived's MISC_CHECK).
// Exit status 0 means up, anything else down; with Dynamic, 2-255 means up
// with weight status-2 (see the package comment).
//
// The command runs in its own process group with a fixed environment,
// PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin and
// LANG=C plus DIRECTOR_CHECK_ADDR/PORT (where to connect) and
// DIRECTOR_SERVER_ADDR/PORT (the real server): nothing of the daemon's own
// environment, which may hold cloud credentials, reaches it. On timeout the
// whole group is killed; so is anything the command leaves running in its
// group when it exits, so that a script run every second cannot pile up
// strays.
type ExecSpec struct {
	// Command is the program and its arguments, not a shell line.
	Command []string `json:"command"`
	// Dynamic is keepalived's misc_dynamic.
	Dynamic bool `json:"dynamic,omitempty"`
}

// execEnv is the whole environment of a check command besides its
// DIRECTOR_* variables.
func execEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
}

// execWaitDelay bounds how long a finished command's output pipes are
// drained when something it started still holds them open.
const execWaitDelay = 200 * time.Millisecond

type execProber struct {
	argv    []string
	dynamic bool
}

func newExecProber(s ExecSpec) (*execProber, error) {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return nil, errors.New("command is empty")
	}
	return &execProber{argv: s.Command, dynamic: s.Dynamic}, nil
}

func (p *execProber) Probe(ctx context.Context, t Target) Result {
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = append(execEnv(),
		"DIRECTOR_CHECK_ADDR="+t.Addr.Addr().String(),
		"DIRECTOR_CHECK_PORT="+strconv.Itoa(int(t.Addr.Port())),
		"DIRECTOR_SERVER_ADDR="+t.Server.Addr().String(),
		"DIRECTOR_SERVER_PORT="+strconv.Itoa(int(t.Server.Port())))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = execWaitDelay
	out := &headWriter{max: 256}
	cmd.Stdout, cmd.Stderr = out, out

	err := cmd.Start()
	if err != nil {
		return failure("start %s: %s", p.argv[0], describe(err))
	}
	err = cmd.Wait()
	_ = killGroup(cmd) // strays; the group is empty in the usual case
	if ctx.Err() != nil {
		r := failure("command killed")
		r.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return r
	}
	st := cmd.ProcessState
	if st == nil {
		return failure("wait for command: %v", err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return failure("command killed by signal %s%s", ws.Signal(), out.suffix())
	}
	return p.judge(st.ExitCode(), out)
}

func (p *execProber) judge(code int, out *headWriter) Result {
	switch {
	case code == 0:
		return success("exit 0")
	case p.dynamic && code >= 2 && code <= 255:
		r := success("exit %d: weight %d", code, code-2)
		r.Weight, r.HasWeight = code-2, true
		return r
	}
	return failure("exit status %d%s", code, out.suffix())
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// The group id is the leader's pid. While the group has members that pid
	// cannot be reused; once it is empty (the usual case after Wait), reuse
	// would need the pid space to wrap in the microseconds since the reap.
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// headWriter keeps the first max bytes written and discards the rest, so a
// chatty command cannot grow memory.
type headWriter struct {
	max int
	buf bytes.Buffer
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// suffix is the first line of output, for a reason.
func (w *headWriter) suffix() string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(w.buf.Bytes()), []byte("\n"))
	if len(line) == 0 {
		return ""
	}
	return fmt.Sprintf(": %q", line)
}
