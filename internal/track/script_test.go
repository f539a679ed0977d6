package track

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testwait"
)

func shellScript(line string, timeout time.Duration) config.Script {
	return config.Script{Name: "s", Shell: line, Interval: config.Duration(timeout), Timeout: config.Duration(timeout)}
}

// A script that outlives its timeout is killed with its whole process
// group: the child it forked is gone too.
func TestExecRunnerTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	// The child writes its pid and sleeps; the script sleeps too.
	line := "sleep 30 & echo $! > " + pidFile + "; sleep 30"
	start := time.Now()
	r := ExecRunner{}.Run(context.Background(), shellScript(line, 300*time.Millisecond))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("run took %s, want about the 300ms timeout", took)
	}
	if r.OK || r.Detail != "timed out after 300ms" {
		t.Fatalf("result %+v, want a timeout failure", r)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The child was in the script's group, so it was killed; it may be
	// a zombie for a moment until init reaps it.
	testwait.Eventually(t, 5*time.Second, "the forked child is gone", func() bool {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}

func TestExecRunnerResults(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "leak")
	for _, tc := range []struct {
		s      config.Script
		ok     bool
		detail string
		output string
	}{
		{shellScript("exit 0", 5*time.Second), true, "exit status 0", ""},
		{shellScript("echo bad >&2; exit 3", 5*time.Second), false, "exit status 3", "bad\n"},
		// Nothing of the daemon's environment: only PATH.
		{shellScript("env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_='", 5*time.Second), true, "exit status 0", "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{config.Script{Name: "c", Command: []string{"true"}, Timeout: config.Duration(5 * time.Second)}, true, "exit status 0", ""},
		{config.Script{Name: "c", Command: []string{"/nonexistent/prog"}, Timeout: config.Duration(5 * time.Second)}, false, "", ""},
	} {
		r := ExecRunner{}.Run(context.Background(), tc.s)
		if r.OK != tc.ok || (tc.detail != "" && r.Detail != tc.detail) || r.Output != tc.output {
			t.Errorf("%+v: %+v, want ok %v detail %q output %q", tc.s, r, tc.ok, tc.detail, tc.output)
		}
	}
}

func TestExecRunnerOutputCapped(t *testing.T) {
	r := ExecRunner{}.Run(context.Background(), shellScript("head -c 100000 /dev/zero | tr '\\0' x", 5*time.Second))
	if !r.OK {
		t.Fatalf("result %+v", r)
	}
	if want := strings.Repeat("x", OutputCap) + "…"; r.Output != want {
		t.Errorf("output of %d bytes, want %d and an ellipsis", len(r.Output), OutputCap)
	}
}

// Close kills a script that is running and waits for it.
func TestCloseKillsRunningScript(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	m := New(Options{})
	m.Set(&config.Config{Scripts: []config.Script{{Name: "slow", Shell: "echo $$ > " + started + "; sleep 30",
		Interval: config.Duration(time.Minute), Timeout: config.Duration(time.Minute), Rise: 1, Fall: 1}}})
	var pid int
	testwait.Eventually(t, 5*time.Second, "the script started", func() bool {
		b, err := os.ReadFile(started)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	start := time.Now()
	m.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s", took)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z ") {
			t.Errorf("script %d still running after Close", pid)
		}
	}
	if _, ok := m.State(Key{KindScript, "slow"}); ok {
		t.Error("a closed manager still reports the script")
	}
}
