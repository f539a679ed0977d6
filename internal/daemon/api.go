package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/internal/apiauth"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/pairtls"
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
	// tls is the TLS material; nil serves plain HTTP (api.insecure).
	tls     *pairtls.Material
	handler http.Handler
	syncer  *peer.Syncer // nil without a peer token
	cancel  context.CancelFunc
	done    chan struct{}
}

// apiSecrets are what api's files hold: the tokens and a digest of the
// TLS files.
type apiSecrets struct {
	peer, register string
	tls            [32]byte
}

// readAPISecrets reads api's token and TLS files; director validate checks
// them the same way, so a start or reload that would fail on them is
// stopped by the unit's ExecStartPre.
func readAPISecrets(a config.API) (apiSecrets, *pairtls.Material, error) {
	t, err := readAPITokens(a)
	if err != nil || a.TLS == nil {
		return t, nil, err
	}
	m, err := pairtls.Load(pairtls.Files{Cert: a.TLS.CertFile, Key: a.TLS.KeyFile, CA: a.TLS.CAFile, PeerSHA256: a.TLS.PeerSHA256}, time.Now())
	if err != nil {
		return t, nil, fmt.Errorf("api.tls: %w", err)
	}
	t.tls = m.Digest
	return t, m, nil
}

func readAPITokens(a config.API) (apiSecrets, error) {
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
	_, _, err := readAPISecrets(cfg.API)
	return err
}

// newAPIRuntime builds what cfg's api serves, without starting anything.
func (d *Daemon) newAPIRuntime(cfg *config.Config, secrets apiSecrets, m *pairtls.Material) (*apiRuntime, error) {
	a := cfg.API
	rt := &apiRuntime{conf: a, secrets: secrets, tls: m, done: make(chan struct{})}
	mux := http.NewServeMux()
	if a.PeerTokenFile != "" {
		pc := peer.Config{Peer: a.Peer, Token: secrets.peer, Interval: a.SyncInterval.D(),
			OnAuthFailure: func(r *http.Request) { d.authGuard().Failed(r.RemoteAddr, "peer") }}
		if m != nil {
			// The peer proves itself with its certificate as well as the
			// token; real servers registering need no certificate.
			pc.TLS, pc.RequireClientCert = m.Client, true
		}
		syncer, err := peer.New(pc,
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
	s := &apiServer{addr: addr, served: make(chan struct{})}
	s.ln = tlsByRuntime{ln, s}
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
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("api listener stopped", "err", err)
		}
	}()
	return s, nil
}

// tlsByRuntime hands each new connection to TLS with the material of the
// runtime in force when it arrives, or as it is under api.insecure: a
// reload changes certificates, or between TLS and plain HTTP, without
// closing the listener. http.Server does the handshake of a *tls.Conn and
// fills in Request.TLS.
type tlsByRuntime struct {
	net.Listener
	s *apiServer
}

func (l tlsByRuntime) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if m := l.s.rt.Load().tls; m != nil {
		return tls.Server(c, m.Server), nil
	}
	return c, nil
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
	secrets, m, err := readAPISecrets(cfg.API)
	if err != nil {
		return fmt.Errorf("api not reloaded, the running one stays: %w", err)
	}
	if rt := cur.runtime(); rt != nil && rt.conf == cfg.API && rt.secrets == secrets {
		cur.kick()
		return nil
	}
	rt, err := d.newAPIRuntime(cfg, secrets, m)
	if err != nil {
		return fmt.Errorf("api not reloaded, the running one stays: %w", err)
	}
	if cur != nil && cur.addr == cfg.API.Listen {
		rt.start()
		cur.rt.Swap(rt).stop()
		d.log.Info("api reloaded", "listen", cfg.API.Listen, "peer", cfg.API.Peer, "registration", cfg.API.RegistrationTokenFile != "", "tls", m != nil)
		return nil
	}
	s, err := d.listenAPI(cfg.API.Listen, rt)
	if err != nil {
		return fmt.Errorf("api not moved, the running one stays: %w", err)
	}
	rt.start()
	d.setAPI(s)
	cur.close()
	d.log.Info("api listening", "listen", cfg.API.Listen, "peer", cfg.API.Peer, "registration", cfg.API.RegistrationTokenFile != "", "tls", m != nil)
	if m == nil {
		d.log.Warn("api is plain HTTP (api.insecure): its tokens cross the network in the clear")
	}
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
