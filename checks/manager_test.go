package checks

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFleet is a set of fake real servers whose health the test sets.
type fakeFleet struct {
	clock *fakeClock
	mu    sync.Mutex
	up    map[netip.AddrPort]bool
	seq   map[netip.AddrPort][]bool // scripted results, used before up
	calls map[netip.AddrPort][]time.Time
	wt    map[netip.AddrPort]int
	// refused servers that are down refuse connections rather than fail
	refused map[netip.AddrPort]bool
}

func newFleet(c *fakeClock) *fakeFleet {
	return &fakeFleet{clock: c, up: map[netip.AddrPort]bool{}, seq: map[netip.AddrPort][]bool{},
		calls: map[netip.AddrPort][]time.Time{}, wt: map[netip.AddrPort]int{}, refused: map[netip.AddrPort]bool{}}
}

// newProber validates the spec as the real one would, then fakes it.
func (f *fakeFleet) newProber(s Spec) (Prober, error) {
	if _, err := NewProber(s); err != nil {
		return nil, err
	}
	return proberFunc(func(ctx context.Context, t Target) Result {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[t.Server] = append(f.calls[t.Server], f.clock.Now())
		ok := f.up[t.Server]
		if s := f.seq[t.Server]; len(s) > 0 {
			ok, f.seq[t.Server] = s[0], s[1:]
		}
		if !ok {
			return Result{Reason: "fake: down", Refused: f.refused[t.Server]}
		}
		r := Result{OK: true, Reason: "fake: up"}
		if w, ok := f.wt[t.Server]; ok {
			r.Weight, r.HasWeight = w, true
		}
		return r
	}), nil
}

func (f *fakeFleet) set(s netip.AddrPort, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up[s] = up
}

func (f *fakeFleet) ncalls(s netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[s])
}

// eventLog collects a manager's events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }

func (l *eventLog) take(m *Manager) []string {
	m.waitEvents()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		s := fmt.Sprintf("%s %s->%s", e.ID.Server, e.Prev, e.Status.Health)
		if e.Prev == e.Status.Health {
			s = fmt.Sprintf("%s weight %d", e.ID.Server, e.Status.Weight)
		}
		out = append(out, s)
	}
	l.evs = nil
	return out
}

type rig struct {
	clock *fakeClock
	fleet *fakeFleet
	log   *eventLog
	m     *Manager
}

func newRig(t *testing.T, seed uint64) *rig {
	r := &rig{clock: newFakeClock(), log: &eventLog{}}
	r.fleet = newFleet(r.clock)
	r.m = NewManager(Options{Clock: r.clock, Rand: rand.New(rand.NewPCG(seed, 0)), OnEvent: r.log.add,
		NewProber: r.fleet.newProber, StartSpread: time.Second, Logger: quiet})
	t.Cleanup(r.m.Close)
	return r
}

// round advances the clock until s has been probed once more.
func (r *rig) round(t *testing.T, s netip.AddrPort) {
	t.Helper()
	n := r.fleet.ncalls(s)
	for range 10000 {
		r.clock.Advance(10 * time.Millisecond)
		if r.fleet.ncalls(s) > n {
			return
		}
	}
	t.Fatalf("%s not probed", s)
}

var quiet = slog.New(slog.DiscardHandler)

var (
	srvA = netip.MustParseAddrPort("10.0.0.1:80")
	srvB = netip.MustParseAddrPort("10.0.0.2:80")
	srvC = netip.MustParseAddrPort("10.0.0.3:80")
)

func tcpSpec(interval time.Duration) Spec {
	return Spec{Type: TypeTCP, Interval: interval, Timeout: interval / 2, Rise: 2, Fall: 3}
}

func TestManagerFirstRoundDecides(t *testing.T) {
	r := newRig(t, 1)
	r.fleet.set(srvA, true)
	idA, err := r.m.Add(Check{Server: srvA, Spec: tcpSpec(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	idB, _ := r.m.Add(Check{Server: srvB, Spec: tcpSpec(10 * time.Second)})
	if st, _ := r.m.Status(idA); st.Health != Unknown || !st.Since.Equal(epoch) {
		t.Fatalf("before any round: %+v", st)
	}
	// Within StartSpread, one round decides without waiting for rise/fall.
	r.clock.Advance(time.Second)
	stA, _ := r.m.Status(idA)
	stB, _ := r.m.Status(idB)
	if stA.Health != Up || stB.Health != Down || stA.Rounds != 1 || stB.Last.Reason != "fake: down" {
		t.Fatalf("after the first round: A %+v, B %+v", stA, stB)
	}
	if stA.From != Unknown || stA.Since.After(epoch.Add(time.Second)) {
		t.Errorf("A came up from %s at %v", stA.From, stA.Since)
	}
	got := r.log.take(r.m)
	slices.Sort(got)
	if want := []string{"10.0.0.1:80 unknown->up", "10.0.0.2:80 unknown->down"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	r.clock.Advance(time.Minute)
	if got := r.log.take(r.m); len(got) != 0 {
		t.Fatalf("steady state produced events %q", got)
	}
}

func TestManagerRiseFallDamping(t *testing.T) {
	r := newRig(t, 2)
	id, _ := r.m.Add(Check{Server: srvA, Spec: tcpSpec(time.Second)}) // rise 2, fall 3
	//           1 first decides up     7: third failure   11: second success
	flaps := []bool{true, false, false, true, false, false, false, true, false, true, true, false, true}
	want := map[int]string{1: "10.0.0.1:80 unknown->up", 7: "10.0.0.1:80 up->down", 11: "10.0.0.1:80 down->up"}
	for i, ok := range flaps {
		r.fleet.set(srvA, ok)
		r.round(t, srvA)
		got := r.log.take(r.m)
		if w, ok := want[i+1]; ok != (len(got) == 1) || (ok && got[0] != w) {
			t.Fatalf("round %d: events %q, want %q", i+1, got, w)
		}
	}
	st, _ := r.m.Status(id)
	if st.Health != Up || st.Failures != 0 || st.Successes != 1 || st.Rounds != len(flaps) {
		t.Fatalf("final status %+v", st)
	}
}

func TestManagerRetries(t *testing.T) {
	r := newRig(t, 3)
	spec := tcpSpec(10 * time.Second)
	spec.Retries, spec.RetryDelay, spec.Fall = 2, 300*time.Millisecond, 1
	id, _ := r.m.Add(Check{Server: srvA, Spec: spec})

	// Two failed attempts, then a success: the round counts as good.
	r.fleet.seq[srvA] = []bool{false, false, true}
	r.clock.Advance(2 * time.Second)
	st, _ := r.m.Status(id)
	calls := r.fleet.calls[srvA]
	if st.Health != Up || st.Rounds != 1 || len(calls) != 3 {
		t.Fatalf("status %+v after %d attempts", st, len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if d := calls[i].Sub(calls[i-1]); d != 300*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous, want the retry delay", i+1, d)
		}
	}
	// A round whose every attempt fails counts once, after 1+retries attempts.
	r.fleet.seq[srvA] = []bool{false, false, false}
	r.round(t, srvA)
	r.clock.Advance(time.Second)
	st, _ = r.m.Status(id)
	if n := r.fleet.ncalls(srvA); st.Health != Down || st.Rounds != 2 || n != 6 {
		t.Fatalf("status %+v after %d attempts", st, n)
	}
}

// A refused connection ends the round without its retries, unless
// retry_refused asks for keepalived's behaviour.
func TestManagerRefusedSkipsRetries(t *testing.T) {
	for _, retry := range []bool{false, true} {
		r := newRig(t, 3)
		spec := tcpSpec(10 * time.Second)
		spec.Retries, spec.RetryDelay, spec.Fall, spec.RetryRefused = 2, 300*time.Millisecond, 1, retry
		id, _ := r.m.Add(Check{Server: srvA, Spec: spec})
		r.fleet.set(srvA, true)
		r.clock.Advance(2 * time.Second)
		if st, _ := r.m.Status(id); st.Health != Up {
			t.Fatalf("retry_refused %v: not up first: %+v", retry, st)
		}
		r.fleet.mu.Lock()
		r.fleet.up[srvA], r.fleet.refused[srvA] = false, true
		r.fleet.mu.Unlock()
		before := r.fleet.ncalls(srvA)
		r.round(t, srvA)
		r.clock.Advance(time.Second)
		st, _ := r.m.Status(id)
		want := 1
		if retry {
			want = 3
		}
		if n := r.fleet.ncalls(srvA) - before; st.Health != Down || n != want {
			t.Fatalf("retry_refused %v: %d attempts in the refused round, want %d; status %+v", retry, n, want, st)
		}
	}
}

// scheduled returns the offsets from now of the pending timers.
func scheduled(c *fakeClock) []time.Duration {
	now := c.Now()
	var out []time.Duration
	for _, at := range c.pending() {
		out = append(out, at.Sub(now))
	}
	return out
}

func TestManagerJitterSpread(t *testing.T) {
	const n, interval = 1000, 10 * time.Second
	add := func(r *rig) {
		for i := range n {
			s := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)
			r.fleet.set(s, true)
			if _, err := r.m.Add(Check{Server: s, Spec: tcpSpec(interval)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := newRig(t, 42)
	add(r)
	first := scheduled(r.clock)
	// First rounds: all within StartSpread (1s), evenly spread.
	buckets := make([]int, 10)
	for _, d := range first {
		if d < 0 || d >= time.Second {
			t.Fatalf("first round at %v, want within 1s", d)
		}
		buckets[d*10/time.Second]++
	}
	for i, b := range buckets {
		if b < 60 || b > 140 {
			t.Errorf("first rounds per 100ms: %v (bucket %d)", buckets, i)
			break
		}
	}
	// The same seed gives the same schedule.
	again := newRig(t, 42)
	add(again)
	if !slices.Equal(first, scheduled(again.clock)) {
		t.Error("same seed, different schedule")
	}
	other := newRig(t, 43)
	add(other)
	if slices.Equal(first, scheduled(other.clock)) {
		t.Error("different seed, same schedule")
	}
	// Second rounds spread over a whole interval (0.5-1.5 intervals after
	// the first, so 5s-16s from the start), and the 1s burst does not
	// repeat every interval.
	r.clock.Advance(time.Second)
	buckets = make([]int, 9)
	for _, at := range r.clock.pending() {
		d := at.Sub(epoch)
		if d < interval/2 || d > interval*3/2+time.Second {
			t.Fatalf("second round at %v", d)
		}
		if b := (d - interval/2 - time.Second) / time.Second; d >= interval/2+time.Second && b < 9 {
			buckets[b]++
		}
	}
	for i, b := range buckets {
		if b < 65 || b > 135 {
			t.Errorf("second rounds per second from 6s to 15s: %v (bucket %d)", buckets, i)
			break
		}
	}
}

func TestManagerSetKeepsHistory(t *testing.T) {
	r := newRig(t, 4)
	r.fleet.set(srvA, true)
	r.fleet.set(srvB, true)
	r.fleet.set(srvC, true)
	spec := tcpSpec(time.Second)
	added, removed, err := r.m.Set([]Check{{srvA, spec}, {srvB, spec}})
	if err != nil || added != 2 || removed != 0 {
		t.Fatalf("Set: %d %d %v", added, removed, err)
	}
	r.clock.Advance(5 * time.Second)
	idA, idB := Check{srvA, spec}.ID(), Check{srvB, spec}.ID()
	before, _ := r.m.Status(idA)
	if before.Health != Up || before.Rounds < 3 {
		t.Fatalf("A: %+v", before)
	}
	r.log.take(r.m)

	// A unchanged (spelled with explicit defaults: the same check), B's
	// definition changed, C new.
	specA := spec
	specA.RetryDelay, specA.Retries = DefaultRetryDelay, 0
	specB := spec
	specB.TCP.Send = "PING\r\n"
	added, removed, err = r.m.Set([]Check{{srvA, specA}, {srvB, specB}, {srvC, spec}})
	if err != nil || added != 2 || removed != 1 {
		t.Fatalf("reload: added %d removed %d, %v", added, removed, err)
	}
	after, ok := r.m.Status(idA)
	if !ok || after.Rounds != before.Rounds || !after.Since.Equal(before.Since) || after.Health != Up {
		t.Fatalf("A lost its history: %+v, was %+v", after, before)
	}
	if _, ok := r.m.Status(idB); ok {
		t.Fatal("B's old check still there")
	}
	newB, ok := r.m.Status(Check{srvB, specB}.ID())
	if !ok || newB.Health != Unknown || newB.Rounds != 0 {
		t.Fatalf("B's new check: %+v", newB)
	}
	r.clock.Advance(2 * time.Second)
	got := r.log.take(r.m)
	slices.Sort(got)
	if want := []string{"10.0.0.2:80 unknown->up", "10.0.0.3:80 unknown->up"}; !slices.Equal(got, want) {
		t.Fatalf("events after reload %q, want %q", got, want)
	}
	if len(r.m.Statuses()) != 3 {
		t.Fatalf("statuses: %v", r.m.Statuses())
	}

	// An invalid check in a reload changes nothing.
	bad := Spec{Type: TypeHTTP, HTTP: HTTPSpec{Status: []string{"abc"}}}
	if _, _, err := r.m.Set([]Check{{srvA, spec}, {srvB, bad}}); err == nil || !strings.Contains(err.Error(), "abc") {
		t.Fatalf("invalid reload: %v", err)
	}
	if len(r.m.Statuses()) != 3 {
		t.Fatal("an invalid reload changed the checks")
	}
}

func TestManagerRemove(t *testing.T) {
	r := newRig(t, 5)
	r.fleet.set(srvA, true)
	id, _ := r.m.Add(Check{Server: srvA, Spec: tcpSpec(time.Second)})
	// Adding the same check again is a no-op that keeps state.
	r.clock.Advance(3 * time.Second)
	st1, _ := r.m.Status(id)
	if id2, err := r.m.Add(Check{Server: srvA, Spec: tcpSpec(time.Second)}); err != nil || id2 != id {
		t.Fatalf("re-add: %v %v", id2, err)
	}
	if st2, _ := r.m.Status(id); st2.Rounds != st1.Rounds {
		t.Fatal("re-add reset the check")
	}
	r.log.take(r.m)
	if !r.m.Remove(id) || r.m.Remove(id) {
		t.Fatal("Remove should succeed once")
	}
	n := r.fleet.ncalls(srvA)
	r.fleet.set(srvA, false)
	r.clock.Advance(time.Minute)
	if r.fleet.ncalls(srvA) != n {
		t.Fatal("a removed check was probed")
	}
	if got := r.log.take(r.m); len(got) != 0 {
		t.Fatalf("events after removal: %q", got)
	}
}

func TestManagerDynamicWeight(t *testing.T) {
	r := newRig(t, 6)
	r.fleet.set(srvA, true)
	r.fleet.wt[srvA] = 5
	id, _ := r.m.Add(Check{Server: srvA, Spec: tcpSpec(time.Second)})
	r.round(t, srvA)
	r.round(t, srvA) // the same weight again: no event
	r.fleet.mu.Lock()
	r.fleet.wt[srvA] = 9
	r.fleet.mu.Unlock()
	r.round(t, srvA)
	r.fleet.mu.Lock()
	delete(r.fleet.wt, srvA) // exit 0: the weight stays
	r.fleet.mu.Unlock()
	r.round(t, srvA)
	got := r.log.take(r.m)
	if want := []string{"10.0.0.1:80 unknown->up", "10.0.0.1:80 weight 9"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if st, _ := r.m.Status(id); !st.HasWeight || st.Weight != 9 {
		t.Fatalf("status %+v", st)
	}
}

func TestManagerEventsMayCallBack(t *testing.T) {
	r := &rig{clock: newFakeClock()}
	r.fleet = newFleet(r.clock)
	var m *Manager
	var removed atomic.Int32
	m = NewManager(Options{Clock: r.clock, NewProber: r.fleet.newProber, Logger: quiet, OnEvent: func(e Event) {
		// Reload from the callback: no deadlock.
		if m.Remove(e.ID) {
			removed.Add(1)
		}
	}})
	defer m.Close()
	m.Add(Check{Server: srvA, Spec: tcpSpec(time.Second)})
	r.clock.Advance(2 * time.Second)
	m.waitEvents()
	if removed.Load() != 1 || len(m.Statuses()) != 0 {
		t.Fatalf("removed %d, left %v", removed.Load(), m.Statuses())
	}
}

func TestManagerAddErrors(t *testing.T) {
	m := NewManager(Options{Clock: newFakeClock(), Logger: quiet})
	defer m.Close()
	for _, c := range []Check{
		{Server: netip.MustParseAddrPort("10.0.0.1:0"), Spec: Spec{Type: TypeTCP}},
		{Server: srvA, Spec: Spec{Type: "ftp"}},
		{Server: srvA, Spec: Spec{Type: TypeTCP, Retries: -1}},
		{Server: srvA, Spec: Spec{Type: TypeTCP, DNS: DNSSpec{Name: "x"}}},
		{Server: srvA, Spec: Spec{Type: TypeTCP, Source: netip.MustParseAddr("::1")}},
	} {
		if _, err := m.Add(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	// connect_port makes a port-less (firewall-mark) real server checkable.
	if _, err := m.Add(Check{Server: netip.MustParseAddrPort("10.0.0.1:0"), Spec: Spec{Type: TypeTCP, ConnectPort: 80}}); err != nil {
		t.Error(err)
	}
	m.Close()
	if _, err := m.Add(Check{Server: srvA, Spec: Spec{Type: TypeTCP}}); err == nil {
		t.Error("Add after Close: no error")
	}
}

// With the real clock: a blocking prober times out with a clear reason, and
// Close cancels what runs and leaves nothing behind.
func TestManagerTimeoutAndClose(t *testing.T) {
	noLeaks(t)
	events := make(chan Event, 10)
	started := make(chan struct{}, 100)
	block := proberFunc(func(ctx context.Context, _ Target) Result {
		started <- struct{}{}
		<-ctx.Done()
		return Result{Reason: "waited"}
	})
	m := NewManager(Options{StartSpread: time.Millisecond, Logger: quiet, OnEvent: func(e Event) { events <- e },
		NewProber: func(Spec) (Prober, error) { return block, nil }})
	id, _ := m.Add(Check{Server: srvA, Spec: Spec{Type: TypeTCP, Interval: time.Hour, Timeout: 50 * time.Millisecond}})
	select {
	case e := <-events:
		if e.Status.Health != Down || e.Reason() != "timeout after 50ms (waited)" || !e.Status.Last.TimedOut {
			t.Fatalf("event %+v", e)
		}
		if e.ID != id {
			t.Fatalf("event for %v", e.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	// A long attempt in flight is cancelled by Close, which waits for it.
	m.Add(Check{Server: srvB, Spec: Spec{Type: TypeTCP, Interval: time.Hour, Timeout: time.Hour}})
	<-started
	<-started
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
}

// End to end with the real clock and a real HTTP server that fails and
// recovers: each transition is reported once, within its rounds.
func TestManagerRealHTTP(t *testing.T) {
	noLeaks(t)
	var healthy atomic.Bool
	healthy.Store(true)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	events := make(chan Event, 10)
	m := NewManager(Options{StartSpread: 10 * time.Millisecond, Logger: quiet, OnEvent: func(e Event) { events <- e }})
	defer m.Close()
	spec := Spec{Type: TypeHTTP, Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2}
	if _, err := m.Add(Check{Server: addr, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	expect := func(to Health, reason string, within time.Duration) {
		t.Helper()
		select {
		case e := <-events:
			if e.Status.Health != to || !strings.Contains(e.Reason(), reason) {
				t.Fatalf("event %s->%s %q, want ->%s %q", e.Prev, e.Status.Health, e.Reason(), to, reason)
			}
		case <-time.After(within):
			t.Fatalf("no transition to %s within %v", to, within)
		}
	}
	expect(Up, "HTTP 200", 5*time.Second)
	healthy.Store(false)
	expect(Down, "HTTP status 503, want 200-299", 5*time.Second)
	healthy.Store(true)
	expect(Up, "HTTP 200", 5*time.Second)
	select {
	case e := <-events:
		t.Fatalf("extra event %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// MaxInFlight caps concurrent attempts; queued attempts run later, and
// their timeout only starts when they do, so none fails for waiting.
func TestManagerMaxInFlight(t *testing.T) {
	noLeaks(t)
	var running, most atomic.Int32
	slow := proberFunc(func(ctx context.Context, _ Target) Result {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-time.After(150 * time.Millisecond):
			return Result{OK: true}
		case <-ctx.Done():
			return Result{Reason: "cut short"}
		}
	})
	events := make(chan Event, 20)
	m := NewManager(Options{StartSpread: time.Millisecond, MaxInFlight: 2, Logger: quiet,
		OnEvent:   func(e Event) { events <- e },
		NewProber: func(Spec) (Prober, error) { return slow, nil }})
	defer m.Close()
	const n = 6
	for i := range n {
		// Queued for up to 3×150ms, with a 200ms timeout.
		spec := Spec{Type: TypeTCP, Interval: time.Hour, Timeout: 200 * time.Millisecond}
		if _, err := m.Add(Check{Server: rs(i + 1), Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case e := <-events:
			if e.Status.Health != Up {
				t.Fatalf("%v went %s: %s", e.ID.Server, e.Status.Health, e.Reason())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not all checks ran")
		}
	}
	if got := most.Load(); got != 2 {
		t.Fatalf("at most %d attempts ran at once, want 2", got)
	}
}
