package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// PathEnv is the whole environment a hook gets: a fixed PATH and nothing
// of the daemon's own (no AWS_* credentials, no NOTIFY_SOCKET).
const PathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Defaults for Options left zero.
const (
	DefaultTimeout = 30 * time.Second
	DefaultQueue   = 64
	DefaultGrace   = 2 * time.Second
	// OutputLimit caps the output kept (and logged) per command.
	OutputLimit = 4096
	// warnEvery spaces the warnings about dropped commands per object.
	warnEvery = 10 * time.Second
)

// Job is one command to run for one object.
type Job struct {
	// Object names the queue: jobs with the same Object run in order.
	Object string
	// Kind says what the command is for, in logs (notify_master, ...).
	Kind string
	Argv []string
	// Timeout bounds the command; zero means the runner's default.
	Timeout time.Duration
}

// Process is one started command.
type Process interface {
	// Wait returns when the command has exited, with its exit error.
	Wait() error
	// Signal sends sig to the command's whole process group.
	Signal(sig syscall.Signal) error
	// Output is what the command wrote, up to OutputLimit bytes; valid
	// after Wait.
	Output() []byte
}

// Starter starts argv with env; ExecStarter in production.
type Starter func(argv, env []string) (Process, error)

// Clock is the runner's source of time, faked in tests.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the runner uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type sysClock struct{}

func (sysClock) Now() time.Time                 { return time.Now() }
func (sysClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }

// Options configures a Runner; zero fields take the defaults.
type Options struct {
	Timeout time.Duration // per command, unless the Job says
	Queue   int           // waiting commands per object
	Grace   time.Duration // from SIGTERM to SIGKILL
	Start   Starter       // ExecStarter by default
	Clock   Clock
	Logger  *slog.Logger
}

// Stats counts what the runner did, for metrics and tests.
type Stats struct {
	Ran, Failed, TimedOut, Dropped uint64
}

// Runner runs jobs: in order per object, in parallel across objects.
type Runner struct {
	opt Options
	log *slog.Logger

	ctx    context.Context // cancelled by Close: running jobs are killed
	cancel context.CancelFunc

	mu      sync.Mutex
	queues  map[string]*queue
	limit   int
	timeout time.Duration
	closed  bool
	stats   Stats
	workers sync.WaitGroup
	idle    chan struct{} // closed and replaced when the last queue empties
}

type queue struct {
	pending  []Job
	dropped  uint64 // since the last warning
	lastWarn time.Time
}

// New returns a runner; Close stops it.
func New(o Options) *Runner {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Start == nil {
		o.Start = ExecStarter
	}
	if o.Clock == nil {
		o.Clock = sysClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{opt: o, log: o.Logger, ctx: ctx, cancel: cancel, queues: map[string]*queue{}, limit: o.Queue, timeout: o.Timeout, idle: make(chan struct{})}
}

// SetLimits changes the default timeout and the per-object queue bound (a
// reload); zero keeps the default. Queues already longer shrink as their
// jobs run or are dropped.
func (r *Runner) SetLimits(timeout time.Duration, queue int) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	r.mu.Lock()
	r.timeout, r.limit = timeout, queue
	r.mu.Unlock()
}

// Enqueue adds j to its object's queue and returns at once: it never
// blocks on a running command. When the queue is full the oldest waiting
// job is dropped (a superseded state hook is stale), never j. After Close
// it does nothing.
func (r *Runner) Enqueue(j Job) {
	if len(j.Argv) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	q, running := r.queues[j.Object]
	if !running {
		q = &queue{}
		r.queues[j.Object] = q
	}
	for len(q.pending) >= r.limit {
		old := q.pending[0]
		q.pending = q.pending[1:]
		q.dropped++
		r.stats.Dropped++
		if now := r.opt.Clock.Now(); q.lastWarn.IsZero() || now.Sub(q.lastWarn) >= warnEvery {
			r.log.Warn("hook queue full: dropped the oldest waiting command", "object", j.Object, "dropped_kind", old.Kind, "dropped", q.dropped, "queue", r.limit)
			q.lastWarn, q.dropped = now, 0
		}
	}
	q.pending = append(q.pending, j)
	if !running {
		r.workers.Add(1)
		go r.work(j.Object, q)
	}
}

// work runs object's jobs until its queue is empty, then forgets it.
func (r *Runner) work(object string, q *queue) {
	defer r.workers.Done()
	for {
		r.mu.Lock()
		if len(q.pending) == 0 {
			delete(r.queues, object)
			if len(r.queues) == 0 {
				close(r.idle)
				r.idle = make(chan struct{})
			}
			r.mu.Unlock()
			return
		}
		j := q.pending[0]
		q.pending = q.pending[1:]
		r.mu.Unlock()
		r.run(j)
	}
}

// errTimeout marks a command killed for running too long.
var errTimeout = errors.New("timed out")

// run runs one job to its end; past the timeout (or on Close) it kills
// the process group: SIGTERM, then SIGKILL after the grace.
func (r *Runner) run(j Job) {
	timeout := j.Timeout
	if timeout <= 0 {
		r.mu.Lock()
		timeout = r.timeout
		r.mu.Unlock()
	}
	log := r.log.With("object", j.Object, "hook", j.Kind, "cmd", j.Argv[0])
	start := r.opt.Clock.Now()
	p, err := r.opt.Start(j.Argv, []string{PathEnv})
	if err != nil {
		r.count(func(s *Stats) { s.Failed++ })
		log.Warn("hook did not start", "err", err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	t := r.opt.Clock.NewTimer(timeout)
	select {
	case err = <-done:
		t.Stop()
	case <-t.C():
		err = r.kill(p, done)
		err = fmt.Errorf("%w after %s (process group killed): %v", errTimeout, timeout, err)
	case <-r.ctx.Done():
		t.Stop()
		err = r.kill(p, done)
		err = fmt.Errorf("stopped with the daemon (process group killed): %v", err)
	}
	out := string(p.Output())
	took := r.opt.Clock.Now().Sub(start)
	switch {
	case errors.Is(err, errTimeout):
		r.count(func(s *Stats) { s.Ran++; s.TimedOut++ })
		log.Warn("hook timed out", "err", err, "output", out)
	case err != nil:
		r.count(func(s *Stats) { s.Ran++; s.Failed++ })
		log.Warn("hook failed", "err", err, "took", took, "output", out)
	default:
		r.count(func(s *Stats) { s.Ran++ })
		log.Debug("hook ran", "took", took, "output", out)
	}
}

// kill ends p's process group and waits for p.
func (r *Runner) kill(p Process, done <-chan error) error {
	p.Signal(syscall.SIGTERM)
	g := r.opt.Clock.NewTimer(r.opt.Grace)
	defer g.Stop()
	select {
	case err := <-done:
		return err
	case <-g.C():
	}
	p.Signal(syscall.SIGKILL)
	return <-done
}

func (r *Runner) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// Stats returns the counters so far.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close lets queued jobs run until ctx ends (a stopping daemon's
// notify_stop hooks), then kills what still runs, drops what waits and
// returns once every worker has finished. Enqueue does nothing after.
func (r *Runner) Close(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	idle := r.idle
	empty := len(r.queues) == 0
	r.mu.Unlock()
	if !empty {
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	for _, q := range r.queues {
		r.stats.Dropped += uint64(len(q.pending))
		q.pending = nil
	}
	r.mu.Unlock()
	r.cancel()
	r.workers.Wait()
}
