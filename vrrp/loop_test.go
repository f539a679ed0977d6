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

// slowSender counts adverts and moves the clock on by cost for each, as a
// send that took that long would.
type slowSender struct {
	clock *manualClock
	cost  time.Duration
	mu    sync.Mutex
	sent  int
}

func (s *slowSender) WriteTo([]byte, netip.Addr) error {
	s.clock.advance(s.cost)
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	return nil
}
func (s *slowSender) Source() netip.Addr { return netip.MustParseAddr("10.0.0.11") }
func (s *slowSender) count() int         { s.mu.Lock(); defer s.mu.Unlock(); return s.sent }

// The loop keeps one timer and arms it from the clock as it re-arms it:
// a turn slowed down (here each send takes 7 ms) does not push the next
// advert back by its own delay, and an event between two adverts does not
// move the next one.
func TestInstanceLoopArmsTimerFromTheClock(t *testing.T) {
	const interval, cost = 20 * time.Millisecond, 7 * time.Millisecond
	clock := &manualClock{now: time.Unix(1000, 0)}
	send := &slowSender{clock: clock, cost: cost}
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
	if got := timer.armed(); got[0] != interval-cost {
		t.Fatalf("after the first advert (a %v send) the next was armed in %v, want %v", cost, got[0], interval-cost)
	}

	// An event 5 ms later: the next advert stays where it was.
	clock.advance(5 * time.Millisecond)
	in.SetAddresses([]netip.Addr{netip.MustParseAddr("10.0.0.101")})
	eventually(t, "the timer re-armed after the event", func() bool { return len(timer.armed()) >= 2 })
	if got, want := timer.armed()[1], interval-cost-5*time.Millisecond; got != want {
		t.Errorf("after an event 5 ms on, the advert was armed in %v, want %v", got, want)
	}

	// The timer fires 30 ms late: the advert goes at once, and the next
	// is due one interval after it went.
	sent := send.count()
	clock.advance(interval - cost - 5*time.Millisecond + 30*time.Millisecond)
	timer.c <- clock.Now()
	eventually(t, "the advert sent and the timer re-armed", func() bool { return send.count() > sent && len(timer.armed()) >= 3 })
	if got := timer.armed()[2]; got != interval-cost {
		t.Errorf("after a late firing the next advert was armed in %v, want %v", got, interval-cost)
	}
	if n := len(clock.timers); n != 1 {
		t.Errorf("the loop made %d timers, want its one timer re-armed", n)
	}
}
