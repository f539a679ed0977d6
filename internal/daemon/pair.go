package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/peer"
	"github.com/director-lb/director/internal/register"
)

// peerState is what this node tells its peer.
func (d *Daemon) peerState() peer.State {
	d.mu.Lock()
	st := peer.State{Node: d.cfg.Node, ConfigHash: d.pairHash}
	d.mu.Unlock()
	if d.dp != nil {
		st.Decisions = d.dp.Store().Snapshot()
	}
	return st
}

// peerMerge takes the peer's decisions: each newer one replaces ours.
func (d *Daemon) peerMerge(remote peer.State) {
	if d.dp == nil {
		return
	}
	changed, err := d.dp.Store().Merge(remote.Decisions, d.knownTarget)
	// The peer sends its whole state every few seconds: the same refusals
	// are logged once, until they change.
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	d.mu.Lock()
	again := msg == d.mergeRefused
	d.mergeRefused = msg
	d.mu.Unlock()
	if err != nil && !again {
		d.log.Warn("peer sent decisions that were not taken", "peer", remote.Node, "err", err)
	}
	regs := false
	for _, c := range changed {
		d.log.Info("runtime decision from peer", "peer", remote.Node, "kind", string(c.Kind), "target", c.Target, "action", string(c.Action), "weight", c.Weight, "decided_by", c.Node, "at", c.At)
		regs = regs || c.Kind == decisions.KindRegistration
	}
	if regs {
		d.refreshRegistrations()
	} else if len(changed) > 0 {
		d.dp.Poke()
	}
}

// knownTarget vets a decision from the peer against this node's
// configuration: an override must name one of its real servers
// (registered ones included), a registration a service that takes them,
// with an allowed address, the service's port and a weight up to its
// max_weight. A pair whose files differ for a while (a rolling change)
// loses nothing: the peer sends its whole state again every few seconds.
func (d *Daemon) knownTarget(dec decisions.Decision) error {
	d.mu.Lock()
	eff, file := d.eff, d.cfg
	d.mu.Unlock()
	svc, addr, _ := strings.Cut(dec.Target, "/")
	if addr == "" {
		svc, addr = "", dec.Target
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%s %s: %w", dec.Kind, dec.Target, err)
	}
	if dec.Kind == decisions.KindOverride {
		for _, s := range eff.Services {
			if (svc == "" || s.Name == svc) && listed(s.RealServers, ap) {
				return nil
			}
		}
		return fmt.Errorf("override %s: no such real server here", dec.Target)
	}
	for _, s := range file.Services {
		if s.Name != svc {
			continue
		}
		r := s.Registration
		switch {
		case r == nil:
			return fmt.Errorf("registration %s: service %s takes no registrations here", dec.Target, svc)
		case int(ap.Port()) != s.Port:
			return fmt.Errorf("registration %s: service %s is on port %d", dec.Target, svc, s.Port)
		case !slices.ContainsFunc(r.Prefixes, func(p netip.Prefix) bool { return p.Contains(ap.Addr()) }):
			return fmt.Errorf("registration %s: address not allowed for service %s", dec.Target, svc)
		case dec.Weight > r.MaxWeight:
			return fmt.Errorf("registration %s: weight %d over service %s's max_weight %d", dec.Target, dec.Weight, svc, r.MaxWeight)
		}
		return nil
	}
	return fmt.Errorf("registration %s: no service %s here", dec.Target, svc)
}

// peerStatus is the pairing's state, nil without a peer sync.
func (d *Daemon) peerStatus() *peer.Status {
	d.mu.Lock()
	a := d.api
	d.mu.Unlock()
	rt := a.runtime()
	if rt == nil || rt.syncer == nil {
		return nil
	}
	st := rt.syncer.Status()
	return &st
}

// pools are the services that take registrations, from the file's configuration.
func (d *Daemon) pools() map[string]register.Pool {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	out := map[string]register.Pool{}
	for _, s := range cfg.Services {
		if r := s.Registration; r != nil {
			out[s.Name] = register.Pool{Service: s.Name, Port: s.Port, Allowed: r.Prefixes, MaxWeight: r.MaxWeight, Family: s.AddrFamily}
		}
	}
	return out
}

// registrar is the register.Backend: registrations are decisions, kept,
// replicated and turned into real servers like the configured ones.
type registrar struct{ d *Daemon }

func (r registrar) Register(reg register.Registration) error {
	d := r.d
	if configured(d.fileConfig(), reg.Service, reg.Addr) {
		return nil // already in the file: nothing to add
	}
	dec := decisions.Decision{Kind: decisions.KindRegistration, Target: reg.Service + "/" + reg.Addr.String(),
		Action: decisions.ActionRegister, Weight: reg.Weight, Node: d.dp.Node()}
	return d.decide(dec)
}

func (r registrar) Deregister(service string, ap netip.AddrPort) error {
	d := r.d
	if configured(d.fileConfig(), service, ap) {
		return fmt.Errorf("%s/%s is in the configuration file, not registered: use director drain", service, ap)
	}
	target := service + "/" + ap.String()
	if !slices.ContainsFunc(d.dp.Store().Registrations(service), func(x decisions.Decision) bool { return x.Target == target }) {
		return fmt.Errorf("%s is not registered", target)
	}
	return d.decide(decisions.Decision{Kind: decisions.KindRegistration, Target: target, Action: decisions.ActionDeregister, Node: d.dp.Node()})
}

// decide records a local registration decision, applies it and tells the
// peer. A refusal the caller should read (a pool at its cap, a newer
// decision for the same server) is a register.ErrRefused: a 409.
func (d *Daemon) decide(dec decisions.Decision) error {
	changed, err := d.dp.Store().Put(dec)
	var sup *decisions.SupersededError
	if errors.Is(err, decisions.ErrLimit) || errors.As(err, &sup) {
		return fmt.Errorf("%w: %w", register.ErrRefused, err)
	}
	if err != nil {
		return err
	}
	if changed {
		d.log.Info("registration", "target", dec.Target, "action", string(dec.Action), "weight", dec.Weight)
		d.refreshRegistrations()
		d.kickPeer()
	}
	return nil
}

func (d *Daemon) fileConfig() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// refreshRegistrations asks registrationLoop to re-derive the dataplane's
// configuration. It does not wait: its callers (the peer syncer, the API
// handlers) must never block on reloadMu, which a reload holds while it
// stops the syncer.
func (d *Daemon) refreshRegistrations() {
	select {
	case d.regKick <- struct{}{}:
	default:
	}
}

// registrationLoop applies registration changes, one pass for any number
// of them, until ctx ends.
func (d *Daemon) registrationLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.regKick:
		}
		d.reloadMu.Lock()
		if err := d.applyData(d.fileConfig()); err != nil {
			d.log.Error("registrations applied with errors", "err", err)
		}
		d.reloadMu.Unlock()
	}
}

// applyData gives the dataplane and the checks cfg plus the registered
// real servers. Callers hold reloadMu (or run before Run).
func (d *Daemon) applyData(cfg *config.Config) error {
	if d.dp == nil {
		return nil
	}
	eff := withRegistrations(cfg, d.dp.Store())
	d.mu.Lock()
	d.eff = eff
	d.mu.Unlock()
	return d.dp.SetConfig(eff)
}

// configured reports whether ap is a real server of service in the file.
func configured(cfg *config.Config, service string, ap netip.AddrPort) bool {
	for _, s := range cfg.Services {
		if s.Name == service {
			return listed(s.RealServers, ap)
		}
	}
	return false
}

// listed reports whether ap is one of rs.
func listed(rs []config.RealServer, ap netip.AddrPort) bool {
	return slices.ContainsFunc(rs, func(r config.RealServer) bool { return r.Addr == ap.Addr() && r.Port == int(ap.Port()) })
}

// withRegistrations is cfg with each registration pool's live
// registrations added as real servers, marked Registered. A registration
// the pool no longer allows (the file changed since) is left out; one of a
// server the file lists is the file's.
func withRegistrations(cfg *config.Config, st *decisions.Store) *config.Config {
	out := *cfg
	out.Services = slices.Clone(cfg.Services)
	for i := range out.Services {
		s := &out.Services[i]
		r := s.Registration
		if r == nil {
			continue
		}
		// Clipped, so that the appends below never write into cfg's array.
		s.RealServers = slices.Clip(s.RealServers)
		for _, dec := range st.Registrations(s.Name) {
			ap, err := netip.ParseAddrPort(dec.Target[len(s.Name)+1:])
			if err != nil || int(ap.Port()) != s.Port || listed(cfg.Services[i].RealServers, ap) ||
				!slices.ContainsFunc(r.Prefixes, func(p netip.Prefix) bool { return p.Contains(ap.Addr()) }) || dec.Weight > r.MaxWeight {
				continue
			}
			w := dec.Weight
			s.RealServers = append(s.RealServers, config.RealServer{Address: ap.Addr().String(), Addr: ap.Addr(), Port: int(ap.Port()), Weight: &w, Registered: true})
		}
	}
	return &out
}

// pruneEvery is how often withdrawn decisions older than
// decisions.TombstoneTTL are dropped while the daemon runs, so that a long
// uptime does not keep every withdrawal ever made.
const pruneEvery = time.Hour

// pruneLoop prunes the decision store every period until ctx ends.
func (d *Daemon) pruneLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.dp.Store().Prune(decisions.TombstoneTTL)
		switch {
		case err != nil:
			d.log.Warn("runtime decisions: prune withdrawn ones", "err", err)
		case n > 0:
			d.log.Info("runtime decisions: dropped old withdrawn ones", "count", n)
		}
	}
}
