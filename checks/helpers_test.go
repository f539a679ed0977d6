package checks

import (
	"context"
	"io"
	"log"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
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

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
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
		c.now = next.when
		c.mu.Unlock()
		next.f()
	}
}

// pending returns the due times of live timers, sorted.
func (c *fakeClock) pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.timers {
		if !t.done {
			out = append(out, t.when)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// proberFunc adapts a function to Prober.
type proberFunc func(ctx context.Context, t Target) Result

func (f proberFunc) Probe(ctx context.Context, t Target) Result { return f(ctx, t) }

// noLeaks fails the test if goroutines started after it are still running
// once the test and its other cleanups are done (after a moment to settle).
// Call it first, so that its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf)
		}
	})
}

// listen opens a TCP listener on loopback, closed at the end of the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func addrOf(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// serveConns accepts connections and hands each to handle in a goroutine
// until the listener closes; the returned func closes the listener and
// waits for the handlers, which must end when their connection is closed.
func serveConns(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

func probe(t *testing.T, p Prober, addr netip.AddrPort, timeout time.Duration) Result {
	t.Helper()
	return ProbeOnce(context.Background(), p, Target{Addr: addr, Server: addr}, timeout)
}

func mustProber(t *testing.T, s Spec) Prober {
	t.Helper()
	p, err := NewProber(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantUp(t *testing.T, r Result) {
	t.Helper()
	if !r.OK {
		t.Fatalf("want up, got down: %s", r.Reason)
	}
}

func wantDown(t *testing.T, r Result, reason string) {
	t.Helper()
	if r.OK {
		t.Fatalf("want down (%q), got up: %s", reason, r.Reason)
	}
	if !strings.Contains(r.Reason, reason) {
		t.Fatalf("reason %q, want it to contain %q", r.Reason, reason)
	}
}

// quietLog swallows the complaints of servers that meet misbehaving checks.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
