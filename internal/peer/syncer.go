package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/director-lb/director/internal/apiauth"
)

// SyncPath is where a director accepts the peer's state.
const SyncPath = "/v1/peer/sync"

const (
	defaultInterval = 5 * time.Second
	defaultTimeout  = 2 * time.Second
	// maxBackoff caps the wait between attempts to an unreachable peer.
	maxBackoff = time.Minute
)

// Config configures a Syncer.
type Config struct {
	// Peer is "host:port" of the other director's API listener; "" means
	// no peer (the handler still serves).
	Peer string
	// Token is the shared secret, at least 16 bytes.
	Token string
	// Interval is the full sync period (default 5s).
	Interval time.Duration
	// TLS, if set, makes syncs HTTPS with this client configuration (the
	// node's certificate, the pair's CA); nil is plain HTTP.
	TLS *tls.Config
	// RequireClientCert refuses incoming syncs that did not come over TLS
	// with a client certificate the server verified (mutual TLS).
	RequireClientCert bool
	// Client is used for outgoing syncs; nil is a client with a 2s timeout
	// (and TLS, if set).
	Client *http.Client
	// OnAuthFailure, if set, hears of each incoming sync that fails to
	// authenticate (the daemon's throttle, which logs a sample of them);
	// otherwise each is logged here.
	OnAuthFailure func(*http.Request)
}

// Status is how the pairing is doing, for state and metrics.
type Status struct {
	Peer     string `json:"peer,omitempty"`
	PeerNode string `json:"peer_node,omitempty"`
	PeerHash string `json:"peer_hash,omitempty"`
	// HashMismatch is true when the peer's configuration hash, last heard,
	// differs from ours.
	HashMismatch bool `json:"hash_mismatch"`
	// LastContact is when we last heard from the peer, either direction.
	LastContact time.Time `json:"last_contact,omitzero"`
	// LastError is the error of the last outgoing sync, "" if it worked.
	LastError string `json:"last_error,omitempty"`
	Contacts  uint64 `json:"contacts"` // successful outgoing syncs
	Failures  uint64 `json:"failures"` // failed outgoing syncs
	Received  uint64 `json:"received"` // accepted incoming syncs
}

// Syncer exchanges State with the peer in both directions.
type Syncer struct {
	cfg   Config
	token apiauth.Token // the digest incoming syncs are checked against
	url   string
	local func() State
	merge func(State)
	log   *slog.Logger
	kick  chan struct{}

	mu         sync.Mutex
	st         Status
	loggedErr  string    // last error logged, to log each error once
	loggedHash [2]string // (ours, theirs) last logged as a difference
}

// New checks cfg and makes a Syncer. local gives our State; merge takes
// the peer's and is called for both directions, possibly concurrently.
func New(cfg Config, local func() State, merge func(State), log *slog.Logger) (*Syncer, error) {
	token, err := apiauth.NewToken(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("peer token: %w", err)
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("peer sync interval %v is negative", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.Peer != "" {
		if _, _, err := net.SplitHostPort(cfg.Peer); err != nil {
			return nil, fmt.Errorf("peer address %q: want HOST:PORT: %w", cfg.Peer, err)
		}
	}
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: defaultTimeout}
		if cfg.TLS != nil {
			cfg.Client.Transport = &http.Transport{TLSClientConfig: cfg.TLS, TLSHandshakeTimeout: defaultTimeout, IdleConnTimeout: time.Minute}
		}
	}
	if local == nil || merge == nil {
		return nil, errors.New("peer: local and merge are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{
		cfg:   cfg,
		token: token,
		url:   scheme + cfg.Peer + SyncPath,
		local: local,
		merge: merge,
		log:   log.With("peer", cfg.Peer),
		kick:  make(chan struct{}, 1),
		st:    Status{Peer: cfg.Peer},
	}, nil
}

// Handler serves POST SyncPath: it merges the peer's State and replies
// with ours.
func (s *Syncer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SyncPath, s.serveSync)
	return mux
}

func (s *Syncer) serveSync(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		if s.cfg.OnAuthFailure != nil {
			s.cfg.OnAuthFailure(r)
		} else {
			s.log.Warn("peer sync refused: unauthenticated, bad or missing token", "remote", r.RemoteAddr)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="director"`)
		msg := "unauthorized"
		if s.cfg.RequireClientCert {
			msg = "unauthorized: the peer sync needs the peer's certificate (mutual TLS) and token"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return
	}
	remote, err := Decode(http.MaxBytesReader(w, r.Body, MaxStateSize+1))
	if err != nil {
		s.log.Warn("peer sync refused", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	local := s.local()
	if remote.Node == local.Node {
		// Equal node names would break last-writer-wins tie-breaks and
		// most likely mean we are talking to ourselves.
		msg := fmt.Sprintf("peer has our own node name %q", local.Node)
		s.log.Warn("peer sync refused", "remote", r.RemoteAddr, "err", msg)
		http.Error(w, msg, http.StatusConflict)
		return
	}
	s.merge(remote)
	s.heard(remote, local.ConfigHash, true)
	b, err := json.Marshal(s.local())
	if err != nil {
		http.Error(w, "encode state: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// authorized checks the bearer token against its digest: comparing
// fixed-size digests leaks neither the token's bytes nor its length.
func (s *Syncer) authorized(r *http.Request) bool {
	if s.cfg.RequireClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return false
	}
	tok, ok := apiauth.Bearer(r.Header.Get("Authorization"))
	return ok && s.token.Matches(tok)
}

// Kick asks for a sync soon, without waiting (after a local decision).
func (s *Syncer) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run syncs with the peer at once, then every Interval and on Kick, until
// ctx ends. After failures it waits longer (up to a minute), but a Kick
// still syncs at once. With no peer it only waits for ctx.
func (s *Syncer) Run(ctx context.Context) {
	if s.cfg.Peer == "" {
		<-ctx.Done()
		return
	}
	failures := 0
	for {
		if err := s.syncOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
		} else {
			failures = 0
		}
		t := time.NewTimer(backoff(s.cfg.Interval, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff doubles the wait per consecutive failure, up to maxBackoff (or
// the interval, if that is longer).
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, max(interval, maxBackoff))
}

// syncOnce posts our State to the peer and merges its reply.
func (s *Syncer) syncOnce(ctx context.Context) error {
	local := s.local()
	err := s.exchange(ctx, local)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.st.Failures++
		s.st.LastError = err.Error()
		if ctx.Err() == nil && err.Error() != s.loggedErr {
			s.log.Warn("peer sync failed", "err", err)
		}
		s.loggedErr = err.Error()
		return err
	}
	s.st.Contacts++
	s.st.LastError = ""
	if s.loggedErr != "" {
		s.log.Info("peer sync works again")
		s.loggedErr = ""
	}
	return nil
}

func (s *Syncer) exchange(ctx context.Context, local State) error {
	body, err := json.Marshal(local)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("peer sync: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("peer sync: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("peer sync: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	remote, err := Decode(resp.Body)
	if err != nil {
		return fmt.Errorf("peer sync reply: %w", err)
	}
	if remote.Node == local.Node {
		return fmt.Errorf("peer sync reply: peer has our own node name %q", local.Node)
	}
	s.merge(remote)
	s.heard(remote, local.ConfigHash, false)
	return nil
}

// heard records the peer's identity and logs a configuration difference
// once per change of either hash.
func (s *Syncer) heard(remote State, ourHash string, inbound bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.PeerNode = remote.Node
	s.st.PeerHash = remote.ConfigHash
	s.st.LastContact = time.Now()
	if inbound {
		s.st.Received++
	}
	// Hex case is not significant; an empty hash is unknown, not different.
	mismatch := ourHash != "" && remote.ConfigHash != "" && !strings.EqualFold(ourHash, remote.ConfigHash)
	s.st.HashMismatch = mismatch
	pair := [2]string{strings.ToLower(ourHash), strings.ToLower(remote.ConfigHash)}
	switch {
	case mismatch && pair != s.loggedHash:
		s.log.Warn("peer configuration differs", "peer_node", remote.Node, "our_hash", ourHash, "peer_hash", remote.ConfigHash)
		s.loggedHash = pair
	case !mismatch && s.loggedHash != [2]string{}:
		s.log.Info("peer configuration matches again", "peer_node", remote.Node)
		s.loggedHash = [2]string{}
	}
}

// Status reports how the pairing is doing.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}
