package hooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
)

// fakeClock fires timers only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { t.stopped = true; return true }

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// armed counts live timers, so a test can wait for a job to be running.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		if !t.stopped {
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// fakeProc exits when the test says, or when signalled (unless it
// ignores SIGTERM).
type fakeProc struct {
	argv       []string
	exit       chan error
	ignoreTerm bool
	mu         sync.Mutex
	signals    []syscall.Signal
}

func (p *fakeProc) Wait() error { return <-p.exit }
func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	if sig == syscall.SIGKILL || !p.ignoreTerm {
		select {
		case p.exit <- errors.New("signal: " + sig.String()):
		default:
		}
	}
	return nil
}
func (p *fakeProc) Output() []byte { return []byte("out of " + p.argv[0]) }

func (p *fakeProc) sigs() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.signals)
}

// fakeStarter records every start in order.
type fakeStarter struct {
	mu         sync.Mutex
	started    []*fakeProc
	ignoreTerm bool
	env        []string
}

func (s *fakeStarter) start(argv, env []string) (Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &fakeProc{argv: argv, exit: make(chan error, 1), ignoreTerm: s.ignoreTerm}
	s.started = append(s.started, p)
	s.env = env
	return p, nil
}

func (s *fakeStarter) procs() []*fakeProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.started)
}

func (s *fakeStarter) names() []string {
	var out []string
	for _, p := range s.procs() {
		out = append(out, p.argv[0])
	}
	return out
}

// closeNow stops r, killing whatever still runs.
func closeNow(r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Close(ctx)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestRunner(s *fakeStarter, c *fakeClock, queue int, log *slog.Logger) *Runner {
	return New(Options{Timeout: 5 * time.Second, Grace: time.Second, Queue: queue, Start: s.start, Clock: c, Logger: log})
}

// Jobs for one object run one at a time, in order; another object's job
// runs meanwhile.
func TestRunnerOrderPerObjectParallelAcross(t *testing.T) {
	s, c := &fakeStarter{}, newFakeClock()
	r := newTestRunner(s, c, 8, quiet())
	defer closeNow(r)
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/a1"}})
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/a2"}})
	r.Enqueue(Job{Object: "b", Kind: "k", Argv: []string{"/b1"}})
	testwait.Eventually(t, 5*time.Second, "a1 and b1 running", func() bool { return len(s.procs()) == 2 })
	if got := s.names(); !slices.Contains(got, "/a1") || !slices.Contains(got, "/b1") {
		t.Fatalf("started %v, want /a1 and /b1 (a2 must wait for a1)", got)
	}
	for _, p := range s.procs() {
		if p.argv[0] == "/a1" {
			p.exit <- nil
		}
	}
	testwait.Eventually(t, 5*time.Second, "a2 started", func() bool { return len(s.procs()) == 3 })
	if got := s.names()[2]; got != "/a2" {
		t.Errorf("third start %s, want /a2", got)
	}
	if !slices.Equal(s.env, []string{PathEnv}) {
		t.Errorf("env %v, want only PATH", s.env)
	}
}

// Enqueue never waits for a running command.
func TestEnqueueDoesNotBlock(t *testing.T) {
	s, c := &fakeStarter{}, newFakeClock()
	r := newTestRunner(s, c, 2, quiet())
	defer closeNow(r)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/x"}})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Enqueue blocked behind a running command")
	}
}

// A full queue drops its oldest waiting job, never the newest, and says
// so once per interval.
func TestQueueFullDropsOldest(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s, c := &fakeStarter{}, newFakeClock()
	r := newTestRunner(s, c, 2, log)
	defer closeNow(r)
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/1"}})
	testwait.Eventually(t, 5*time.Second, "/1 running", func() bool { return len(s.procs()) == 1 })
	for _, n := range []string{"/2", "/3", "/4", "/5"} {
		r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{n}})
	}
	if got := r.Stats().Dropped; got != 2 {
		t.Errorf("dropped %d, want 2 (/2 and /3)", got)
	}
	warns := strings.Count(logs.String(), "hook queue full")
	if warns != 1 {
		t.Errorf("%d warnings for two drops in one interval, want 1", warns)
	}
	for want := 2; want <= 3; want++ {
		ps := s.procs()
		ps[len(ps)-1].exit <- nil
		testwait.Eventually(t, 5*time.Second, "next job", func() bool { return len(s.procs()) == want })
	}
	if got := s.names(); !slices.Equal(got, []string{"/1", "/4", "/5"}) {
		t.Errorf("ran %v, want [/1 /4 /5]", got)
	}
}

// Past the timeout the group gets SIGTERM, and SIGKILL after the grace if
// it is still there; the next job for the object then runs.
func TestTimeoutTermThenKill(t *testing.T) {
	s, c := &fakeStarter{ignoreTerm: true}, newFakeClock()
	r := newTestRunner(s, c, 8, quiet())
	defer closeNow(r)
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/slow"}})
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/next"}, Timeout: time.Minute})
	testwait.Eventually(t, 5*time.Second, "timeout armed", func() bool { return c.armed() == 1 })
	c.advance(4 * time.Second)
	if sigs := s.procs()[0].sigs(); len(sigs) != 0 {
		t.Fatalf("signalled %v before the timeout", sigs)
	}
	c.advance(time.Second)
	testwait.Eventually(t, 5*time.Second, "SIGTERM", func() bool { return len(s.procs()[0].sigs()) == 1 })
	testwait.Eventually(t, 5*time.Second, "grace armed", func() bool { return c.armed() == 1 })
	c.advance(time.Second)
	testwait.Eventually(t, 5*time.Second, "next job started", func() bool { return len(s.procs()) == 2 })
	s.procs()[1].exit <- nil // it ignores SIGTERM too; Close would wait for the grace
	if got := s.procs()[0].sigs(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Errorf("signals %v, want TERM then KILL", got)
	}
	if st := r.Stats(); st.TimedOut != 1 {
		t.Errorf("stats %+v, want one timeout", st)
	}
}

// Close lets waiting jobs finish until its context ends, then kills.
func TestCloseDrainsThenKills(t *testing.T) {
	s, c := &fakeStarter{}, newFakeClock()
	r := newTestRunner(s, c, 8, quiet())
	r.Enqueue(Job{Object: "a", Kind: "notify_stop", Argv: []string{"/stop"}})
	testwait.Eventually(t, 5*time.Second, "running", func() bool { return len(s.procs()) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	go func() { r.Close(ctx); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a hook ran and its context was live")
	default:
	}
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not kill the running hook")
	}
	if sigs := s.procs()[0].sigs(); len(sigs) == 0 || sigs[0] != syscall.SIGTERM {
		t.Errorf("signals %v, want SIGTERM", sigs)
	}
	r.Enqueue(Job{Object: "a", Kind: "k", Argv: []string{"/late"}})
	if len(s.procs()) != 1 {
		t.Error("a job enqueued after Close ran")
	}
}
