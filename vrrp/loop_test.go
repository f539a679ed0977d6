package vrrp

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock the test moves by hand; its one kind of timer
// records how it was armed and fires only when the test says.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: make(chan time.Time, 1), clock: c}
	t.arms = append(t.arms, d)
	c.timers = append(c.timers, t)
	return t
}

// loopTimer is the first timer made: the instance loop's own.
func (c *manualClock) loopTimer() *manualTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return nil
	}
	return c.timers[0]
}

type manualTimer struct {
	c     chan time.Time
	clock *manualClock
	arms  []time.Duration // guarded by clock.mu
}

func (t *manualTimer) C() <-chan time.Time { return t.c }
func (t *manualTimer) Stop() bool          { return true }
func (t *manualTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	t.arms = append(t.arms, d)
	t.clock.mu.Unlock()
	return true
}

func (t *manualTimer) armed() []time.Duration {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	return append([]time.Duration(nil), t.arms...)
}

type countingSender struct {
	mu   sync.Mutex
	sent int
}

func (s *countingSender) WriteTo([]byte, netip.Addr) error {
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	return nil
}
func (s *countingSender) Source() netip.Addr { return netip.MustParseAddr("10.0.0.11") }
func (s *countingSender) count() int         { s.mu.Lock(); defer s.mu.Unlock(); return s.sent }

// The loop keeps one timer and arms it from the time of the event it just
// handled: an event between two adverts must not push the next advert a
// whole interval past that event, and the advert after a firing is armed
// from the time the timer fired.
func TestInstanceLoopArmsTimerFromTheEvent(t *testing.T) {
	const interval = 20 * time.Millisecond
	clock := &manualClock{now: time.Unix(1000, 0)}
	send := &countingSender{}
	in := NewInstance(InstanceConfig{
		Name: "loop", VRID: 9,
		// Priority 255 owns the addresses: Master at once, adverts due
		// every interval from then on.
		Machine:   MachineConfig{Version: V3, Priority: 255, Interval: interval},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
		Clock:     clock,
	}, send, &logMover{name: "loop", log: &eventLog{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() {
		// A master's graceful stop waits on its timer for a successor
		// or the stop timeout: fire it, a second on each time.
		cancel()
		for range 120 {
			clock.advance(time.Second)
			select {
			case <-done:
				return
			case clock.loopTimer().c <- clock.Now():
			case <-time.After(10 * time.Millisecond):
			}
		}
		t.Errorf("the instance did not stop")
	}()

	eventually(t, "the loop armed its timer", func() bool { return clock.loopTimer() != nil })
	timer := clock.loopTimer()
	if got := timer.armed(); got[0] != interval {
		t.Fatalf("first advert armed in %v, want %v", got[0], interval)
	}

	// An event 5 ms later: the next advert is still due 15 ms on.
	clock.advance(5 * time.Millisecond)
	in.SetAddresses([]netip.Addr{netip.MustParseAddr("10.0.0.101")})
	eventually(t, "the timer re-armed after the event", func() bool { return len(timer.armed()) >= 2 })
	if got := timer.armed()[1]; got != interval-5*time.Millisecond {
		t.Errorf("after an event 5 ms in, the advert was armed in %v, want %v", got, interval-5*time.Millisecond)
	}

	// The timer fires 3 ms late: the advert goes, and the next is armed
	// one interval from the firing.
	sent := send.count()
	firedAt := clock.Now().Add(interval - 5*time.Millisecond + 3*time.Millisecond)
	clock.advance(50 * time.Millisecond) // the loop must use the fired time, not a later read
	timer.c <- firedAt
	eventually(t, "the advert sent and the timer re-armed", func() bool { return send.count() > sent && len(timer.armed()) >= 3 })
	if got := timer.armed()[2]; got != interval {
		t.Errorf("after a firing the next advert was armed in %v, want %v from the firing", got, interval)
	}
	if n := len(clock.timers); n != 1 {
		t.Errorf("the loop made %d timers, want its one timer re-armed", n)
	}
}
