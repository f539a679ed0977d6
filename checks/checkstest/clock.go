// Package checkstest provides a fake checks.Clock for tests of code that
// schedules on it (the checks' users: the dataplane, the trackers).
package checkstest

import (
	"sync"
	"time"

	"github.com/director-lb/director/checks"
)

// Clock is a checks.Clock whose time moves only in Advance, which fires
// the timers due, in time order (creation order among equals), on the
// caller's goroutine.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*timer
}

type timer struct {
	c    *Clock
	when time.Time
	seq  int
	f    func()
	done bool
}

// NewClock starts at a fixed instant, so tests are repeatable.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f from the Advance that passes now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) checks.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Skip moves time forward by d without firing anything: time passing while
// no timer runs (a late scheduler); the next Advance fires what is due.
func (c *Clock) Skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Advance moves time forward by d, firing due timers one by one; a timer
// that a fired one sets within d fires too. Time never goes back.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *timer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.done {
				continue
			}
			live = append(live, t)
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) ||
				(t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}
