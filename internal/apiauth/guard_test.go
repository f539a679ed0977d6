package apiauth

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testlog"
)

func TestGuard(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var logs testlog.Buffer
	g := NewGuard(GuardOptions{Every: 10 * time.Second, Burst: 3, MaxSources: 4, LogEvery: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	const a = "192.0.2.1:4000"
	for i := range 3 {
		if g.Blocked(a) {
			t.Fatalf("blocked after %d failures, budget 3", i)
		}
		g.Failed(a, "register")
	}
	if !g.Blocked("192.0.2.1:5000") {
		t.Error("not blocked after the budget, from another port of the same address")
	}
	if g.Blocked("192.0.2.2:4000") {
		t.Error("another address blocked")
	}
	now = now.Add(10 * time.Second)
	if g.Blocked(a) {
		t.Error("still blocked once a failure's worth of time passed")
	}
	// IPv6: one /64 is one source.
	for range 3 {
		g.Failed("[2001:db8::1]:1", "peer")
	}
	if !g.Blocked("[2001:db8::ffff]:2") {
		t.Error("another address of the same /64 not blocked")
	}
	if st := g.Stats(); st.Failures != 6 || st.Throttled != 2 {
		t.Errorf("stats %+v, want 6 failures, 2 throttled", st)
	}
	if n := strings.Count(logs.String(), "unauthenticated"); n != 3 {
		t.Errorf("%d log lines, want the 3 of the log burst:\n%s", n, logs.String())
	}
	now = now.Add(time.Minute)
	g.Failed(a, "register")
	if !strings.Contains(logs.String(), "unlogged_since_last=3") {
		t.Errorf("the next line does not count the unlogged ones:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "token") {
		t.Error("a log line mentions a token")
	}
}

// Past MaxSources new addresses share one budget, and the map stays
// bounded however many addresses fail.
func TestGuardBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := NewGuard(GuardOptions{Burst: 2, MaxSources: 8, Now: func() time.Time { return now }})
	for i := range 1000 {
		g.Failed(fmt.Sprintf("198.51.%d.%d:1", i/256, i%256), "register")
	}
	if len(g.srcs) > 8 {
		t.Errorf("%d sources tracked, bound 8", len(g.srcs))
	}
	if !g.Blocked("203.0.113.9:1") {
		t.Error("a new address past the bound is not held to the shared, spent budget")
	}
}
