package track

import (
	"context"
	"sync"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
)

// fakeClock runs timers synchronously, in time order, from Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  int
	f    func()
	done bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) checks.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves time forward by d, firing due timers one by one.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.when.After(end) && (next == nil || t.when.Before(next.when) ||
				(t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.done = true
		c.now = next.when
		c.mu.Unlock()
		next.f()
	}
}

// fakeRunner answers each script's runs from a queue of results; an
// empty queue repeats the last.
type fakeRunner struct {
	mu   sync.Mutex
	ok   map[string]bool
	runs map[string]int
}

func newFakeRunner() *fakeRunner { return &fakeRunner{ok: map[string]bool{}, runs: map[string]int{}} }

func (r *fakeRunner) set(name string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok[name] = ok
}

func (r *fakeRunner) Run(_ context.Context, s config.Script) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[s.Name]++
	if r.ok[s.Name] {
		return Result{OK: true, Detail: "exit status 0"}
	}
	return Result{Detail: "exit status 1"}
}

func (r *fakeRunner) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name]
}
