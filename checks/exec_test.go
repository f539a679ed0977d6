package checks

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func execSpec(dynamic bool, argv ...string) Spec {
	return Spec{Type: TypeExec, Exec: ExecSpec{Command: argv, Dynamic: dynamic}}
}

var server = netip.MustParseAddrPort("127.0.0.1:8080")

func TestExecExitStatus(t *testing.T) {
	noLeaks(t)
	code := script(t, `echo "db unreachable" >&2; exit "$1"`)
	tests := []struct {
		dynamic bool
		exit    int
		ok      bool
		weight  int // -1: none
		reason  string
	}{
		{false, 0, true, -1, "exit 0"},
		{false, 1, false, -1, `exit status 1: "db unreachable"`},
		{false, 7, false, -1, "exit status 7"},
		{true, 0, true, -1, "exit 0"},
		{true, 1, false, -1, "exit status 1"},
		{true, 2, true, 0, "exit 2: weight 0"},
		{true, 7, true, 5, "exit 7: weight 5"},
		{true, 255, true, 253, "exit 255: weight 253"},
	}
	for _, tc := range tests {
		r := probe(t, mustProber(t, execSpec(tc.dynamic, code, strconv.Itoa(tc.exit))), server, 5*time.Second)
		weight := -1
		if r.HasWeight {
			weight = r.Weight
		}
		if r.OK != tc.ok || weight != tc.weight || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("dynamic=%v exit %d: got ok=%v weight=%d %q, want ok=%v weight=%d %q",
				tc.dynamic, tc.exit, r.OK, weight, r.Reason, tc.ok, tc.weight, tc.reason)
		}
	}
}

func TestExecEnvironment(t *testing.T) {
	s := execSpec(false, script(t, `test "$DIRECTOR_CHECK_ADDR:$DIRECTOR_CHECK_PORT $DIRECTOR_SERVER_ADDR:$DIRECTOR_SERVER_PORT" = "10.9.9.9:9000 127.0.0.1:8080" || { echo "env: $DIRECTOR_CHECK_ADDR:$DIRECTOR_CHECK_PORT"; exit 1; }`))
	s.ConnectIP, s.ConnectPort = netip.MustParseAddr("10.9.9.9"), 9000
	c := Check{Server: server, Spec: s}
	target, err := c.target(s)
	if err != nil {
		t.Fatal(err)
	}
	p := mustProber(t, s)
	r := ProbeOnce(t.Context(), p, target, 5*time.Second)
	wantUp(t, r)
}

// A check gets a fixed environment: nothing of the daemon's, such as cloud
// credentials, reaches it.
func TestExecEnvironmentIsFixed(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-for-checks")
	t.Setenv("DIRECTOR_TEST_LEAK", "x")
	t.Setenv("PATH", "/leaked/path:"+os.Getenv("PATH"))
	s := execSpec(false, script(t, `
[ -z "${AWS_SECRET_ACCESS_KEY+set}" ] || { echo "AWS_SECRET_ACCESS_KEY leaked"; exit 1; }
[ -z "${DIRECTOR_TEST_LEAK+set}" ] || { echo "DIRECTOR_TEST_LEAK leaked"; exit 1; }
[ "$PATH" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ] || { echo "PATH=$PATH"; exit 1; }
[ "$LANG" = C ] || { echo "LANG=$LANG"; exit 1; }
[ "$DIRECTOR_SERVER_ADDR" = 127.0.0.1 ] || { echo "DIRECTOR_SERVER_ADDR=$DIRECTOR_SERVER_ADDR"; exit 1; }`))
	wantUp(t, probe(t, mustProber(t, s), server, 5*time.Second))
}

func TestExecStartFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	wantDown(t, probe(t, mustProber(t, execSpec(false, missing)), server, 5*time.Second), "start "+missing+": ")
}

// alive reports whether pid runs (a zombie waiting for a reaper is dead).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that ends the command name.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

func waitDead(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) still running", what, pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	s := script(t, fmt.Sprintf(`sleep 60 & echo $! > %s/child; echo $$ > %s/self; sleep 60`, dir, dir))
	start := time.Now()
	r := probe(t, mustProber(t, execSpec(false, s)), server, 300*time.Millisecond)
	took := time.Since(start)
	wantDown(t, r, "timeout after 300ms (command killed)")
	if !r.TimedOut {
		t.Error("TimedOut not set")
	}
	if took > 1500*time.Millisecond {
		t.Errorf("took %v with a 300ms timeout", took)
	}
	waitDead(t, "script", readPid(t, dir+"/self"))
	waitDead(t, "its background child", readPid(t, dir+"/child"))
}

func TestExecStrayAfterExit(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	// The background sleep keeps stdout open; the result must not wait for
	// it, and it must not outlive the check.
	s := script(t, fmt.Sprintf(`sleep 60 & echo $! > %s/child; exit 0`, dir))
	start := time.Now()
	wantUp(t, probe(t, mustProber(t, execSpec(false, s)), server, 5*time.Second))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	waitDead(t, "stray child", readPid(t, dir+"/child"))
}

func TestExecChattyOutput(t *testing.T) {
	s := script(t, `yes "too much output" | head -c 20000000; exit 3`)
	r := probe(t, mustProber(t, execSpec(false, s)), server, 10*time.Second)
	wantDown(t, r, `exit status 3: "too much output"`)
	if len(r.Reason) > maxReason+3 {
		t.Errorf("reason of %d bytes", len(r.Reason))
	}
}
