package ipvs

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func tcp(addr string, port uint16) ServiceKey {
	a := netip.MustParseAddr(addr)
	return ServiceKey{Family: familyOf(a), Protocol: TCP, Addr: a, Port: port}
}

func key(p Protocol, addr string, port uint16) ServiceKey {
	k := tcp(addr, port)
	k.Protocol = p
	return k
}

func dst(addr string, port uint16, w int32) Destination {
	return Destination{Addr: netip.MustParseAddr(addr), Port: port, Weight: w, Forward: Route}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func svc(k ServiceKey, dests ...Destination) Service {
	return Service{Key: k, Scheduler: "wrr", Destinations: dests}
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logRecorder is a slog.Handler that keeps "LEVEL message" lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, b.String())
	return nil
}

func (h *logRecorder) matching(substr string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range h.lines {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

type env struct {
	t     *testing.T
	fake  *Fake
	clock *clock
	logs  *logRecorder
	cfg   Config
	rec   *Reconciler
}

// newEnv builds a Fake and a Reconciler over it; mod may adjust the Config.
func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, fake: NewFake(), clock: newClock(), logs: &logRecorder{}}
	e.cfg = Config{Kernel: e.fake, Now: e.clock.Now, Logger: slog.New(e.logs)}
	for _, m := range mod {
		m(&e.cfg)
	}
	e.rec = e.restart()
	return e
}

// restart makes a new Reconciler with the same Config, as a daemon restart would.
func (e *env) restart() *Reconciler {
	e.t.Helper()
	r, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.rec = r
	return r
}

// apply runs Apply, fails the test on error, and returns the result and the
// writes it made.
func (e *env) apply(desired ...Service) (Result, []string) {
	e.t.Helper()
	e.fake.ResetOps()
	res, err := e.rec.Apply(context.Background(), desired)
	if err != nil {
		e.t.Fatalf("Apply: %v", err)
	}
	return res, e.writes()
}

func (e *env) writes() []string {
	var out []string
	for _, o := range e.fake.Writes() {
		out = append(out, o.String())
	}
	return out
}

// dump renders services one line each, destinations indented, ignoring counters.
func dump(svcs []Service) string {
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "%s %s flags=%#x", s.Key, s.Scheduler, s.Flags)
		if s.Persistent {
			fmt.Fprintf(&b, " persistent %s /%d", s.Timeout, s.Netmask)
		}
		if s.PE != "" {
			fmt.Fprintf(&b, " pe %s", s.PE)
		}
		b.WriteString("\n")
		for _, d := range s.Destinations {
			fmt.Fprintf(&b, "  -> %s %s w=%d u=%d l=%d", d.AddrPort(), d.Forward, d.Weight, d.Upper, d.Lower)
			if d.Encap != (Encap{}) {
				fmt.Fprintf(&b, " %s:%d:%s", d.Encap.Type, d.Encap.Port, d.Encap.Checksum)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// mustNormalize returns desired as the kernel should hold it.
func mustNormalize(t *testing.T, desired ...Service) []Service {
	t.Helper()
	n, err := normalizeAll(desired)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkTable fails unless the Fake holds exactly want (normalized) plus extra (as is).
func (e *env) checkTable(want []Service, extra ...Service) {
	e.t.Helper()
	all := append(append([]Service{}, want...), extra...)
	f := NewFake()
	for _, s := range all {
		f.Put(s)
	}
	if got, exp := dump(e.fake.Snapshot()), dump(f.Snapshot()); got != exp {
		e.t.Errorf("kernel table:\n%s\nwant:\n%s", got, exp)
	}
}

func eqStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n  got  %q\n  want %q", what, got, want)
	}
}
