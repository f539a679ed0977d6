package peer

import (
	"github.com/director-lb/director/internal/testwait"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/decisions"
)

const token = "0123456789abcdef-secret"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// node is one director for the tests: a decisions store, a Syncer and its
// HTTP server on loopback.
type node struct {
	name   string
	hash   string
	store  *decisions.Store
	sync   *Syncer
	srv    *httptest.Server
	merges int
	mu     sync.Mutex
	logs   bytes.Buffer
}

func newNode(t *testing.T, name, hash string) *node {
	t.Helper()
	store, err := decisions.Open(decisions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The listener exists before Start, so the peer's address is known
	// before either Syncer is made.
	srv := httptest.NewUnstartedServer(nil)
	return &node{name: name, hash: hash, store: store, srv: srv}
}

func (n *node) state() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{Node: n.name, ConfigHash: n.hash, Decisions: n.store.Snapshot()}
}

func (n *node) merge(st State) {
	n.mu.Lock()
	n.merges++
	n.mu.Unlock()
	n.store.Merge(st.Decisions, nil)
}

func (n *node) mergeCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.merges
}

func (n *node) start(t *testing.T, peer string, interval time.Duration) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &n.mu, w: &n.logs}, nil))
	s, err := New(Config{Peer: peer, Token: token, Interval: interval}, n.state, n.merge, log)
	if err != nil {
		t.Fatal(err)
	}
	n.sync = s
	n.srv.Config.Handler = s.Handler()
	n.srv.Start()
	t.Cleanup(n.srv.Close)
}

func (n *node) logText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func run(t *testing.T, s *Syncer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Eventually(t, 5*time.Second, what, cond)
}

func drain(target string, at time.Time, node string) decisions.Decision {
	return decisions.Decision{Kind: decisions.KindOverride, Target: target, Action: decisions.ActionDrain, At: at, Node: node}
}

func has(s *decisions.Store, d decisions.Decision) bool {
	for _, x := range s.Snapshot() {
		if x.Target == d.Target && x.Action == d.Action && x.At.Equal(d.At) && x.Node == d.Node {
			return true
		}
	}
	return false
}

func TestTwoSyncersConverge(t *testing.T) {
	a, b := newNode(t, "lb1", "aa11"), newNode(t, "lb2", "bb22")
	a.start(t, b.srv.Listener.Addr().String(), time.Hour)
	b.start(t, a.srv.Listener.Addr().String(), time.Hour)

	// Decided before the first sync: lb1's travels in its POST, lb2's in
	// the reply, so one sync from lb1 gives both to both.
	fromA, fromB := drain("web/10.0.0.21:80", t0, "lb1"), drain("10.0.0.22:80", t0, "lb2")
	a.store.Put(fromA)
	b.store.Put(fromB)
	run(t, a.sync)
	waitFor(t, "lb1's first sync", func() bool { return a.sync.Status().Contacts >= 1 })
	for _, n := range []*node{a, b} {
		if !has(n.store, fromA) || !has(n.store, fromB) {
			t.Fatalf("%s after first sync: %+v", n.name, n.store.Snapshot())
		}
	}

	// With an hour's interval, only Kick makes the next sync.
	later := decisions.Decision{Kind: decisions.KindOverride, Target: "10.0.0.22:80", Action: decisions.ActionEnable, At: t0.Add(time.Minute), Node: "lb1"}
	a.store.Put(later)
	a.sync.Kick()
	waitFor(t, "lb2 to get the kicked decision", func() bool { return has(b.store, later) })

	st := a.sync.Status()
	if st.PeerNode != "lb2" || st.PeerHash != "bb22" || !st.HashMismatch || st.LastError != "" || st.LastContact.IsZero() {
		t.Errorf("lb1 status %+v", st)
	}
	if st := b.sync.Status(); st.PeerNode != "lb1" || st.Received < 2 || !st.HashMismatch {
		t.Errorf("lb2 status %+v", st)
	}
	// The difference is logged once, not per sync.
	if n := strings.Count(a.logText(), "peer configuration differs"); n != 1 {
		t.Errorf("lb1 logged the hash difference %d times:\n%s", n, a.logText())
	}
	if got, want := a.store.Snapshot(), b.store.Snapshot(); len(got) != 2 || !sameJSON(got, want) {
		t.Errorf("not converged:\nlb1 %+v\nlb2 %+v", got, want)
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func post(t *testing.T, url, auth, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHandlerRefuses(t *testing.T) {
	n := newNode(t, "lb1", "aa")
	n.start(t, "", 0)
	url := n.srv.URL + SyncPath
	good := `{"node":"lb2","config_hash":"bb","decisions":[]}`
	tests := []struct {
		name, auth, body string
		code             int
		msg              string
	}{
		{"no token", "", good, http.StatusUnauthorized, "unauthorized"},
		{"wrong token", "Bearer 0123456789abcdef-secreT", good, http.StatusUnauthorized, "unauthorized"},
		{"token prefix", "Bearer " + token[:16], good, http.StatusUnauthorized, "unauthorized"},
		{"basic auth", "Basic " + token, good, http.StatusUnauthorized, "unauthorized"},
		{"garbage", "Bearer " + token, "hello", http.StatusBadRequest, "decode peer state"},
		{"unknown field", "Bearer " + token, `{"node":"lb2","colour":"red"}`, http.StatusBadRequest, `unknown field "colour"`},
		{"no node", "Bearer " + token, `{"config_hash":"bb"}`, http.StatusBadRequest, "node name"},
		{"bad hash", "Bearer " + token, `{"node":"lb2","config_hash":"xyz"}`, http.StatusBadRequest, "not hexadecimal"},
		{"our own name", "Bearer " + token, `{"node":"lb1"}`, http.StatusConflict, "own node name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, url, tc.auth, tc.body)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.msg) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, tc.code, tc.msg)
			}
		})
	}
	if m := n.mergeCount(); m != 0 {
		t.Errorf("%d merges from refused requests", m)
	}
	if !strings.Contains(n.logText(), "remote=127.0.0.1:") {
		t.Errorf("refusal not logged with the remote address:\n%s", n.logText())
	}

	// GET is not allowed; a good POST merges and replies with our state.
	if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	d := drain("web/10.0.0.9:80", t0, "lb2")
	body, _ := json.Marshal(State{Node: "lb2", ConfigHash: "aa", Decisions: []decisions.Decision{d}})
	resp, reply := post(t, url, "Bearer "+token, string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good post: %d %s", resp.StatusCode, reply)
	}
	st, err := Decode(strings.NewReader(reply))
	if err != nil || st.Node != "lb1" || len(st.Decisions) != 1 || st.Decisions[0].Target != d.Target {
		t.Errorf("reply %+v (%v), want lb1's state including the merged decision", st, err)
	}
	if s := n.sync.Status(); s.Received != 1 || s.PeerNode != "lb2" || s.HashMismatch {
		t.Errorf("status %+v", s)
	}
}

func TestUnreachablePeer(t *testing.T) {
	// A port that was just closed on loopback: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	n := newNode(t, "lb1", "aa")
	n.start(t, addr, 10*time.Millisecond)
	run(t, n.sync)
	waitFor(t, "three failures", func() bool { return n.sync.Status().Failures >= 3 })
	st := n.sync.Status()
	if st.Peer != addr || st.Contacts != 0 || !strings.Contains(st.LastError, "refused") || !st.LastContact.IsZero() {
		t.Errorf("status %+v", st)
	}
	if c := strings.Count(n.logText(), "peer sync failed"); c != 1 {
		t.Errorf("the same error was logged %d times:\n%s", c, n.logText())
	}
}

func TestPeerRejectsUs(t *testing.T) {
	// The peer has another token: our syncs fail with its 401, and the
	// status says so.
	other := newNode(t, "lb2", "")
	s, err := New(Config{Token: "another-token-of-16"}, other.state, other.merge, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	n := newNode(t, "lb1", "")
	n.start(t, srv.Listener.Addr().String(), time.Hour)
	run(t, n.sync)
	waitFor(t, "a failure", func() bool { return n.sync.Status().Failures >= 1 })
	if st := n.sync.Status(); !strings.Contains(st.LastError, "401") {
		t.Errorf("status %+v, want a 401 error", st)
	}
	if other.mergeCount() != 0 || n.mergeCount() != 0 {
		t.Error("merged despite the refusal")
	}
}

func TestNewChecksConfig(t *testing.T) {
	local := func() State { return State{Node: "x"} }
	merge := func(State) {}
	for name, cfg := range map[string]Config{
		"short token":       {Token: "short"},
		"negative interval": {Token: token, Interval: -time.Second},
		"bad peer":          {Token: token, Peer: "127.0.0.1"},
	} {
		if _, err := New(cfg, local, merge, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(Config{Token: token}, nil, merge, nil); err == nil {
		t.Error("nil local: no error")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{5 * time.Second, 0, 5 * time.Second},
		{5 * time.Second, 1, 10 * time.Second},
		{5 * time.Second, 3, 40 * time.Second},
		{5 * time.Second, 10, time.Minute},
		{2 * time.Minute, 5, 2 * time.Minute},
	} {
		if got := backoff(tc.interval, tc.failures); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}
