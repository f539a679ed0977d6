package checks_test

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/checks/checkstest"
	"github.com/director-lb/director/internal/testlog"
)

// lagRig is a Manager on checkstest's clock with one check whose prober
// the test scripts: each attempt runs the next step.
type lagRig struct {
	clock  *checkstest.Clock
	m      *checks.Manager
	id     checks.ID
	logs   *testlog.Buffer
	mu     sync.Mutex
	steps  []func() checks.Result // run in turn; then the server answers
	calls  []time.Time
	budget []time.Duration // each attempt's time to its deadline
	result []checks.Result // as OnResult saw them
}

var lagServer = netip.MustParseAddrPort("10.9.0.1:80")

func newLagRig(t *testing.T) *lagRig { t.Helper(); return newLagRigSpec(t, 0, 0) }

// newLagRigLate is newLagRig whose first round starts late by late (the
// daemon busy starting up).
func newLagRigLate(t *testing.T, late time.Duration) *lagRig {
	t.Helper()
	return newLagRigSpec(t, late, 0)
}

// newLagRigSpec is newLagRigLate whose check has retries retries.
func newLagRigSpec(t *testing.T, late time.Duration, retries int) *lagRig {
	t.Helper()
	r := &lagRig{clock: checkstest.NewClock(), logs: &testlog.Buffer{}}
	r.m = checks.NewManager(checks.Options{
		Clock:  r.clock,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)),
		NewProber: func(checks.Spec) (checks.Prober, error) {
			return proberFunc(func(ctx context.Context, _ checks.Target) checks.Result {
				r.mu.Lock()
				r.calls = append(r.calls, r.clock.Now())
				if dl, ok := ctx.Deadline(); ok {
					r.budget = append(r.budget, time.Until(dl))
				}
				var step func() checks.Result
				if len(r.steps) > 0 {
					step, r.steps = r.steps[0], r.steps[1:]
				}
				r.mu.Unlock()
				if step != nil {
					return step()
				}
				return checks.Result{OK: true, Reason: "up"}
			}), nil
		},
		OnResult: func(_ checks.ID, res checks.Result) {
			r.mu.Lock()
			r.result = append(r.result, res)
			r.mu.Unlock()
		},
		Jitter: 0.0001, Coalesce: -1, StartSpread: time.Millisecond,
	})
	t.Cleanup(r.m.Close)
	id, err := r.m.Add(checks.Check{Server: lagServer, Spec: checks.Spec{Type: checks.TypeTCP,
		Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1, Retries: retries}})
	if err != nil {
		t.Fatal(err)
	}
	r.id = id
	r.clock.Skip(late)
	r.clock.Advance(10 * time.Millisecond) // the first round: up
	r.wantHealth(t, checks.Up)
	return r
}

type proberFunc func(context.Context, checks.Target) checks.Result

func (f proberFunc) Probe(ctx context.Context, t checks.Target) checks.Result { return f(ctx, t) }

func (r *lagRig) script(steps ...func() checks.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, steps...)
}

func (r *lagRig) wantHealth(t *testing.T, h checks.Health) {
	t.Helper()
	st, ok := r.m.Status(r.id)
	if !ok || st.Health != h {
		t.Fatalf("health %v (rounds %d, last %q), want %v", st.Health, st.Rounds, st.Last.Reason, h)
	}
}

func (r *lagRig) lastResult() checks.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result[len(r.result)-1]
}

func (r *lagRig) ncalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// timeout is an attempt that times out after its full timeout, on time.
func (r *lagRig) timeout(took time.Duration) func() checks.Result {
	return func() checks.Result {
		r.clock.Skip(took)
		return checks.Result{TimedOut: true, Reason: "read response"}
	}
}

// A timeout that ran far past its deadline is the checker's doing (the
// process was starved, so the answer sat unread): it must not take a
// healthy server down, even with fall 1.
func TestManagerStarvedTimeoutIsNotAFailure(t *testing.T) {
	r := newLagRig(t)
	r.script(r.timeout(3 * time.Second))     // the 500ms deadline woke 2.5s late
	r.clock.Advance(1600 * time.Millisecond) // the second round is due within 1.5s
	if n := r.ncalls(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	r.wantHealth(t, checks.Up)
	if res := r.lastResult(); !res.Discounted || !strings.Contains(res.Reason, "timeout after 500ms") {
		t.Errorf("result %+v: want a discounted timeout", res)
	}
	if !strings.Contains(r.logs.String(), "blamed on the checker running late") {
		t.Errorf("no log line about the lag:\n%s", r.logs)
	}
	// The check carries on, and stays up.
	r.clock.Advance(5 * time.Second)
	r.wantHealth(t, checks.Up)
	if st, _ := r.m.Status(r.id); st.Failures != 0 {
		t.Errorf("%d failures counted", st.Failures)
	}
}

// An attempt that starts late (its timer fired long after it fell due:
// the runtime was starved) and then times out is not the server's fault
// either; its result carries the lag.
func TestManagerLateStartTimeoutIsNotAFailure(t *testing.T) {
	r := newLagRig(t)
	r.script(r.timeout(500 * time.Millisecond))
	r.clock.Skip(3 * time.Second) // no timer ran for 3s
	r.clock.Advance(0)
	if n := r.ncalls(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	r.wantHealth(t, checks.Up)
	res := r.lastResult()
	// The round was due within 1.5s; the timer fired at 3s.
	if !res.Discounted || res.Lag < 1400*time.Millisecond {
		t.Errorf("result %+v: want a discounted timeout with 1.5s of lag or more", res)
	}
}

// A timeout on time is the server's: fall 1 takes it down at once.
func TestManagerPunctualTimeoutFails(t *testing.T) {
	r := newLagRig(t)
	r.script(r.timeout(500 * time.Millisecond))
	// Up to the second round only: it is due within 1.5s, and a third one
	// (up again) could follow within a 2s step.
	for i := 0; i < 20 && r.ncalls() < 2; i++ {
		r.clock.Advance(100 * time.Millisecond)
	}
	r.wantHealth(t, checks.Down)
	if res := r.lastResult(); res.Discounted || res.Lag != 0 {
		t.Errorf("result %+v: want a counted timeout without lag", res)
	}
}

// Under overload that never ends, a server that stops answering is still
// taken down, after a few discounted attempts.
func TestManagerDiscountsAreBounded(t *testing.T) {
	r := newLagRig(t)
	for range 20 {
		r.script(r.timeout(3 * time.Second))
	}
	for i := 0; i < 100 && r.ncalls() < 12; i++ {
		r.clock.Advance(time.Second)
	}
	r.wantHealth(t, checks.Down)
	discounted := 0
	for _, res := range r.result {
		if res.Discounted {
			discounted++
		}
	}
	if discounted < 3 || discounted > 10 {
		t.Errorf("%d attempts discounted before the server went down, want a few", discounted)
	}
}

// While attempts start late, rounds are spaced out; once on time again,
// the interval comes back.
func TestManagerStretchesWhenLate(t *testing.T) {
	r := newLagRig(t)
	for range 10 {
		r.clock.Skip(2 * time.Second) // every round's timer fires late
		r.clock.Advance(time.Millisecond)
	}
	if s := r.m.Lag(); s.Stretch <= 1 || s.Avg < 100*time.Millisecond {
		t.Fatalf("lag %+v after late rounds: want a stretch above 1", s)
	}
	if !strings.Contains(r.logs.String(), "health checks running late") {
		t.Errorf("no log line about the stretch:\n%s", r.logs)
	}
	r.mu.Lock()
	gap := r.calls[len(r.calls)-1].Sub(r.calls[len(r.calls)-2])
	budget := r.budget[len(r.budget)-1]
	r.mu.Unlock()
	if gap < 1900*time.Millisecond {
		t.Errorf("rounds %v apart when late, want more than the 1s interval plus the lag", gap)
	}
	if budget < 600*time.Millisecond {
		t.Errorf("attempt timeout %v when late, want more than the 500ms configured", budget)
	}
	r.wantHealth(t, checks.Up)
	// Recovery goes by time, not by attempts: one check alone makes too
	// few for its smoothed lag to forget the stall soon, yet the stretch
	// must be gone within seconds of the checker keeping time.
	for range 10 {
		r.clock.Advance(time.Second)
	}
	if s := r.m.Lag(); s.Stretch != 1 {
		t.Errorf("lag %+v after ten seconds on time: want the stretch back at 1", s)
	}
	r.mu.Lock()
	budget = r.budget[len(r.budget)-1]
	r.mu.Unlock()
	if budget > 500*time.Millisecond {
		t.Errorf("attempt timeout %v on time again, want the 500ms configured", budget)
	}
	if !strings.Contains(r.logs.String(), "health checks on time again") {
		t.Errorf("no log line about recovery:\n%s", r.logs)
	}
}

// A check's first attempt falls due when the check is added, while the
// daemon is busy starting: its lateness is no sign of overload and must not
// space out later rounds (which would slow every director's verdict).
func TestManagerFirstAttemptLagIsNotOverload(t *testing.T) {
	r := newLagRigLate(t, 3*time.Second)
	if s := r.m.Lag(); s.Stretch != 1 || s.Avg != 0 {
		t.Fatalf("lag %+v after a late first round, want none", s)
	}
	// Up to the second round only, which is due within 1.5 intervals (a
	// third could follow within one 1.6s step).
	for i := 0; i < 16 && r.ncalls() < 2; i++ {
		r.clock.Advance(100 * time.Millisecond)
	}
	if n := r.ncalls(); n != 2 {
		t.Fatalf("%d attempts, want 2: the second round within 1.5 intervals of the first", n)
	}
	if s := r.m.Lag(); s.Stretch != 1 {
		t.Errorf("lag %+v after an on-time second round, want stretch 1", s)
	}
}

// failure is an attempt that ends after took with res (not a timeout).
func (r *lagRig) failure(took time.Duration, res checks.Result) func() checks.Result {
	return func() checks.Result {
		r.clock.Skip(took)
		return res
	}
}

var (
	closedByServer = checks.Result{Reason: "read response: connection closed by server", Closed: true}
	refused        = checks.Result{Reason: "connect: connection refused", Refused: true}
	status503      = checks.Result{Reason: "HTTP status 503, want 200-299"}
	closedReadLate = checks.Result{Reason: "read response: connection closed by server", Closed: true, ReadLate: true}
)

// A connection the server closed, seen only long after the deadline, is
// the checker's doing too: a server closes a connection whose request
// came seconds late, as the lab's did beside CPU burners.
func TestManagerStarvedCloseIsNotAFailure(t *testing.T) {
	r := newLagRig(t)
	r.script(r.failure(3*time.Second, closedByServer)) // past the 500ms deadline by 2.5s
	for i := 0; i < 40 && r.ncalls() < 2; i++ {
		r.clock.Advance(100 * time.Millisecond)
	}
	r.wantHealth(t, checks.Up)
	if res := r.resultAt(1); !res.Discounted {
		t.Errorf("result %+v: want it discounted", res)
	}
	if !strings.Contains(r.logs.String(), "connection closed by server") {
		t.Errorf("the log line about the lag has no reason:\n%s", r.logs)
	}
}

// Any other answer is the server's however late it is read, and so is a
// close on time: fall 1 takes the server down at once.
func TestManagerAnswersCountHoweverLate(t *testing.T) {
	for _, c := range []struct {
		name string
		took time.Duration
		res  checks.Result
	}{
		{"close on time", 100 * time.Millisecond, closedByServer},
		{"refused late", 3 * time.Second, refused},
		{"status late", 3 * time.Second, status503},
		{"close received in time, read late", 3 * time.Second, closedReadLate},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newLagRig(t)
			r.script(r.failure(c.took, c.res))
			for i := 0; i < 40 && r.ncalls() < 2; i++ {
				r.clock.Advance(100 * time.Millisecond)
			}
			r.wantHealth(t, checks.Down)
			if res := r.resultAt(1); res.Discounted {
				t.Errorf("result %+v: want it counted", res)
			}
		})
	}
}

// A discounted attempt is tried again anywhere from half to one and a half
// intervals later, so that the attempts one stall discounted do not fall
// due together again.
func TestManagerDiscountedRetrySpreads(t *testing.T) {
	r := newLagRig(t)
	r.script(r.timeout(3 * time.Second))
	for i := 0; i < 40 && r.ncalls() < 2; i++ {
		r.clock.Advance(100 * time.Millisecond)
	}
	if r.ncalls() < 2 || !r.resultAt(1).Discounted {
		t.Fatalf("%d attempts, second %+v: want a discounted one", r.ncalls(), r.resultAt(1))
	}
	// calls[0] is the first round; calls[1] the discounted attempt, which
	// ended 3s after it began; calls[2] its retry.
	for i := 0; i < 60 && r.ncalls() < 3; i++ {
		r.clock.Advance(100 * time.Millisecond)
	}
	r.mu.Lock()
	calls := append([]time.Time(nil), r.calls...)
	r.mu.Unlock()
	if len(calls) < 3 {
		t.Fatalf("%d attempts, want the retry", len(calls))
	}
	gap := calls[2].Sub(calls[1].Add(3 * time.Second))
	if gap < 400*time.Millisecond || gap > 1600*time.Millisecond {
		t.Errorf("retry %v after the discounted attempt ended, want 0.5 to 1.5 intervals of 1s", gap)
	}
}

func (r *lagRig) resultAt(i int) checks.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.result) {
		return checks.Result{}
	}
	return r.result[i]
}

// Under overload that never ends, a check with retries still takes a
// server that keeps failing down: a discounted retry does not restart the
// round, and once the discounts are used up, failures count until a
// success.
func TestManagerDiscountsAreBoundedWithRetries(t *testing.T) {
	r := newLagRigSpec(t, 0, 1)
	for range 40 {
		r.script(r.timeout(3 * time.Second))
	}
	for i := 0; i < 200 && r.ncalls() < 30; i++ {
		if st, _ := r.m.Status(r.id); st.Health == checks.Down {
			break
		}
		r.clock.Advance(time.Second)
	}
	r.wantHealth(t, checks.Down)
	if n := r.ncalls(); n > 1+checks.MaxDiscounted+2 {
		t.Errorf("%d attempts before the server went down, want at most %d", n, 1+checks.MaxDiscounted+2)
	}
}
