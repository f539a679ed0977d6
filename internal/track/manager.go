package track

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
)

// PollInterval is how often files and processes are looked at.
const PollInterval = time.Second

// Options are a Manager's edges; zero fields get the real ones.
type Options struct {
	Clock    checks.Clock
	Runner   Runner
	ReadFile func(path string) ([]byte, error)
	Procs    func() ([]Proc, error)
	// WatchFile reports changes to a track file as they happen (WatchFile,
	// inotify, by default); the poll goes on beside it.
	WatchFile func(ctx context.Context, path string, changed func()) error
	// OnChange is called, from a tracker's goroutine, after an object's
	// Up, Known or Value changed. It must not block long.
	OnChange func()
	Logger   *slog.Logger
}

// Manager runs one tracker per configured script, track file and track
// process.
type Manager struct {
	o        Options
	mu       sync.Mutex
	trackers map[Key]*tracker
	closed   bool
	// probes counts probes running, so that Close can wait for them (and
	// for the scripts it killed).
	probes sync.WaitGroup
}

// notRun is the result of an object not looked at yet; it counts as up.
const notRun = "not run yet"

// tracker is one object: its configuration, state and next probe.
type tracker struct {
	key    Key
	cfg    any                                      // config.Script, config.TrackFile or config.TrackProcess
	probe  func(ctx context.Context, now time.Time) // updates st under m.mu
	every  time.Duration
	st     State
	timer  checks.Timer
	ctx    context.Context
	cancel context.CancelFunc
	// pending is when a process count first disagreed with the state
	// (zero while it agrees): the change counts once it lasts delay.
	pending time.Time
}

// New makes a Manager; Set starts its trackers.
func New(o Options) *Manager {
	if o.Clock == nil {
		o.Clock = checks.RealClock{}
	}
	if o.Runner == nil {
		o.Runner = ExecRunner{}
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Procs == nil {
		o.Procs = ReadProcs
	}
	if o.WatchFile == nil {
		o.WatchFile = WatchFile
	}
	if o.OnChange == nil {
		o.OnChange = func() {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, trackers: map[Key]*tracker{}}
}

// Set, State and Close accept a nil Manager, which tracks nothing.

// Set makes the trackers follow cfg: new objects start, removed ones
// stop, changed ones restart, and unchanged ones keep their state and
// counters (a reload does not reset them).
func (m *Manager) Set(cfg *config.Config) {
	if m == nil {
		return
	}
	want := map[Key]any{}
	for _, s := range cfg.Scripts {
		want[Key{KindScript, s.Name}] = s
	}
	for _, f := range cfg.TrackFiles {
		want[Key{KindFile, f.Name}] = f
	}
	for _, p := range cfg.TrackProcesses {
		want[Key{KindProcess, p.Name}] = p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for k, t := range m.trackers {
		if c, ok := want[k]; !ok || !reflect.DeepEqual(c, t.cfg) {
			m.stop(t)
			delete(m.trackers, k)
		}
	}
	for k, c := range want {
		if _, ok := m.trackers[k]; ok {
			continue
		}
		t := m.newTracker(k, c)
		m.trackers[k] = t
		m.schedule(t, 0) // the first probe at once
		if f, ok := c.(config.TrackFile); ok {
			m.watch(t, f.Path)
		}
	}
}

// watch probes t again whenever its file changes. Called with m.mu held.
func (m *Manager) watch(t *tracker, path string) {
	err := m.o.WatchFile(t.ctx, path, func() {
		if !m.startProbe(t) {
			return
		}
		defer m.probes.Done()
		t.probe(t.ctx, m.o.Clock.Now())
	})
	if err != nil {
		m.o.Logger.Info("track file not watched, read every poll interval only", "name", t.key.Name, "path", path, "err", err)
	}
}

// States is every object's state now.
func (m *Manager) States() map[Key]State {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]State, len(m.trackers))
	for k, t := range m.trackers {
		out[k] = t.st
	}
	return out
}

// State is one object's state; ok is false if there is no such object.
func (m *Manager) State(k Key) (State, bool) {
	if m == nil {
		return State{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.trackers[k]
	if !ok {
		return State{}, false
	}
	return t.st, true
}

// Close stops every tracker, killing running scripts, and returns once
// they are gone.
func (m *Manager) Close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.closed = true
	for k, t := range m.trackers {
		m.stop(t)
		delete(m.trackers, k)
	}
	m.mu.Unlock()
	m.probes.Wait()
}

func (m *Manager) stop(t *tracker) {
	t.cancel()
	if t.timer != nil {
		t.timer.Stop()
	}
}

// startProbe counts a probe of t about to run, unless t was stopped; the
// caller then calls m.probes.Done. Counted under the lock, which Close
// holds while it cancels: no probe starts once Close waits.
func (m *Manager) startProbe(t *tracker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.ctx.Err() != nil {
		return false
	}
	m.probes.Add(1)
	return true
}

// schedule runs t's probe after d, then again every t.every. Called with
// m.mu held.
func (m *Manager) schedule(t *tracker, d time.Duration) {
	t.timer = m.o.Clock.AfterFunc(d, func() {
		if !m.startProbe(t) {
			return
		}
		defer m.probes.Done()
		start := m.o.Clock.Now()
		t.probe(t.ctx, start)
		m.mu.Lock()
		defer m.mu.Unlock()
		if t.ctx.Err() != nil {
			return
		}
		// Runs start every interval; one that overran starts the next at once.
		m.schedule(t, max(0, t.every-m.o.Clock.Now().Sub(start)))
	})
}

func (m *Manager) newTracker(k Key, c any) *tracker {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tracker{key: k, cfg: c, ctx: ctx, cancel: cancel, every: PollInterval,
		st: State{Up: true, Result: notRun, Since: m.o.Clock.Now()}}
	switch c := c.(type) {
	case config.Script:
		t.every = c.Interval.D()
		t.probe = func(ctx context.Context, now time.Time) {
			r := m.o.Runner.Run(ctx, c)
			if ctx.Err() != nil && !r.OK {
				return // stopped: a killed run says nothing
			}
			m.update(t, func(st *State) {
				first := !st.Known
				st.Result, st.Output = r.Detail, r.Output
				scriptResult(st, first, r.OK, c.Rise, c.Fall)
			})
		}
	case config.TrackFile:
		t.probe = func(_ context.Context, _ time.Time) {
			data, err := m.o.ReadFile(c.Path)
			m.update(t, func(st *State) { fileResult(st, data, err) })
		}
	case config.TrackProcess:
		t.every = PollInterval
		if d := c.Delay.D(); d > 0 && d < t.every {
			t.every = d // look often enough for the delay to mean something
		}
		t.probe = func(_ context.Context, now time.Time) {
			ps, err := m.o.Procs()
			m.update(t, func(st *State) {
				if err != nil {
					st.Result = "cannot list processes: " + err.Error()
					return
				}
				processResult(st, &t.pending, now, c, Count(ps, c))
			})
		}
	}
	return t
}

// update applies f to t's state and reports a change of what tracking
// uses (Up, Known, Value) through OnChange.
func (m *Manager) update(t *tracker, f func(*State)) {
	m.mu.Lock()
	if m.trackers[t.key] != t {
		m.mu.Unlock()
		return // replaced or stopped meanwhile
	}
	before := t.st
	f(&t.st)
	t.st.Known = true
	changed := before.Up != t.st.Up || before.Known != t.st.Known || before.Value != t.st.Value
	if before.Up != t.st.Up {
		t.st.Since = m.o.Clock.Now()
		m.o.Logger.Info("tracked object changed", "kind", t.key.Kind, "name", t.key.Name,
			"state", t.st.Status(), "result", t.st.Result)
	}
	m.mu.Unlock()
	if changed {
		m.o.OnChange()
	}
}
