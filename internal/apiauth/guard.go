// Package apiauth is what the pair API's endpoints share to authenticate
// callers: bearer tokens kept as digests, read from root-only files, and a
// guard that throttles addresses that keep failing.
package apiauth

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// GuardOptions tune a Guard; zero values take the defaults.
type GuardOptions struct {
	// Every and Burst are each address's failure budget: Burst failures
	// at once, then one per Every (defaults 10 and 10s).
	Every time.Duration
	Burst int
	// MaxSources bounds the addresses tracked (default 4096); past it, new
	// addresses share one budget, so a scan from many addresses is
	// throttled as a whole and memory stays bounded.
	MaxSources int
	// LogEvery and LogBurst sample the failure log lines (defaults 1 per
	// 10s after 3): each line says how many failures went unlogged since.
	LogEvery time.Duration
	LogBurst int
	Log      *slog.Logger
	Now      func() time.Time
}

// Guard counts failed authentications per source address and tells when
// an address has used up its budget: its requests are then refused
// without being looked at, so a token scan costs one answer, not one
// comparison and one log line, per try. Safe for concurrent use.
type Guard struct {
	o     GuardOptions
	mu    sync.Mutex
	srcs  map[netip.Addr]*rate.Limiter
	spill *rate.Limiter // shared by addresses past MaxSources
	logs  *rate.Limiter

	failures, throttled, unlogged atomic.Uint64
}

// Stats are a Guard's counters, for metrics.
type Stats struct {
	Failures  uint64 // failed authentications
	Throttled uint64 // requests refused because their address was over budget
}

// NewGuard makes a Guard.
func NewGuard(o GuardOptions) *Guard {
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 4096
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 10 * time.Second
	}
	if o.LogBurst <= 0 {
		o.LogBurst = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{
		o: o, srcs: map[netip.Addr]*rate.Limiter{},
		spill: rate.NewLimiter(rate.Every(o.Every), o.Burst),
		logs:  rate.NewLimiter(rate.Every(o.LogEvery), o.LogBurst),
	}
}

// source is the address a request came from, IPv6 to its /64 (one host
// holds a whole /64, and could hop through it); the zero Addr for one
// that does not parse.
func source(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// limiter is src's budget. g.mu is held.
func (g *Guard) limiter(src netip.Addr, create bool) *rate.Limiter {
	if l, ok := g.srcs[src]; ok {
		return l
	}
	if !create {
		return nil
	}
	if len(g.srcs) >= g.o.MaxSources {
		// Forget addresses whose budget is whole again: they are as new.
		now := g.o.Now()
		for a, l := range g.srcs {
			if l.TokensAt(now) >= float64(g.o.Burst) {
				delete(g.srcs, a)
			}
		}
		if len(g.srcs) >= g.o.MaxSources {
			return g.spill
		}
	}
	l := rate.NewLimiter(rate.Every(g.o.Every), g.o.Burst)
	g.srcs[src] = l
	return l
}

// Blocked reports whether the address of remoteAddr (a request's
// RemoteAddr) has used up its budget; a blocked request is counted.
func (g *Guard) Blocked(remoteAddr string) bool {
	g.mu.Lock()
	l := g.limiter(source(remoteAddr), false)
	if l == nil && len(g.srcs) >= g.o.MaxSources {
		l = g.spill
	}
	blocked := l != nil && l.TokensAt(g.o.Now()) < 1
	g.mu.Unlock()
	if blocked {
		g.throttled.Add(1)
	}
	return blocked
}

// Failed records a failed authentication from remoteAddr on endpoint what,
// and logs it if the sample allows. The presented token is never logged:
// it may be a near miss of the real one.
func (g *Guard) Failed(remoteAddr, what string) {
	g.failures.Add(1)
	now := g.o.Now()
	g.mu.Lock()
	g.limiter(source(remoteAddr), true).AllowN(now, 1)
	g.mu.Unlock()
	if !g.logs.AllowN(now, 1) {
		g.unlogged.Add(1)
		return
	}
	g.o.Log.Warn("api: refused unauthenticated request", "endpoint", what, "remote", remoteAddr,
		"unlogged_since_last", g.unlogged.Swap(0), "failures_total", g.failures.Load())
}

// Stats reads the counters.
func (g *Guard) Stats() Stats {
	return Stats{Failures: g.failures.Load(), Throttled: g.throttled.Load()}
}
