package dataplane

import (
	"github.com/director-lb/director/checks/checkstest"

	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newFakeClock is the shared fake checks.Clock.
func newFakeClock() *checkstest.Clock { return checkstest.NewClock() }

// fakeChecks is a check runner whose statuses the test sets: every check
// starts Unknown, and set changes a server's checks and reports the event
// as the Manager would.
type fakeChecks struct {
	clock   Clock
	onEvent func(checks.Event)

	mu       sync.Mutex
	st       map[checks.ID]checks.Status
	byServer map[netip.AddrPort][]checks.ID
}

func (f *fakeChecks) Set(cs []checks.Check) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := map[checks.ID]checks.Status{}
	f.byServer = map[netip.AddrPort][]checks.ID{}
	for _, c := range cs {
		id := c.ID()
		s, ok := f.st[id]
		if !ok {
			s = checks.Status{Health: checks.Unknown, Since: f.clock.Now()}
		}
		st[id] = s
		f.byServer[c.Server] = append(f.byServer[c.Server], id)
	}
	f.st = st
	return 0, 0, nil
}

func (f *fakeChecks) Status(id checks.ID) (checks.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.st[id]
	return s, ok
}

func (f *fakeChecks) Close() {}

// set gives every check of server ap health h, now, and reports the
// transitions.
func (f *fakeChecks) set(ap netip.AddrPort, h checks.Health) {
	f.mu.Lock()
	var evs []checks.Event
	for _, id := range f.byServer[ap] {
		prev := f.st[id]
		s := checks.Status{Health: h, From: prev.Health, Since: f.clock.Now(), Last: checks.Result{Reason: "test says " + h.String()}}
		f.st[id] = s
		evs = append(evs, checks.Event{ID: id, Prev: prev.Health, Status: s})
	}
	f.mu.Unlock()
	for _, e := range evs {
		f.onEvent(e)
	}
}

// newFaked builds a dataplane on the fake check runner fc (which it wires)
// and gives it cfg's checks.
func newFaked(t *testing.T, cfg *config.Config, o Options, fc *fakeChecks) *Dataplane {
	t.Helper()
	if o.Clock == nil {
		o.Clock = checks.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = discard()
	}
	fc.clock = o.Clock
	dp, err := newWith(cfg, o, func(onEvent func(checks.Event)) checkRunner { fc.onEvent = onEvent; return fc })
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

// countingProg is a reconciler that counts how it is called.
type countingProg struct {
	*ipvs.Reconciler
	applies, setWeights atomic.Int32
}

func (c *countingProg) Apply(ctx context.Context, desired []ipvs.Service) (ipvs.Result, error) {
	c.applies.Add(1)
	return c.Reconciler.Apply(ctx, desired)
}

func (c *countingProg) SetWeight(ctx context.Context, key ipvs.ServiceKey, dst netip.AddrPort, w int32) (ipvs.Result, error) {
	c.setWeights.Add(1)
	return c.Reconciler.SetWeight(ctx, key, dst, w)
}

// runDataplane runs dp's loop until the test ends.
func runDataplane(t *testing.T, dp *Dataplane) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); dp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitPass waits until the loop has finished a pass that saw every change
// made so far.
func waitPass(t *testing.T, dp *Dataplane) {
	t.Helper()
	g := dp.gen.Load()
	testwait.Eventually(t, 10*time.Second, "a dataplane pass", func() bool { return dp.done.Load() >= g })
}

// desiredNow is the table the dataplane would program now.
func desiredNow(dp *Dataplane) Table {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.desiredLocked()
}
