package checkproc

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
)

// The test binary is its own worker: run with the argument below, it
// serves on descriptors 3 and 4 as `director check-worker` does.
const workerArg = "checkproc-test-worker"

func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == workerArg {
		from, to, err := childproc.Pipes()
		if err == nil {
			err = Serve(from, to, slog.LevelDebug)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rig is a Client with a real worker process, recording what it hears.
type rig struct {
	c      *Client
	mu     sync.Mutex
	events []checks.Event
	nres   int
	logs   *testlog.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{logs: &testlog.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("part", "checks")
	c, err := Start(Config{
		Argv:   []string{os.Args[0], workerArg},
		Logger: log,
		OnEvent: func(e checks.Event) {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		},
		OnResult: func(checks.ID, checks.Result) {
			r.mu.Lock()
			r.nres++
			r.mu.Unlock()
		},
		RestartDelay: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r.c = c
	return r
}

func (r *rig) health(id checks.ID) checks.Health {
	st, _ := r.c.Status(id)
	return st.Health
}

func (r *rig) sawEvent(id checks.ID, h checks.Health) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.ID == id && e.Status.Health == h {
			return true
		}
	}
	return false
}

func (r *rig) results() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nres
}

// tcpCheck checks a loopback listener every 100ms.
func tcpCheck(t *testing.T) (checks.Check, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return checks.Check{
		Server: netip.MustParseAddrPort(ln.Addr().String()),
		Spec: checks.Spec{Type: checks.TypeTCP, Interval: 100 * time.Millisecond,
			Timeout: 80 * time.Millisecond, Rise: 1, Fall: 1},
	}, ln
}

// The worker runs the checks; the daemon sees the new check at once (as
// unknown), then its events, results and log lines, and its statuses.
func TestClientRunsChecksInTheWorker(t *testing.T) {
	r := newRig(t)
	c, ln := tcpCheck(t)
	added, removed, err := r.c.Set([]checks.Check{c})
	if err != nil || added != 1 || removed != 0 {
		t.Fatalf("Set: added %d removed %d err %v, want 1 0 nil", added, removed, err)
	}
	if _, ok := r.c.Status(c.ID()); !ok {
		t.Fatal("no status for the new check right after Set")
	}
	testwait.Eventually(t, 10*time.Second, "the check up", func() bool {
		return r.sawEvent(c.ID(), checks.Up) && r.health(c.ID()) == checks.Up
	})
	ln.Close()
	testwait.Eventually(t, 10*time.Second, "the check down", func() bool {
		return r.sawEvent(c.ID(), checks.Down) && r.health(c.ID()) == checks.Down
	})
	// Results may trail the event by the worker's batching delay.
	testwait.Eventually(t, 10*time.Second, "a result per attempt", func() bool { return r.results() >= 2 })
	logs := r.logs.String()
	if !strings.Contains(logs, `msg="health check state change" part=checks check=`) {
		t.Errorf("the worker's transition was not logged through the daemon's logger:\n%s", logs)
	}
	added, removed, err = r.c.Set(nil)
	if err != nil || added != 0 || removed != 1 {
		t.Fatalf("Set(nil): added %d removed %d err %v, want 0 1 nil", added, removed, err)
	}
	if _, ok := r.c.Status(c.ID()); ok {
		t.Error("a removed check still has a status")
	}
}

// An invalid set changes nothing, in the worker as in process.
func TestClientInvalidSetKeepsTheOldOne(t *testing.T) {
	r := newRig(t)
	c, _ := tcpCheck(t)
	if _, _, err := r.c.Set([]checks.Check{c}); err != nil {
		t.Fatal(err)
	}
	bad := checks.Check{Server: netip.MustParseAddrPort("127.0.0.1:1"),
		Spec: checks.Spec{Type: "no-such-type", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}}
	if _, _, err := r.c.Set([]checks.Check{bad}); err == nil {
		t.Fatal("Set with an invalid check: no error")
	}
	testwait.Eventually(t, 10*time.Second, "the old check up", func() bool { return r.health(c.ID()) == checks.Up })
	if _, ok := r.c.Status(bad.ID()); ok {
		t.Error("the invalid check has a status")
	}
}

// A worker that dies is replaced and given the checks again; meanwhile
// the statuses stand, so no server's weight changes for the crash.
func TestClientRestartsADeadWorker(t *testing.T) {
	r := newRig(t)
	c, _ := tcpCheck(t)
	if _, _, err := r.c.Set([]checks.Check{c}); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "the check up", func() bool { return r.health(c.ID()) == checks.Up })
	r.c.mu.Lock()
	first := r.c.cur
	r.c.mu.Unlock()
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "a second worker", func() bool { return r.c.Starts() == 2 })
	if h := r.health(c.ID()); h != checks.Up {
		t.Errorf("health %v while the worker restarts, want up (kept)", h)
	}
	testwait.Eventually(t, 10*time.Second, "the new worker's status", func() bool {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		m := r.c.statuses[c.ID()]
		return m.gen == 2 && m.st.Health == checks.Up
	})
	if !strings.Contains(r.logs.String(), "check worker ended; starting another") {
		t.Errorf("no log line about the dead worker:\n%s", r.logs)
	}
}

// The daemon's environment (cloud credentials) never reaches the worker.
func TestWorkerGetsNoSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
	r := newRig(t)
	r.c.mu.Lock()
	pid := r.c.cur.cmd.Process.Pid
	r.c.mu.Unlock()
	// Start returns once the exec has begun: the kernel releases the
	// parent when it swaps the child's memory, before it writes the new
	// environment, and /proc reads empty until then. Wait for it.
	var env []byte
	testwait.Eventually(t, 10*time.Second, "the worker's environment", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		env = b
		return len(b) > 0
	})
	if bytes.Contains(env, []byte("do-not-leak")) || bytes.Contains(env, []byte("AWS_")) {
		t.Errorf("the worker's environment has the daemon's secret: %q", env)
	}
	if !bytes.Contains(env, []byte("PATH=")) {
		t.Errorf("the worker's environment has no PATH: %q", env)
	}
	if !bytes.Contains(env, []byte(WorkerGODEBUG+"\x00")) {
		t.Errorf("the worker's environment has no %s: %q", WorkerGODEBUG, env)
	}
}

// Close ends the worker process.
func TestCloseEndsTheWorker(t *testing.T) {
	r := newRig(t)
	r.c.mu.Lock()
	w := r.c.cur
	r.c.mu.Unlock()
	r.c.Close()
	if w.cmd.ProcessState == nil || !w.cmd.ProcessState.Exited() {
		t.Fatalf("worker state %v after Close, want exited", w.cmd.ProcessState)
	}
	if _, _, err := r.c.Set(nil); err == nil {
		t.Error("Set after Close: no error")
	}
}

// Set never waits for the worker: the daemon's start and its reloads go on
// while a worker process is still starting (seconds, in a busy VM).
func TestSetDoesNotWaitForTheWorker(t *testing.T) {
	// A "worker" that reads the daemon's messages and never answers.
	c, err := Start(Config{Argv: []string{"/bin/sh", "-c", "cat <&3 >/dev/null"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, _ := tcpCheck(t)
	added, _, err := c.Set([]checks.Check{ch})
	if err != nil || added != 1 {
		t.Fatalf("Set: added %d, err %v; want 1, nil", added, err)
	}
	st, ok := c.Status(ch.ID())
	if !ok || st.Health != checks.Unknown {
		t.Errorf("status %+v (present %v) before the worker answered, want unknown", st, ok)
	}
}
