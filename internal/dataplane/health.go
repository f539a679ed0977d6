package dataplane

import (
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
)

// checkRunner is the part of *checks.Manager health uses; tests give a
// fake one whose statuses they set.
type checkRunner interface {
	Set(cs []checks.Check) (added, removed int, err error)
	Status(id checks.ID) (checks.Status, bool)
	Close()
}

// health runs the configured checks (on every node, so a new master knows
// at once which real servers are healthy) and turns their results into
// weights. Its state (the quorum hysteresis, slow-start ramps) advances
// only on events: a check's transition, a new configuration, a slow-start
// timer. Readers get the last snapshot and never change it.
type health struct {
	log   *slog.Logger
	clock Clock
	mgr   checkRunner
	// onChange hears of every check transition and every slow-start step,
	// after the snapshot is updated. It must not block.
	onChange func()

	mu       sync.Mutex
	services []healthService
	// byServer finds a service's real server for status, which state
	// asks for every server on every call (each metrics scrape).
	byServer map[serverKey]*healthServer
	// byCheck finds the services a check's transition may change.
	byCheck map[checks.ID][]int
	// weights is the snapshot: replaced on every change, never mutated,
	// so readers may keep it.
	weights map[string]checks.ServiceWeights
	timer   checks.Timer // next slow-start step
	closed  bool
}

type healthService struct {
	name   string
	policy checks.Policy
	rs     []healthServer
}

type serverKey struct {
	service string
	addr    netip.AddrPort
}

type healthServer struct {
	addr   netip.AddrPort
	weight int
	ids    []checks.ID
}

// newHealth returns health with no checks; mgr builds its check runner,
// given the event and result hooks to call.
func newHealth(log *slog.Logger, clock Clock, onChange func(), mgr func(onEvent func(checks.Event)) checkRunner) *health {
	h := &health{log: log, clock: clock, onChange: onChange, weights: map[string]checks.ServiceWeights{}}
	h.mgr = mgr(h.event)
	return h
}

// setConfig replaces the checks (unchanged checks keep their history) and
// recomputes every service's weights.
func (h *health) setConfig(cfg *config.Config) error {
	var all []checks.Check
	var svcs []healthService
	for i := range cfg.Services {
		s := &cfg.Services[i]
		hs := healthService{name: s.Name, policy: checks.Policy{
			RemoveFailed: s.OnFailure == "remove",
			SlowStart:    s.SlowStart.D(),
			Quorum:       s.Quorum,
			Hysteresis:   s.Hysteresis,
			HasSorry:     s.Sorry.IsValid(),
		}}
		for j := range s.RealServers {
			r := &s.RealServers[j]
			srv := healthServer{addr: netip.AddrPortFrom(r.Addr, uint16(r.Port)), weight: r.EffectiveWeight()}
			for _, c := range s.ChecksOf(r) {
				ch := checks.Check{Server: srv.addr, Spec: c.Spec}
				all = append(all, ch)
				srv.ids = append(srv.ids, ch.ID())
			}
			hs.rs = append(hs.rs, srv)
		}
		svcs = append(svcs, hs)
	}
	idx := make(map[serverKey]*healthServer)
	byCheck := make(map[checks.ID][]int)
	for i := range svcs {
		for j := range svcs[i].rs {
			r := &svcs[i].rs[j]
			idx[serverKey{svcs[i].name, r.addr}] = r
			for _, id := range r.ids {
				if l := byCheck[id]; len(l) == 0 || l[len(l)-1] != i {
					byCheck[id] = append(l, i)
				}
			}
		}
	}
	// The checks first, so that the weights below see the new ones'
	// statuses (Unknown) rather than none (which would count as up).
	_, _, err := h.mgr.Set(all)
	h.mu.Lock()
	h.services, h.byServer, h.byCheck = svcs, idx, byCheck
	h.advance(nil)
	h.mu.Unlock()
	return err
}

// event follows a transition (the Manager has logged it, with its reason):
// the services with that check are recomputed.
func (h *health) event(e checks.Event) {
	h.mu.Lock()
	svcs, ok := h.byCheck[e.ID]
	if ok {
		h.advance(svcs)
	}
	h.mu.Unlock()
	if ok {
		h.onChange()
	}
}

// step is the slow-start timer: weights change with time alone.
func (h *health) step() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.advance(nil)
	h.mu.Unlock()
	h.onChange()
}

// advance recomputes the weights of the services at indexes which (all for
// nil) at the clock's now, publishes a new snapshot, remembers the quorum
// decisions (hysteresis) and arms the next slow-start step. h.mu is held.
//
// Servers whose checks have not yet run count as in the kernel at their
// configured weight: a (re)started director keeps serving rather than
// emptying the table.
func (h *health) advance(which []int) {
	now := h.clock.Now()
	out := maps.Clone(h.weights)
	one := func(i int) {
		s := &h.services[i]
		prev := h.weights[s.name]
		in := checks.ServiceInput{Policy: s.policy, QuorumLost: prev.QuorumLost}
		for _, r := range s.rs {
			si := checks.ServerInput{Server: r.addr, Weight: r.weight, InKernel: true, Current: r.weight}
			var sts []checks.Status
			for _, id := range r.ids {
				if st, ok := h.mgr.Status(id); ok {
					sts = append(sts, st)
				}
			}
			si.SetHealth(sts...)
			in.Servers = append(in.Servers, si)
		}
		w := checks.Compute(in, now)
		if w.QuorumLost != prev.QuorumLost {
			h.log.Warn("service quorum changed", "service", s.name, "lost", w.QuorumLost, "live_weight", w.LiveWeight, "sorry_server", w.Sorry)
		}
		out[s.name] = w
	}
	if which == nil {
		// A new configuration keeps the quorum memory of services that
		// stay: rebuild from the old snapshot, dropping removed ones.
		kept := make(map[string]checks.ServiceWeights, len(h.services))
		for i := range h.services {
			one(i)
			kept[h.services[i].name] = out[h.services[i].name]
		}
		out = kept
	} else {
		for _, i := range which {
			one(i)
		}
	}
	h.weights = out
	var next time.Time
	for _, w := range out {
		if !w.NextChange.IsZero() && (next.IsZero() || w.NextChange.Before(next)) {
			next = w.NextChange
		}
	}
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	if !next.IsZero() && !h.closed {
		h.timer = h.clock.AfterFunc(next.Sub(now), h.step)
	}
}

// snapshot is the weights as last decided; the caller must not change it.
func (h *health) snapshot() map[string]checks.ServiceWeights {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.weights
}

// status reports a real server's health and the reason, for state.
func (h *health) status(service string, addr netip.AddrPort) (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.byServer[serverKey{service, addr}]
	if !ok {
		return "", ""
	}
	if len(r.ids) == 0 {
		return "no checks", ""
	}
	var sts []checks.Status
	reason := ""
	for _, id := range r.ids {
		if st, ok := h.mgr.Status(id); ok {
			sts = append(sts, st)
			if st.Health != checks.Up || reason == "" {
				reason = st.Last.Reason
			}
		}
	}
	var si checks.ServerInput
	si.SetHealth(sts...)
	return si.Health.String(), reason
}

func (h *health) close() {
	h.mu.Lock()
	h.closed = true
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	h.mgr.Close()
}
