package daemon

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/config"
)

// health runs the configured checks (on every node, so a new master knows
// at once which real servers are healthy) and turns their results into the
// weights the dataplane programs. Weight changes go through the dataplane's
// reconciler, never around it.
type health struct {
	log *slog.Logger
	mgr *checks.Manager
	now func() time.Time

	mu       sync.Mutex
	services []healthService
	// byServer finds a service's real server for status, which state
	// asks for every server on every call (each metrics scrape).
	byServer map[serverKey]*healthServer
	quorum   map[string]bool // service name -> quorum lost (hysteresis memory)
	onChange func()          // called after the weights changed
	// observe, if set, sees every check attempt (metrics); set before checks run.
	observe atomic.Pointer[func(checks.Result)]
	timer   *time.Timer // next slow-start step
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

func newHealth(log *slog.Logger) *health {
	h := &health{log: log, now: time.Now, quorum: map[string]bool{}}
	h.mgr = checks.NewManager(checks.Options{Logger: log, OnEvent: h.event, OnResult: h.result})
	return h
}

// setConfig replaces the checks; unchanged checks keep their history.
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
	for i := range svcs {
		for j := range svcs[i].rs {
			idx[serverKey{svcs[i].name, svcs[i].rs[j].addr}] = &svcs[i].rs[j]
		}
	}
	h.mu.Lock()
	h.services, h.byServer = svcs, idx
	h.mu.Unlock()
	_, _, err := h.mgr.Set(all)
	return err
}

// event follows a transition; the Manager has logged it, with its reason.
func (h *health) event(e checks.Event) {
	if h.onChange != nil {
		h.onChange()
	}
}

func (h *health) result(_ checks.ID, r checks.Result) {
	if f := h.observe.Load(); f != nil {
		(*f)(r)
	}
}

// weights computes every service's desired weights now. Servers whose
// checks have not yet run count as in the kernel at their configured weight:
// a (re)started director keeps serving rather than emptying the table.
func (h *health) weights() map[string]checks.ServiceWeights {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	out := make(map[string]checks.ServiceWeights, len(h.services))
	var next time.Time
	for _, s := range h.services {
		in := checks.ServiceInput{Policy: s.policy, QuorumLost: h.quorum[s.name]}
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
		if w.QuorumLost != h.quorum[s.name] {
			h.log.Warn("service quorum changed", "service", s.name, "lost", w.QuorumLost, "live_weight", w.LiveWeight, "sorry_server", w.Sorry)
		}
		h.quorum[s.name] = w.QuorumLost
		out[s.name] = w
		if !w.NextChange.IsZero() && (next.IsZero() || w.NextChange.Before(next)) {
			next = w.NextChange
		}
	}
	// Slow start changes weights with time alone: look again then.
	if !next.IsZero() && h.onChange != nil {
		if h.timer != nil {
			h.timer.Stop()
		}
		h.timer = time.AfterFunc(next.Sub(now), h.onChange)
	}
	return out
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
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	h.mgr.Close()
}
