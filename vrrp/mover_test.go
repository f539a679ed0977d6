package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testwait"
)

// gateMover's Take waits until the test opens the gate, ignoring its
// context like a hung cloud call.
type gateMover struct {
	gate    chan struct{}
	mu      sync.Mutex
	entered bool
}

func (g *gateMover) Take(context.Context) error {
	g.mu.Lock()
	g.entered = true
	g.mu.Unlock()
	<-g.gate
	return nil
}
func (g *gateMover) Announce(context.Context) error { return nil }
func (g *gateMover) Release(context.Context) error  { return nil }
func (g *gateMover) inTake() bool                   { g.mu.Lock(); defer g.mu.Unlock(); return g.entered }

// notes records state notes in order.
type notes struct {
	mu sync.Mutex
	s  []State
}

func (n *notes) add(s State, _ uint8) { n.mu.Lock(); n.s = append(n.s, s); n.mu.Unlock() }
func (n *notes) get() []State         { n.mu.Lock(); defer n.mu.Unlock(); return slices.Clone(n.s) }

// A MASTER note follows the completed Take; a move hung past its timeout
// makes the worker report itself stuck (for the watchdog) until it returns.
func TestMoverWorkerNoteAfterMoveAndStuck(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := &gateMover{gate: make(chan struct{})}
	w := newMoverWorker(g, quietLog(), 10*time.Second, clock)
	w.assume(false)
	var n notes
	w.set(true)
	w.notify(n.add, StateMaster, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()
	testwait.Eventually(t, 5*time.Second, "Take entered", g.inTake)
	if got := n.get(); len(got) != 0 {
		t.Fatalf("note %v delivered before the Take finished", got)
	}
	if err := w.stuck(); err != nil {
		t.Fatalf("stuck within the timeout: %v", err)
	}
	mu.Lock()
	now = now.Add(10*time.Second + stuckGrace + time.Second)
	mu.Unlock()
	if err := w.stuck(); err == nil {
		t.Fatal("a Take hung past its timeout is not reported stuck")
	}
	close(g.gate)
	testwait.Eventually(t, 5*time.Second, "MASTER note", func() bool { return slices.Equal(n.get(), []State{StateMaster}) })
	testwait.Eventually(t, 5*time.Second, "not stuck once the pass ends", func() bool { return w.stuck() == nil })
}

// A graceful stop delivers the STOPPED note after the VIPs are released.
func TestInstanceStopNote(t *testing.T) {
	la := &lastAdvert{src: netip.MustParseAddr("10.0.0.11")}
	ev := &eventLog{}
	mv := &logMover{name: "a", log: ev}
	var n notes
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 150, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
		Notify:    n.add,
	}, la, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	eventually(t, "MASTER note", func() bool { return slices.Contains(n.get(), StateMaster) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := n.get()
	if len(got) == 0 || got[len(got)-1] != StateStopped {
		t.Errorf("notes %v, want the last to be STOPPED", got)
	}
	if mv.Held() {
		t.Error("VIPs held after stop")
	}
}

// skewClock is the real clock shifted by a settable offset.
type skewClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *skewClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}
func (c *skewClock) NewTimer(d time.Duration) Timer { return SystemClock{}.NewTimer(d) }
func (c *skewClock) skip(d time.Duration)           { c.mu.Lock(); c.off += d; c.mu.Unlock() }

// The watchdog's Ping fails while a VIP move hangs past its timeout,
// though the instance loop itself still answers.
func TestInstancePingFailsOnStuckMover(t *testing.T) {
	g := &gateMover{gate: make(chan struct{})}
	clock := &skewClock{}
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:     MachineConfig{Version: V3, Priority: 150, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses:   []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:       netip.MustParseAddr("224.0.0.18"),
		Logger:      quietLog(),
		Clock:       clock,
		MoveTimeout: time.Second,
	}, &lastAdvert{src: netip.MustParseAddr("10.0.0.11")}, g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { close(g.gate); cancel(); <-done }()
	testwait.Eventually(t, 5*time.Second, "Take entered", g.inTake)
	if err := in.Ping(context.Background()); err != nil {
		t.Fatalf("Ping within the timeout: %v", err)
	}
	clock.skip(time.Second + stuckGrace + time.Second)
	if err := in.Ping(context.Background()); err == nil {
		t.Error("Ping passed with the mover stuck past its timeout")
	}
}
