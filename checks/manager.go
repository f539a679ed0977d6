package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/director-lb/director/internal/rxstamp"
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
	// called on the check's own goroutine once the result is recorded (so
	// Status includes it), and must not block.
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
	// checks that may time out together times Timeout/Interval. With
	// EventLoop, the loop and the goroutines each have this cap.
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
	// LagLimit is how late the checker may run before it counts itself
	// overloaded (see Manager): an attempt that starts later than this
	// after it fell due, or a timeout (or a close by the server) seen
	// later than this after the deadline. Default 100ms; it is capped at
	// half a check's timeout.
	LagLimit time.Duration
	// EventLoop runs plain HTTP checks that judge the status alone, and
	// TCP checks, on one goroutine over epoll instead of a goroutine per
	// attempt: a clock read per wake-up rather than a dozen per check,
	// which matters where the clock is a trapped system call (a VM). Only
	// with the real clock; the other checks run as before.
	EventLoop bool
}

// Overload. A starved checker (a busy CPU, a slow VM) runs attempts late
// and wakes up late from their deadlines; a healthy server's answer then
// sits unread until the attempt has timed out. So the Manager measures its
// own lag: how late each attempt starts after its due time, and how far
// past its timeout a timed-out attempt ran. A timeout is the checker's
// fault, not the server's, when the attempt started late, ran over its
// timeout by more than the lag limit, or overlapped another attempt that
// started late; so is a connection closed by the server that the attempt
// only saw after running over its timeout by more than the lag limit (the
// runtime lets I/O through past a deadline whose timer has not run yet,
// and a server gives up on a client that stalls). Such an attempt is
// discounted (Result.Discounted): it neither counts as a failure nor as a
// success, and the check tries the same attempt again half to one and a
// half (stretched) intervals later. After maxDiscounted discounts of a
// check without a success between them, its failures count, so a server
// that really stopped answering is still taken down under sustained
// overload, a few rounds late. Meanwhile, while the
// smoothed lag stays above the limit, rounds are spaced out (up to
// maxStretch times the interval) to shed load, and attempts get as much
// longer a timeout, and both come back once the checker keeps time.

// maxDiscounted is how many failed attempts of one check may be blamed on
// the checker between two successes.
const maxDiscounted = 5

// maxStretch caps how far overload spaces rounds out.
const maxStretch = 4.0

// lagCalm is how long no attempt may start late before the stretch eases.
const lagCalm = 3 * time.Second

// lagLog is the least time between two log lines about lag.
const lagLog = 30 * time.Second

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
	lagLimit  time.Duration
	realClock bool // clock is RealClock: its readings serve as wall-clock times
	// stamps keeps the kernel stamping received packets, so that an
	// answer read after its deadline shows whether it came in time
	// (Result.ReadLate); nil with a fake clock, or where it failed.
	stamps io.Closer
	// loop runs the checks it can (Options.EventLoop); nil without.
	loop *loop

	lagMu sync.Mutex // a leaf lock, like rndMu
	lag   lagState

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

// lagState is the Manager's measure of its own lateness.
type lagState struct {
	avg       time.Duration // smoothed start lag of attempts
	stretch   float64       // factor on round delays, 1 when on time
	adjusted  time.Time     // when stretch was last reconsidered
	lateAt    time.Time     // the last start later than the lag limit
	logged    time.Time     // the last log line about lag
	discounts int           // attempts discounted since that line
	lateReads int           // answers read late but received in time, since that line
}

// LagStats is the checker's view of its own lateness.
type LagStats struct {
	// Avg is the smoothed lag of attempt starts behind their due times.
	Avg time.Duration
	// Stretch is the factor by which rounds are spaced out (1: on time).
	Stretch float64
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

	mu         sync.Mutex
	timer      Timer
	due        time.Time // when the timer was meant to fire
	attempt    int       // attempts already failed in this round
	discounted int       // attempts discounted since the last success
	stopped    bool
	st         Status
	inLoop     bool // the Manager's loop runs its attempts
}

// NewManager returns a running Manager with no checks. Close it when done.
func NewManager(o Options) *Manager {
	m := &Manager{
		clock: o.Clock, log: o.Logger, newProber: o.NewProber, spread: o.StartSpread,
		jitter: o.Jitter, onEvent: o.OnEvent, onResult: o.OnResult, rnd: o.Rand, maxFlight: o.MaxInFlight,
		coalesce: o.Coalesce, lagLimit: o.LagLimit, entries: make(map[ID]*entry), evDone: make(chan struct{}),
		lag: lagState{stretch: 1},
	}
	if m.lagLimit <= 0 {
		m.lagLimit = 100 * time.Millisecond
	}
	if m.clock == nil {
		m.clock = RealClock{}
	}
	_, m.realClock = m.clock.(RealClock)
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.realClock {
		h, err := rxstamp.Hold()
		if err != nil {
			m.log.Warn("health checks: no kernel receive times; answers a late checker reads after their deadline count as timeouts", "err", err)
		}
		m.stamps = h
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
	if o.EventLoop && m.realClock {
		l, err := newLoop(m)
		if err != nil {
			m.log.Warn("health checks: no event loop; each attempt runs on its own goroutine", "err", err)
		}
		m.loop = l
	}
	m.evCond = sync.NewCond(&m.evMu)
	go m.dispatch()
	return m
}

// prepare builds a stopped entry for c, or explains why c cannot run.
func (m *Manager) prepare(c Check) (*entry, error) {
	return prepare(c, m.newProber)
}

func prepare(c Check, newProber func(Spec) (Prober, error)) (*entry, error) {
	spec := c.Spec.Normalized()
	if spec.Retries < 0 {
		return nil, fmt.Errorf("check %s %s: retries must not be negative", c.Server, spec.Summary())
	}
	target, err := c.target(spec)
	if err != nil {
		return nil, fmt.Errorf("check %s %s: %w", c.Server, spec.Summary(), err)
	}
	p, err := newProber(spec)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", c.Server, err)
	}
	return &entry{id: ID{Server: c.Server, Spec: spec.key()}, spec: spec, prober: p, target: target}, nil
}

// Validate reports whether a Manager with the default probers would
// accept c, with the error its Set would give. Building a prober holds no
// resource, so this is cheap and leaves nothing behind.
func Validate(c Check) error {
	_, err := prepare(c, NewProber)
	return err
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
	e.inLoop = m.loop != nil && loopable(e)
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
	if m.loop != nil {
		m.loop.close()
	}
	m.evMu.Lock()
	m.evClosed = true
	m.queue = nil
	m.evCond.Broadcast()
	m.evMu.Unlock()
	<-m.evDone
	if m.stamps != nil {
		m.stamps.Close()
	}
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
	a, ok := m.begin(e, m.clock.Now())
	if !ok {
		return
	}
	wall := a.start
	if !m.realClock {
		wall = time.Now() // probers' deadlines are on the wall clock
	}
	r := probeFrom(e.ctx, e.prober, e.target, a.timeout, wall)
	var now time.Time
	if m.realClock {
		// One monotonic clock read rather than Now's two (wall and
		// monotonic: two system calls where the VM traps clock reads).
		now = a.start.Add(time.Since(a.start))
	} else {
		now = m.clock.Now()
	}
	if r.TimedOut && a.lag <= a.limit {
		// After a stall, the timers of every attempt that fell due
		// meanwhile fire together with this deadline: let those attempts
		// start and note their lag before finish judges.
		runtime.Gosched()
	}
	m.finish(e, a, r, now)
}

// begun is an attempt under way: when it started, how late, and its
// (stretched) timeout.
type begun struct {
	start      time.Time
	lag, limit time.Duration
	timeout    time.Duration
}

// begin starts an attempt of e at start, noting the checker's lag; false
// if e was stopped.
func (m *Manager) begin(e *entry, start time.Time) (begun, bool) {
	e.mu.Lock()
	stopped, due := e.stopped, e.due
	// A check's first attempt fell due when it was added, while the
	// daemon was busy starting or reloading: one-off work, not overload.
	first := e.st.Rounds == 0 && e.attempt == 0
	e.mu.Unlock()
	if stopped {
		return begun{}, false
	}
	a := begun{start: start, lag: max(start.Sub(due), 0), limit: min(m.lagLimit, e.spec.Timeout/2)}
	if !first {
		m.noteLag(start, a.lag, a.limit)
	}
	// A late checker also gives the attempt more time: the answer of a
	// healthy server then still counts, rather than the attempt being
	// wasted and discounted.
	a.timeout = m.stretched(e.spec.Timeout)
	return a, true
}

// finish judges the result r of attempt a of e, seen at now: whether the
// checker's lateness is to blame, then records it and schedules the next
// attempt or round.
func (m *Manager) finish(e *entry, a begun, r Result, now time.Time) {
	r.Latency, r.Lag = now.Sub(a.start), a.lag
	if r.ReadLate {
		m.noteLateRead()
	}
	start, lag, limit, timeout := a.start, a.lag, a.limit, a.timeout
	switch {
	case r.OK:
	case r.TimedOut:
		// Started late, ran over its timeout by more than the limit, or
		// overlapped an attempt that started late (the checker was
		// starved while this one ran).
		r.Discounted = lag > limit || r.Latency > timeout+limit || m.lateSince(start)
	case r.Closed && !r.ReadLate && r.Latency > timeout+limit:
		// The server closed the connection, seen only after the
		// deadline had long passed: the checker stalled inside the
		// attempt, and a server closes a connection whose request comes
		// seconds late. Any other answer (a status, a refusal, an
		// answer the kernel received in time) is the server's whenever
		// it is read.
		r.Discounted = true
	}
	e.mu.Lock()
	if r.Discounted && e.discounted >= maxDiscounted {
		// The server has had its benefit of the doubt; it gets it again
		// only after a success (below), so under overload that never
		// ends its failures count from here on.
		r.Discounted = false
	}
	e.mu.Unlock()
	if m.onResult != nil {
		// Deferred: it runs after the result is recorded and e.mu is
		// released, so that Status, asked from it, includes this result.
		defer m.onResult(e.id, r)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if r.Discounted {
		e.discounted++
		m.noteDiscount(now, e, r, timeout)
		// Neither a failure nor a success: the round starts again, a
		// (stretched) interval later, so an overloaded checker sheds load.
		// Spread as a second round is: a stall discounts every attempt
		// it caught at once, and their retries must not fall due together
		// and stall the checker again. The same attempt of the round is
		// tried again: a retry discounted must not restart the round.
		m.schedule(e, now, time.Duration(m.uniform(0.5, 1.5)*float64(m.stretched(e.spec.Interval))))
		return
	}
	if r.OK {
		e.discounted = 0
	}
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
	next := time.Duration(m.uniform(1-j, 1+j) * float64(m.stretched(e.spec.Interval)))
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

// noteLag folds an attempt's start lag into the smoothed lag, and once a
// second at most moves the stretch: up by a quarter while the smoothed lag
// is above the limit and attempts still start late, back down once none
// has started late for lagCalm. Recovery goes by time, not by attempts: a
// daemon with a few checks makes few attempts, and its average would take
// minutes to forget one stall.
func (m *Manager) noteLag(now time.Time, lag, limit time.Duration) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	l := &m.lag
	l.avg += (lag - l.avg) / 8
	if lag > limit {
		l.lateAt = now
	}
	if now.Sub(l.adjusted) < time.Second {
		return
	}
	l.adjusted = now
	was := l.stretch
	switch {
	case l.avg > m.lagLimit && now.Sub(l.lateAt) < time.Second:
		l.stretch = min(l.stretch*1.25, maxStretch)
	case now.Sub(l.lateAt) >= lagCalm:
		l.stretch = max(l.stretch/1.25, 1)
	}
	switch {
	case l.stretch > 1 && (was == 1 || now.Sub(l.logged) >= lagLog):
		m.log.Warn("health checks running late: spacing rounds out", "lag", l.avg.Round(time.Millisecond).String(),
			"stretch", fmt.Sprintf("%.2f", l.stretch), "attempts_discounted", l.discounts, "answers_read_late_in_time", l.lateReads)
		l.logged, l.discounts, l.lateReads = now, 0, 0
	case l.stretch == 1 && was > 1:
		m.log.Info("health checks on time again", "lag", l.avg.Round(time.Millisecond).String(),
			"attempts_discounted", l.discounts, "answers_read_late_in_time", l.lateReads)
		l.logged, l.discounts, l.lateReads = now, 0, 0
	}
}

// lateSince reports whether an attempt started later than the lag limit
// at or after t: the checker was starved while an attempt begun at t ran.
func (m *Manager) lateSince(t time.Time) bool {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	return !m.lag.lateAt.Before(t)
}

// noteDiscount counts a discounted attempt and logs it, at most once per
// lagLog.
func (m *Manager) noteDiscount(now time.Time, e *entry, r Result, timeout time.Duration) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	m.lag.discounts++
	if now.Sub(m.lag.logged) < lagLog {
		return
	}
	m.lag.logged = now
	m.log.Warn("health check attempt blamed on the checker running late, not on the server", "check", e.id.String(),
		"reason", r.Reason, "lag", r.Lag.Round(time.Millisecond).String(), "took", r.Latency.Round(time.Millisecond).String(),
		"timeout", timeout.String(), "attempts_discounted", m.lag.discounts)
	m.lag.discounts = 0
}

// noteLateRead counts an answer read after its deadline that the kernel
// had received in time; the lag log lines report the count.
func (m *Manager) noteLateRead() {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	m.lag.lateReads++
}

// stretched is d spaced out by the current stretch.
func (m *Manager) stretched(d time.Duration) time.Duration {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	return time.Duration(float64(d) * m.lag.stretch)
}

// Lag reports the checker's lateness.
func (m *Manager) Lag() LagStats {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	return LagStats{Avg: m.lag.avg, Stretch: m.lag.stretch}
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
	e.due = now.Add(d)
	if e.inLoop {
		e.timer = m.loop.schedule(e, e.due)
		return
	}
	e.timer = m.clock.AfterFunc(d, func() { m.due(e) })
}

// ProbeOnce runs p once against t with a timeout, the way the Manager runs
// every attempt: it measures the latency and words a timeout as "timeout
// after 1s".
func ProbeOnce(ctx context.Context, p Prober, t Target, timeout time.Duration) Result {
	start := time.Now()
	r := probeFrom(ctx, p, t, timeout, start)
	r.Latency = time.Since(start)
	return r
}

// probeFrom runs p once, from start, until start+timeout, and words a
// timeout. A DeadlineProber gets the deadline itself and no timer of a
// context.
func probeFrom(ctx context.Context, p Prober, t Target, timeout time.Duration, start time.Time) Result {
	var r Result
	deadline := start.Add(timeout)
	if dp, ok := p.(DeadlineProber); ok {
		r = dp.ProbeUntil(ctx, t, deadline)
	} else {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		r = p.Probe(dctx, t)
		if !r.OK && errors.Is(dctx.Err(), context.DeadlineExceeded) {
			r.TimedOut = true
		}
		cancel()
	}
	return wordTimeout(r, timeout)
}

// wordTimeout words a timed-out result as "timeout after 1s (stage)".
func wordTimeout(r Result, timeout time.Duration) Result {
	if !r.OK && r.TimedOut {
		reason := fmt.Sprintf("timeout after %s", timeout)
		if r.Reason != "" {
			reason += " (" + r.Reason + ")"
		}
		r.Reason = reason
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
