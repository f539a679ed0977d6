package hooks

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testwait"
)

// gone reports whether pid has exited: no such process, or a zombie
// waiting for init to reap it.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// A hook that outlives its timeout is killed with the child it forked,
// even when it ignores SIGTERM, and the object's next hook still runs.
func TestRealTimeoutKillsProcessGroup(t *testing.T) {
	for _, trap := range []string{"", "trap '' TERM\n"} {
		t.Run("trap="+strconv.Quote(trap), func(t *testing.T) {
			// On a loaded machine the hook may be killed before it has
			// written the pids; then try again.
			for attempt := 1; ; attempt++ {
				if killedWithChild(t, trap) {
					return
				}
				if attempt == 5 {
					t.Fatal("the hook never got to fork its child within the timeout")
				}
			}
		})
	}
}

// Output is captured, capped, and the environment is only PATH.
func TestRealEnvAndOutput(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	p, err := ExecStarter([]string{"/bin/sh", "-c", "env; head -c 10000 /dev/zero | tr '\\0' x"}, []string{PathEnv})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	out := string(p.Output())
	if strings.Contains(out, "AWS_") || !strings.Contains(out, "PATH=") {
		t.Errorf("environment leaked or PATH missing: %.200q", out)
	}
	if len(out) > OutputLimit+100 || !strings.HasSuffix(out, "(truncated)") {
		t.Errorf("output %d bytes, want capped at %d and marked", len(out), OutputLimit)
	}
}

// killedWithChild runs a hook that forks `sleep 60` and sleeps 10 s under a
// 200 ms timeout; false means it was killed before it could say its pids.
func killedWithChild(t *testing.T, trap string) bool {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	next := filepath.Join(dir, "next")
	slow := filepath.Join(dir, "slow.sh")
	script := "#!/bin/sh\n" + trap + "sleep 60 &\necho $$ $! > " + pids + ".tmp\nmv " + pids + ".tmp " + pids + "\nsleep 10\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Timeout: 200 * time.Millisecond, Grace: 200 * time.Millisecond, Logger: quiet()})
	defer r.Close(context.Background())
	r.Enqueue(Job{Object: "instance/web", Kind: "notify_master", Argv: []string{slow}})
	r.Enqueue(Job{Object: "instance/web", Kind: "notify", Argv: []string{"/bin/touch", next}, Timeout: 5 * time.Second})
	testwait.Eventually(t, 20*time.Second, "the next hook ran", func() bool {
		_, err := os.Stat(next)
		return err == nil
	})
	b, err := os.ReadFile(pids)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("pids file %q", b)
	}
	for _, s := range f {
		pid, _ := strconv.Atoi(s)
		testwait.Eventually(t, 10*time.Second, "process "+s+" gone", func() bool { return gone(pid) })
	}
	// touch made the file before it exited: wait for the count.
	testwait.Eventually(t, 10*time.Second, "2 ran, 1 timed out", func() bool {
		st := r.Stats()
		return st.TimedOut == 1 && st.Ran == 2 && st.Failed == 0
	})
	return true
}
