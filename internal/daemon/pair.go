package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/peer"
	"github.com/director-lb/director/internal/register"
)

// apiServer is the HTTP listener of api.listen: the peer sync and, when a
// registration token is configured, self-registration. A reload replaces
// it whole (token files are re-read then); decisions live in the store,
// so nothing is lost with it.
type apiServer struct {
	srv    *http.Server
	ln     net.Listener
	syncer *peer.Syncer
	cancel context.CancelFunc
	done   chan struct{}
	// conf and tokens are what it was started with: a reload that changes
	// neither keeps it running.
	conf   config.API
	tokens apiTokens
}

// apiTokens are the secrets read from api's token files.
type apiTokens struct{ peer, register string }

func readAPITokens(a config.API) (apiTokens, error) {
	var t apiTokens
	var err error
	if a.PeerTokenFile != "" {
		if t.peer, err = register.ReadTokenFile(a.PeerTokenFile); err != nil {
			return t, fmt.Errorf("api.peer_token_file: %w", err)
		}
	}
	if a.RegistrationTokenFile != "" {
		if t.register, err = register.ReadTokenFile(a.RegistrationTokenFile); err != nil {
			return t, fmt.Errorf("api.registration_token_file: %w", err)
		}
	}
	return t, nil
}

// startAPI serves cfg.API if it has a listener; nil otherwise.
func (d *Daemon) startAPI(cfg *config.Config) (*apiServer, error) {
	a := cfg.API
	if a.Listen == "" {
		return nil, nil
	}
	tokens, err := readAPITokens(a)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	var syncer *peer.Syncer
	if a.PeerTokenFile != "" {
		syncer, err = peer.New(peer.Config{Peer: a.Peer, Token: tokens.peer, Interval: a.SyncInterval.D()},
			d.peerState, d.peerMerge, d.log.With("part", "peer"))
		if err != nil {
			return nil, fmt.Errorf("peer sync: %w", err)
		}
		mux.Handle(peer.SyncPath, syncer.Handler())
	}
	if a.RegistrationTokenFile != "" {
		if d.dp == nil {
			return nil, errors.New("api.registration_token_file: no services to register into")
		}
		h, err := register.New(tokens.register, d.pools, registrar{d}, d.log.With("part", "register"))
		if err != nil {
			return nil, fmt.Errorf("registration: %w", err)
		}
		mux.Handle("/v1/register", h)
		mux.Handle("/v1/deregister", h)
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("api listener: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &apiServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
		ln:  ln, syncer: syncer, cancel: cancel, done: make(chan struct{}), conf: a, tokens: tokens,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("api listener stopped", "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		if syncer != nil {
			syncer.Run(ctx)
		}
	}()
	d.log.Info("api listening", "listen", a.Listen, "peer", a.Peer, "registration", a.RegistrationTokenFile != "")
	return s, nil
}

func (s *apiServer) close() {
	if s == nil {
		return
	}
	s.cancel()
	s.srv.Close()
	// Serve may not have taken the listener yet; close it here so that
	// its address is free when this returns.
	s.ln.Close()
	<-s.done
}

// kick asks for a sync with the peer soon (after a local decision).
func (s *apiServer) kick() {
	if s != nil && s.syncer != nil {
		s.syncer.Kick()
	}
}

// reloadAPI keeps the API listener if neither its settings nor its
// tokens changed, telling the peer of the new configuration at once;
// otherwise it starts a new one.
func (d *Daemon) reloadAPI(cfg *config.Config) error {
	d.mu.Lock()
	a := d.api
	d.mu.Unlock()
	if a != nil && a.conf == cfg.API {
		if t, err := readAPITokens(cfg.API); err == nil && t == a.tokens {
			a.kick()
			return nil
		}
	}
	return d.restartAPI(cfg)
}

// restartAPI swaps the API listener for one serving cfg.
func (d *Daemon) restartAPI(cfg *config.Config) error {
	d.mu.Lock()
	old := d.api
	d.api = nil
	d.mu.Unlock()
	old.close()
	s, err := d.startAPI(cfg)
	d.mu.Lock()
	d.api = s
	d.mu.Unlock()
	return err
}

func (d *Daemon) kickPeer() {
	d.mu.Lock()
	a := d.api
	d.mu.Unlock()
	a.kick()
}

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
	changed, err := d.dp.Store().Merge(remote.Decisions)
	if err != nil {
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

// peerStatus is the pairing's state, nil without a peer sync.
func (d *Daemon) peerStatus() *peer.Status {
	d.mu.Lock()
	a := d.api
	d.mu.Unlock()
	if a == nil || a.syncer == nil {
		return nil
	}
	st := a.syncer.Status()
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
	if err := d.decide(dec); err != nil {
		if errors.Is(err, decisions.ErrLimit) {
			return fmt.Errorf("%w: %w", register.ErrFull, err)
		}
		return err
	}
	return nil
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

// decide records a local registration decision, applies it and tells the peer.
func (d *Daemon) decide(dec decisions.Decision) error {
	changed, err := d.dp.Store().Put(dec)
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
