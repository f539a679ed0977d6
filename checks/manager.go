package checks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Options configures a Manager. The zero value works.
type Options struct {
	// Clock schedules rounds; RealClock by default.
	Clock Clock
	// Rand spreads start times and intervals; seeded at random by default.
	// Tests pass a fixed seed.
	Rand *rand.Rand
	// OnEvent is told of every health transition and every change of
	// dynamic weight, once, in order, from a single goroutine. It may call
	// the Manager's methods, except Close. An event of a check that was
	// removed meanwhile may still arrive: ignore IDs you no longer know.
	OnEvent func(Event)
	// OnResult, if set, sees every attempt's result (for metrics). It is
	// called on the check's own goroutine and must not block.
	OnResult func(ID, Result)
	Logger   *slog.Logger
	// NewProber builds a check's prober; the package's NewProber by default.
	NewProber func(Spec) (Prober, error)
	// StartSpread bounds when a new check runs its first round: at a random
	// time within min(Interval, StartSpread). Default 1s.
	StartSpread time.Duration
	// Jitter varies each interval at random by up to this fraction either
	// way, so that checks started together drift apart. Default 0.1.
	Jitter float64
	// MaxInFlight caps the attempts running at once (default 2048); due
	// attempts beyond it wait in a queue, and their timeout only starts
	// when they run. This bounds memory and keeps a starved director from
	// timing out healthy servers en masse. Size it above the number of
	// checks that may time out together times Timeout/Interval.
	MaxInFlight int
	// Coalesce lets timers that fall due close together fire together: a
	// check's next attempt is brought forward to the start of its
	// Coalesce-long slot of the clock, unless that would cut its delay by
	// more than an eighth. One wake-up then serves several checks, which
	// cuts the system calls and context switches per check severalfold
	// (the Go scheduler and sysmon wake up for every idle-to-busy
	// transition), most of all where those are dear, as in a VM. Default
	// 50ms; negative turns it off.
	Coalesce time.Duration
}

// Status is the state of one check.
type Status struct {
	Health Health
	// Since is when Health was entered (or the check added, for Unknown),
	// and From the health before that.
	Since time.Time
	From  Health
	// Successes and Failures count consecutive rounds; one of them is 0.
	Successes, Failures int
	// Rounds counts finished rounds.
	Rounds int
	// Last is the last round's result, at LastAt.
	Last   Result
	LastAt time.Time
	// Weight is the last dynamic weight reported, if HasWeight.
	Weight    int
	HasWeight bool
	// Adjust is what the last good round adds to the server's weight.
	Adjust int
}

// Event reports a change of a check's health, or of its dynamic weight or
// weight adjustment (then Prev equals Status.Health).
type Event struct {
	ID     ID
	Prev   Health
	Status Status
}

// Reason is why the event happened: the last round's reason.
func (e Event) Reason() string { return e.Status.Last.Reason }

// Manager runs health checks, each on its own timer, and keeps their state.
type Manager struct {
	clock     Clock
	log       *slog.Logger
	newProber func(Spec) (Prober, error)
	spread    time.Duration
	jitter    float64
	onEvent   func(Event)
	onResult  func(ID, Result)
	maxFlight int
	coalesce  time.Duration

	rndMu sync.Mutex // a leaf lock: rounds take it while holding an entry's
	rnd   *rand.Rand

	mu       sync.Mutex
	entries  map[ID]*entry
	closed   bool
	running  int            // goroutines running attempts, at most maxFlight
	waiting  []*entry       // due attempts beyond maxFlight, oldest first
	inflight sync.WaitGroup // tracks running; Add only under mu while !closed

	evMu     sync.Mutex
	evCond   *sync.Cond
	queue    []queued
	busy     bool // the dispatcher is calling OnEvent
	evClosed bool
	evDone   chan struct{}
}

type queued struct {
	ev Event
	e  *entry
}

// entry is one running check. Lock order: Manager.mu before entry.mu;
// entry.mu before rndMu and evMu.
type entry struct {
	id     ID
	spec   Spec
	prober Prober
	target Target
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	timer   Timer
	attempt int // attempts already failed in this round
	stopped bool
	st      Status
}

// NewManager returns a running Manager with no checks. Close it when done.
func NewManager(o Options) *Manager {
	m := &Manager{
		clock: o.Clock, log: o.Logger, newProber: o.NewProber, spread: o.StartSpread,
		jitter: o.Jitter, onEvent: o.OnEvent, onResult: o.OnResult, rnd: o.Rand, maxFlight: o.MaxInFlight,
		coalesce: o.Coalesce, entries: make(map[ID]*entry), evDone: make(chan struct{}),
	}
	if m.clock == nil {
		m.clock = RealClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.newProber == nil {
		m.newProber = NewProber
	}
	if m.spread <= 0 {
		m.spread = time.Second
	}
	if m.jitter <= 0 || m.jitter >= 1 {
		m.jitter = 0.1
	}
	if m.maxFlight <= 0 {
		m.maxFlight = 2048
	}
	if m.coalesce == 0 {
		m.coalesce = 50 * time.Millisecond
	}
	if m.rnd == nil {
		m.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	m.evCond = sync.NewCond(&m.evMu)
	go m.dispatch()
	return m
}

// prepare builds a stopped entry for c, or explains why c cannot run.
func (m *Manager) prepare(c Check) (*entry, error) {
	spec := c.Spec.Normalized()
	if spec.Retries < 0 {
		return nil, fmt.Errorf("check %s %s: retries must not be negative", c.Server, spec.Summary())
	}
	target, err := c.target(spec)
	if err != nil {
		return nil, fmt.Errorf("check %s %s: %w", c.Server, spec.Summary(), err)
	}
	p, err := m.newProber(spec)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.Server, err)
	}
	return &entry{id: ID{Server: c.Server, Spec: spec.key()}, spec: spec, prober: p, target: target}, nil
}

// Add starts a check, unless the same check (same server, same definition)
// is already running, which keeps its state.
func (m *Manager) Add(c Check) (ID, error) {
	e, err := m.prepare(c)
	if err != nil {
		return ID{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ID{}, errors.New("checks: manager closed")
	}
	m.start(e)
	return e.id, nil
}

// start runs e unless its ID is already running. Called with mu held.
func (m *Manager) start(e *entry) {
	if _, ok := m.entries[e.id]; ok {
		return
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	now := m.clock.Now()
	e.st = Status{Since: now}
	m.entries[e.id] = e
	delay := time.Duration(m.uniform(0, 1) * float64(min(e.spec.Interval, m.spread)))
	e.mu.Lock()
	m.schedule(e, now, delay)
	e.mu.Unlock()
}

// Remove stops a check and forgets its state. No event of it is delivered
// after Remove returns, except one already being delivered.
func (m *Manager) Remove(id ID) bool {
	m.mu.Lock()
	e, ok := m.entries[id]
	delete(m.entries, id)
	m.mu.Unlock()
	if ok {
		e.stop()
	}
	return ok
}

// Set makes the running checks exactly cs, for a reload: checks that are
// already running (same server, same definition) carry on with their
// state, others start afresh, and the rest stop. If any check is invalid,
// nothing changes.
func (m *Manager) Set(cs []Check) (added, removed int, err error) {
	want := make(map[ID]*entry, len(cs))
	var order []*entry // starts follow cs, so that an injected Rand gives a repeatable schedule
	var errs []error
	for _, c := range cs {
		e, err := m.prepare(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want[e.id] == nil {
			want[e.id] = e
			order = append(order, e)
		}
	}
	if len(errs) > 0 {
		return 0, 0, errors.Join(errs...)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, 0, errors.New("checks: manager closed")
	}
	var gone []*entry
	for id, e := range m.entries {
		if want[id] == nil {
			gone = append(gone, e)
			delete(m.entries, id)
		}
	}
	for _, e := range order {
		if m.entries[e.id] == nil {
			m.start(e)
			added++
		}
	}
	m.mu.Unlock()
	for _, e := range gone {
		e.stop()
	}
	return added, len(gone), nil
}

// Status returns a check's state.
func (m *Manager) Status(id ID) (Status, bool) {
	m.mu.Lock()
	e, ok := m.entries[id]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st, true
}

// Statuses returns the state of every check.
func (m *Manager) Statuses() map[ID]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[ID]Status, len(m.entries))
	for id, e := range m.entries {
		e.mu.Lock()
		out[id] = e.st
		e.mu.Unlock()
	}
	return out
}

// Close stops every check, waits for running attempts to end (they are
// cancelled) and drops undelivered events.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.waiting = nil
	all := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		all = append(all, e)
	}
	clear(m.entries)
	m.mu.Unlock()
	for _, e := range all {
		e.stop()
	}
	m.inflight.Wait()
	m.evMu.Lock()
	m.evClosed = true
	m.queue = nil
	m.evCond.Broadcast()
	m.evMu.Unlock()
	<-m.evDone
}

func (e *entry) stop() {
	e.mu.Lock()
	e.stopped = true
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
	e.cancel()
}

// due is called by e's timer: it runs the attempt in the timer's goroutine,
// or queues it when MaxInFlight attempts are running. A goroutine that
// finishes an attempt takes on queued ones before it ends.
func (m *Manager) due(e *entry) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	if m.running >= m.maxFlight {
		m.waiting = append(m.waiting, e)
		m.mu.Unlock()
		return
	}
	m.running++
	m.inflight.Add(1)
	m.mu.Unlock()
	defer m.inflight.Done()
	for e != nil {
		m.attempt(e)
		m.mu.Lock()
		e = nil
		if len(m.waiting) > 0 {
			e, m.waiting[0] = m.waiting[0], nil
			m.waiting = m.waiting[1:]
		} else {
			m.running--
		}
		m.mu.Unlock()
	}
}

// attempt runs one attempt of e's current round, then schedules the next
// attempt or round. One attempt of a check runs at a time.
func (m *Manager) attempt(e *entry) {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return
	}
	r := m.probe(e)
	if m.onResult != nil {
		m.onResult(e.id, r)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	now := m.clock.Now()
	if !r.OK && e.attempt < e.spec.Retries && (!r.Refused || e.spec.RetryRefused) {
		e.attempt++
		m.schedule(e, now, e.spec.RetryDelay)
		return
	}
	e.attempt = 0
	prev, changed := e.record(r, now)
	// The second round goes anywhere from half to one and a half intervals
	// after the first, so checks that started together spread over the
	// interval; later rounds only drift by the jitter.
	j := m.jitter
	if e.st.Rounds == 1 {
		j = 0.5
	}
	next := time.Duration(m.uniform(1-j, 1+j) * float64(e.spec.Interval))
	m.schedule(e, now, next)
	if !changed {
		return
	}
	if prev != e.st.Health {
		m.log.Info("health check state change", "check", e.id.String(), "from", prev.String(),
			"to", e.st.Health.String(), "reason", r.Reason)
	}
	if m.onEvent != nil {
		m.evMu.Lock()
		m.queue = append(m.queue, queued{Event{ID: e.id, Prev: prev, Status: e.st}, e})
		m.evCond.Broadcast()
		m.evMu.Unlock()
	}
}

// schedule arms e's timer to run an attempt d after now, coalesced (see
// Options.Coalesce). Called with e.mu held.
func (m *Manager) schedule(e *entry, now time.Time, d time.Duration) {
	if m.coalesce > 0 {
		at := now.Add(d)
		if cut := at.Sub(at.Truncate(m.coalesce)); cut <= d/8 {
			d -= cut
		}
	}
	e.timer = m.clock.AfterFunc(d, func() { m.due(e) })
}

// probe runs one attempt of e.
func (m *Manager) probe(e *entry) Result {
	return ProbeOnce(e.ctx, e.prober, e.target, e.spec.Timeout)
}

// ProbeOnce runs p once against t with a timeout, the way the Manager runs
// every attempt: it measures the latency and words a timeout as "timeout
// after 1s".
func ProbeOnce(ctx context.Context, p Prober, t Target, timeout time.Duration) Result {
	// One clock read for both (a system call in some VMs, e.g. UML).
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	r := p.Probe(ctx, t)
	r.Latency = time.Since(start)
	if !r.OK && (r.TimedOut || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		reason := fmt.Sprintf("timeout after %s", timeout)
		if r.Reason != "" {
			reason += " (" + r.Reason + ")"
		}
		r.Reason, r.TimedOut = reason, true
	}
	return r
}

// record folds a round's result into the state. It reports the health
// before, and whether health or dynamic weight changed.
func (e *entry) record(r Result, now time.Time) (prev Health, changed bool) {
	st := &e.st
	prev = st.Health
	st.Rounds++
	st.Last, st.LastAt = r, now
	if r.OK && r.HasWeight && (!st.HasWeight || st.Weight != r.Weight) {
		st.Weight, st.HasWeight = r.Weight, true
		changed = true
	}
	if r.OK && st.Adjust != r.Adjust {
		st.Adjust = r.Adjust
		changed = true
	}
	if r.OK {
		st.Successes, st.Failures = st.Successes+1, 0
	} else {
		st.Successes, st.Failures = 0, st.Failures+1
	}
	next := prev
	switch {
	case prev == Unknown && r.OK:
		next = Up // the first round decides at once: see the package comment
	case prev == Unknown:
		next = Down
	case prev == Up && st.Failures >= e.spec.Fall:
		next = Down
	case prev == Down && st.Successes >= e.spec.Rise:
		next = Up
	}
	if next != prev {
		st.From, st.Health, st.Since = prev, next, now
		changed = true
	}
	return prev, changed
}

func (m *Manager) uniform(lo, hi float64) float64 {
	m.rndMu.Lock()
	defer m.rndMu.Unlock()
	return lo + (hi-lo)*m.rnd.Float64()
}

// dispatch delivers events in order until Close.
func (m *Manager) dispatch() {
	defer close(m.evDone)
	m.evMu.Lock()
	defer m.evMu.Unlock()
	for {
		for len(m.queue) == 0 && !m.evClosed {
			m.evCond.Wait()
		}
		if m.evClosed {
			return
		}
		q := m.queue[0]
		m.queue[0] = queued{}
		m.queue = m.queue[1:]
		m.busy = true
		m.evMu.Unlock()
		if m.current(q.e) {
			m.onEvent(q.ev)
		}
		m.evMu.Lock()
		m.busy = false
		m.evCond.Broadcast()
	}
}

func (m *Manager) current(e *entry) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[e.id] == e
}

// waitEvents blocks until every queued event has been delivered (tests).
func (m *Manager) waitEvents() {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	for (len(m.queue) > 0 || m.busy) && !m.evClosed {
		m.evCond.Wait()
	}
}
