package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/internal/apiauth"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/peer"
	"github.com/director-lb/director/internal/register"
)

// apiServer is the listener of api.listen. What it serves (handlers,
// tokens, the peer syncer) is an apiRuntime, built whole before it is
// swapped in: a reload whose token file cannot be read, or whose new
// listener cannot be had, leaves the running one serving as it was.
type apiServer struct {
	addr   string
	ln     net.Listener
	srv    *http.Server
	rt     atomic.Pointer[apiRuntime]
	served chan struct{} // closed when Serve returns
}

// apiRuntime is one generation of what the API serves.
type apiRuntime struct {
	// conf and secrets are what it was built from: a reload that changes
	// neither keeps it.
	conf    config.API
	secrets apiSecrets
	handler http.Handler
	syncer  *peer.Syncer // nil without a peer token
	cancel  context.CancelFunc
	done    chan struct{}
}

// apiSecrets are what api's files hold.
type apiSecrets struct{ peer, register string }

// readAPISecrets reads api's token files; director validate checks them
// the same way, so a start or reload that would fail on them is stopped
// by the unit's ExecStartPre.
func readAPISecrets(a config.API) (apiSecrets, error) {
	var t apiSecrets
	var err error
	if a.PeerTokenFile != "" {
		if t.peer, err = apiauth.ReadTokenFile(a.PeerTokenFile); err != nil {
			return t, fmt.Errorf("api.peer_token_file: %w", err)
		}
	}
	if a.RegistrationTokenFile != "" {
		if t.register, err = apiauth.ReadTokenFile(a.RegistrationTokenFile); err != nil {
			return t, fmt.Errorf("api.registration_token_file: %w", err)
		}
	}
	return t, nil
}

// CheckAPIFiles reads the files cfg's api section names, as the daemon
// will at start and reload (director validate).
func CheckAPIFiles(cfg *config.Config) error {
	if cfg.API.Listen == "" {
		return nil
	}
	_, err := readAPISecrets(cfg.API)
	return err
}

// newAPIRuntime builds what cfg's api serves, without starting anything.
func (d *Daemon) newAPIRuntime(cfg *config.Config, secrets apiSecrets) (*apiRuntime, error) {
	a := cfg.API
	rt := &apiRuntime{conf: a, secrets: secrets, done: make(chan struct{})}
	mux := http.NewServeMux()
	if a.PeerTokenFile != "" {
		syncer, err := peer.New(peer.Config{Peer: a.Peer, Token: secrets.peer, Interval: a.SyncInterval.D(),
			OnAuthFailure: func(r *http.Request) { d.authGuard().Failed(r.RemoteAddr, "peer") }},
			d.peerState, d.peerMerge, d.log.With("part", "peer"))
		if err != nil {
			return nil, fmt.Errorf("peer sync: %w", err)
		}
		rt.syncer = syncer
		mux.Handle(peer.SyncPath, syncer.Handler())
	}
	if a.RegistrationTokenFile != "" {
		if d.dp == nil {
			return nil, errors.New("api.registration_token_file: no services to register into")
		}
		h, err := register.New(secrets.register, d.pools, registrar{d}, d.log.With("part", "register"))
		if err != nil {
			return nil, fmt.Errorf("registration: %w", err)
		}
		h.OnAuthFailure = func(r *http.Request) { d.authGuard().Failed(r.RemoteAddr, "register") }
		mux.Handle("/v1/register", h)
		mux.Handle("/v1/deregister", h)
	}
	rt.handler = mux
	return rt, nil
}

// start runs the runtime's peer syncer until stop.
func (rt *apiRuntime) start() {
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	go func() {
		defer close(rt.done)
		if rt.syncer != nil {
			rt.syncer.Run(ctx)
		}
	}()
}

func (rt *apiRuntime) stop() {
	rt.cancel()
	<-rt.done
}

// listenAPI binds addr and serves rt there.
func (d *Daemon) listenAPI(addr string, rt *apiRuntime) (*apiServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api listener: %w", err)
	}
	s := &apiServer{addr: addr, ln: ln, served: make(chan struct{})}
	s.rt.Store(rt)
	guard := d.authGuard()
	s.srv = &http.Server{
		// Each request goes to the runtime in force when it arrives; an
		// address that keeps failing to authenticate is turned away first.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if guard.Blocked(r.RemoteAddr) {
				w.Header().Set("Retry-After", "10")
				http.Error(w, "too many failed authentications from this address; retry later", http.StatusTooManyRequests)
				return
			}
			s.rt.Load().handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("api listener stopped", "err", err)
		}
	}()
	return s, nil
}

// runtime is what s serves now; nil for a nil s.
func (s *apiServer) runtime() *apiRuntime {
	if s == nil {
		return nil
	}
	return s.rt.Load()
}

func (s *apiServer) close() {
	if s == nil {
		return
	}
	s.srv.Close()
	<-s.served
	s.rt.Load().stop()
}

// kick asks for a sync with the peer soon (after a local decision).
func (s *apiServer) kick() {
	if rt := s.runtime(); rt != nil && rt.syncer != nil {
		rt.syncer.Kick()
	}
}

// reloadAPI moves the API to cfg's. The new generation is built first
// (token files read, handlers made, a new listener bound if the address
// changed); only once it is whole does it replace the running one, so
// any failure leaves the API serving as it was. A reload that changes
// neither the settings nor the files keeps it and tells the peer of the
// new configuration at once.
func (d *Daemon) reloadAPI(cfg *config.Config) error {
	d.mu.Lock()
	cur := d.api
	d.mu.Unlock()
	if cfg.API.Listen == "" {
		d.setAPI(nil)
		cur.close()
		return nil
	}
	secrets, err := readAPISecrets(cfg.API)
	if err != nil {
		return fmt.Errorf("api not reloaded, the running one stays: %w", err)
	}
	if rt := cur.runtime(); rt != nil && rt.conf == cfg.API && rt.secrets == secrets {
		cur.kick()
		return nil
	}
	rt, err := d.newAPIRuntime(cfg, secrets)
	if err != nil {
		return fmt.Errorf("api not reloaded, the running one stays: %w", err)
	}
	if cur != nil && cur.addr == cfg.API.Listen {
		rt.start()
		cur.rt.Swap(rt).stop()
		d.log.Info("api reloaded", "listen", cfg.API.Listen, "peer", cfg.API.Peer, "registration", cfg.API.RegistrationTokenFile != "")
		return nil
	}
	s, err := d.listenAPI(cfg.API.Listen, rt)
	if err != nil {
		return fmt.Errorf("api not moved, the running one stays: %w", err)
	}
	rt.start()
	d.setAPI(s)
	cur.close()
	d.log.Info("api listening", "listen", cfg.API.Listen, "peer", cfg.API.Peer, "registration", cfg.API.RegistrationTokenFile != "")
	return nil
}

func (d *Daemon) setAPI(s *apiServer) {
	d.mu.Lock()
	d.api = s
	d.mu.Unlock()
}

func (d *Daemon) kickPeer() {
	d.mu.Lock()
	a := d.api
	d.mu.Unlock()
	a.kick()
}

// authGuard is the throttle of failed authentications, one per daemon so
// that it outlives reloads of the API.
func (d *Daemon) authGuard() *apiauth.Guard {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.auth == nil {
		d.auth = apiauth.NewGuard(apiauth.GuardOptions{Log: d.log.With("part", "api")})
	}
	return d.auth
}
