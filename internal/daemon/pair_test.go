package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/pairtls"
	"github.com/director-lb/director/internal/peer"
	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

const pairConfig = `node: %s
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: rr
    registration: {%sallowed: [10.0.0.0/24], max_weight: 10}
    real_servers:
      - {address: 10.0.0.21}%s
ipvs: {state_file: %s}
decisions: {file: %s}
api:
  listen: %s
  peer: %s
  peer_token_file: %s
  registration_token_file: %s
  sync_interval: 100ms
%s`

// freeAddr is a loopback address nobody listens on yet.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeToken(t *testing.T, dir, name, tok string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testPair is one CA and certificates for lb1 and lb2, both on loopback,
// made once for the package's tests.
var testPair = sync.OnceValue(func() pairtls.PairFiles {
	pf, err := pairtls.Generate(nil, nil, []pairtls.Node{{Name: "lb1", Hosts: []string{"127.0.0.1"}}, {Name: "lb2", Hosts: []string{"127.0.0.1"}}},
		time.Now(), 24*time.Hour)
	if err != nil {
		panic(err)
	}
	return pf
})

// writeTLS writes node's certificate, key and the CA into dir and returns
// the api.tls lines that name them.
func writeTLS(t *testing.T, dir, node string) string {
	t.Helper()
	pf := testPair()
	files := map[string][]byte{"ca.crt": pf.CACert}
	for _, n := range pf.Nodes {
		if n.Name == node {
			files[node+".crt"], files[node+".key"] = n.Cert, n.Key
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("  tls: {cert_file: %s, key_file: %s, ca_file: %s}\n",
		filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key"), filepath.Join(dir, "ca.crt"))
}

// client talks to the test nodes' API as a real server registering does:
// it trusts the pair's CA and presents no certificate.
var client = sync.OnceValue(func() *http.Client {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(testPair().CACert)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}}}
})

// pairNode is a daemon with a fake kernel, its dataplane running and its
// API serving: enough to exercise the pairing without VRRP or IPVS.
type pairNode struct {
	d      *Daemon
	kernel *ipvs.Fake
	listen string
	logs   *testlog.Buffer
}

func startPairNode(t *testing.T, node, listen, peerAddr, extraRS string) *pairNode {
	t.Helper()
	return startPairNodeWith(t, node, listen, peerAddr, extraRS, "")
}

// startPairNodeWith is startPairNode with more settings for the
// registration block (each ending in ", ").
func startPairNodeWith(t *testing.T, node, listen, peerAddr, extraRS, reg string) *pairNode {
	t.Helper()
	dir := t.TempDir()
	return startPairNodeIn(t, dir, node, listen, peerAddr, extraRS, reg, writeTLS(t, dir, node))
}

// startPairNodeIn starts a pair node with its files in dir and apiExtra
// lines in its api block (its TLS, or insecure: true).
func startPairNodeIn(t *testing.T, dir, node, listen, peerAddr, extraRS, reg, apiExtra string) *pairNode {
	t.Helper()
	y := fmt.Sprintf(pairConfig, node, reg, extraRS, filepath.Join(dir, "owned.json"), filepath.Join(dir, "decisions.json"), listen, peerAddr,
		writeToken(t, dir, "peer.token", "pair-secret-0123456789"), writeToken(t, dir, "reg.token", "register-secret-0123456789"), apiExtra)
	cfg, err := config.Parse(filepath.Join(dir, "director.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	k := ipvs.NewFake()
	d := &Daemon{cfg: cfg, log: log, level: new(slog.LevelVar), eff: cfg, pairHash: config.PairHash(cfg),
		sockets: map[connKey]*socket{}, carriers: map[string]*carrier{}, regKick: make(chan struct{}, 1)}
	dp, err := dataplane.New(cfg, dataplane.Options{Kernel: k, Logger: log, OnDecision: d.kickPeer})
	if err != nil {
		t.Fatal(err)
	}
	d.dp = dp
	if err := d.applyData(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); dp.Run(ctx) }()
	go d.registrationLoop(ctx)
	if err := d.reloadAPI(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.mu.Lock()
		a := d.api
		d.mu.Unlock()
		a.close()
		cancel()
		<-done
		dp.Close()
	})
	return &pairNode{d: d, kernel: k, listen: listen, logs: logs}
}

// weights is the fake kernel's web service as "addr:port=weight ...".
func (n *pairNode) weights() string {
	var b strings.Builder
	for _, s := range n.kernel.Snapshot() {
		for _, d := range s.Destinations {
			fmt.Fprintf(&b, "%s=%d ", d.AddrPort(), d.Weight)
		}
	}
	return strings.TrimSpace(b.String())
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testwait.Eventually(t, 5*time.Second, what, ok)
}

// post posts body over HTTPS as a registering real server would.
func post(t *testing.T, addr, path, token, body string) (int, string) {
	t.Helper()
	return postWith(t, client(), "https://"+addr+path, token, body)
}

func postWith(t *testing.T, c *http.Client, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A real server registers on one node and shows up in both tables; an
// operator's drain on the other node reaches the first; deregistering
// takes it out of both. A wrong token changes nothing.
func TestPairReplication(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n1 := startPairNode(t, "lb1", a1, a2, "")
	n2 := startPairNode(t, "lb2", a2, a1, "")
	eventually(t, "both tables", func() bool { return n1.weights() == "10.0.0.21:80=1" && n2.weights() == "10.0.0.21:80=1" })

	if code, body := post(t, a1, "/v1/register", "wrong-token-0123456789", `{"service":"web","address":"10.0.0.23","port":80}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	if code, body := post(t, a1, "/v1/register", "register-secret-0123456789", `{"service":"web","address":"10.0.0.23","port":80,"weight":2}`); code != http.StatusOK {
		t.Fatalf("register: %d %s", code, body)
	}
	want := "10.0.0.21:80=1 10.0.0.23:80=2"
	eventually(t, "the registration in both tables", func() bool { return n1.weights() == want && n2.weights() == want })
	if st := n2.d.State(); len(st.Services[0].RealServers) != 2 || !st.Services[0].RealServers[1].Registered {
		t.Errorf("lb2 state = %+v, want the registered server marked", st.Services[0].RealServers)
	}

	if err := n2.d.dp.SetOverride("web/10.0.0.21:80", "drain", 0); err != nil {
		t.Fatal(err)
	}
	want = "10.0.0.21:80=0 10.0.0.23:80=2"
	eventually(t, "lb2's drain on lb1", func() bool { return n1.weights() == want })
	if rs := n1.d.State().Services[0].RealServers[0]; rs.Address != "10.0.0.21:80" || rs.Override != "drain" || rs.Weight != 0 {
		t.Errorf("lb1 state of 10.0.0.21:80 = %+v, want drain at weight 0", rs)
	}

	if code, body := post(t, a2, "/v1/deregister", "register-secret-0123456789", `{"service":"web","address":"10.0.0.23","port":80}`); code != http.StatusOK {
		t.Fatalf("deregister: %d %s", code, body)
	}
	// A removed real server drains (weight 0) before it goes.
	eventually(t, "deregistration on lb1", func() bool { return len(n1.d.dp.Store().Registrations("web")) == 0 })
	if code, _ := post(t, a1, "/v1/deregister", "register-secret-0123456789", `{"service":"web","address":"10.0.0.21","port":80}`); code == http.StatusOK {
		t.Error("deregistering a configured real server succeeded")
	}
	if st := n1.d.peerStatus(); st == nil || st.PeerNode != "lb2" || st.HashMismatch {
		t.Errorf("lb1 peer status = %+v, want lb2 with the same configuration", st)
	}
}

// Nodes whose services differ report it.
func TestPairConfigMismatch(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n1 := startPairNode(t, "lb1", a1, a2, "")
	n2 := startPairNode(t, "lb2", a2, a1, "\n      - {address: 10.0.0.22}")
	eventually(t, "the mismatch seen on both", func() bool {
		s1, s2 := n1.d.peerStatus(), n2.d.peerStatus()
		return s1.HashMismatch && s2.HashMismatch
	})
	if st := n1.d.State(); st.ConfigHash == "" || st.Peer == nil || st.Peer.PeerHash == st.ConfigHash {
		t.Errorf("lb1 state: hash %q peer %+v", st.ConfigHash, st.Peer)
	}
	mfs, err := newMetrics(n1.d).reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "director_peer_config_match" {
			found = true
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("director_peer_config_match = %v, want 0", v)
			}
		}
	}
	if !found {
		t.Error("no director_peer_config_match metric")
	}
}

// withRegistrations adds what the pool still allows, and nothing else.
func TestWithRegistrations(t *testing.T) {
	y := fmt.Sprintf(pairConfig, "lb1", "", "", "/run/x/owned.json", "/run/x/decisions.json", "127.0.0.1:1", "127.0.0.1:2", "/t", "/t", "  insecure: true\n")
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	st, err := decisions.Open(decisions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []decisions.Decision{
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.23:80", Action: decisions.ActionRegister, Weight: 1, Node: "lb1"},
		{Kind: decisions.KindRegistration, Target: "web/10.0.1.23:80", Action: decisions.ActionRegister, Weight: 1, Node: "lb1"},  // not allowed
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.24:81", Action: decisions.ActionRegister, Weight: 1, Node: "lb1"},  // wrong port
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.21:80", Action: decisions.ActionRegister, Weight: 5, Node: "lb1"},  // in the file
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.25:80", Action: decisions.ActionRegister, Weight: 50, Node: "lb1"}, // over max_weight
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.26:80", Action: decisions.ActionDeregister, Node: "lb1"},
	} {
		if _, err := st.Put(d); err != nil {
			t.Fatal(err)
		}
	}
	eff := withRegistrations(cfg, st)
	var got []string
	for _, r := range eff.Services[0].RealServers {
		got = append(got, fmt.Sprintf("%s:%d/%d", r.Addr, r.Port, r.EffectiveWeight()))
	}
	if strings.Join(got, " ") != "10.0.0.21:80/1 10.0.0.23:80/1" {
		t.Errorf("effective real servers = %v", got)
	}
	if rs := eff.Services[0].RealServers; len(rs) == 2 && (rs[0].Registered || !rs[1].Registered) {
		t.Errorf("Registered marks = %v, %v; want only the registered server marked", rs[0].Registered, rs[1].Registered)
	}
	if len(cfg.Services[0].RealServers) != 1 {
		t.Error("withRegistrations changed the file's configuration")
	}
}

// A reload keeps the API listener unless its settings or tokens changed;
// a new registration token is in force after the reload.
func TestReloadAPI(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n := startPairNode(t, "lb1", a1, a2, "")
	cfg := n.d.fileConfig()
	srv, before := n.d.api, n.d.api.runtime()
	if err := n.d.reloadAPI(cfg); err != nil {
		t.Fatal(err)
	}
	if n.d.api.runtime() != before {
		t.Error("an unchanged api block replaced what the API serves")
	}
	if err := os.WriteFile(cfg.API.RegistrationTokenFile, []byte("a-brand-new-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.d.reloadAPI(cfg); err != nil {
		t.Fatal(err)
	}
	if n.d.api.runtime() == before {
		t.Error("a changed token kept the old handlers")
	}
	if n.d.api != srv {
		t.Error("a changed token replaced the listener; only what it serves should change")
	}
	body := `{"service":"web","address":"10.0.0.23","port":80}`
	if code, _ := post(t, a1, "/v1/register", "register-secret-0123456789", body); code != http.StatusUnauthorized {
		t.Errorf("old token after reload: %d, want 401", code)
	}
	if code, msg := post(t, a1, "/v1/register", "a-brand-new-token-0123456789", body); code != http.StatusOK {
		t.Errorf("new token after reload: %d %s", code, msg)
	}
}

// A pool takes at most registration.max_servers registrations: one more
// is refused with a clear answer, and the pool stays as it was.
func TestRegistrationMaxServers(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n := startPairNodeWith(t, "lb1", a1, a2, "", "max_servers: 2, ")
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusConflict} {
		body := fmt.Sprintf(`{"service":"web","address":"10.0.0.%d","port":80}`, 30+i)
		if code, msg := post(t, a1, "/v1/register", "register-secret-0123456789", body); code != want {
			t.Errorf("registration %d: %d %s, want %d", i+1, code, msg, want)
		} else if code == http.StatusConflict && !strings.Contains(msg, "max_servers") {
			t.Errorf("refusal %q does not name max_servers", msg)
		}
	}
	if regs := n.d.dp.Store().Registrations("web"); len(regs) != 2 {
		t.Errorf("%d registrations, want 2", len(regs))
	}
}

// Withdrawn decisions past their week are dropped while the daemon runs,
// not only at start.
func TestPruneLoop(t *testing.T) {
	n := startPairNode(t, "lb1", freeAddr(t), freeAddr(t), "")
	st := n.d.dp.Store()
	old := time.Now().Add(-decisions.TombstoneTTL - time.Hour)
	for _, dec := range []decisions.Decision{
		{Kind: decisions.KindOverride, Target: "web/10.0.0.21:80", Action: decisions.ActionEnable, At: old, Node: "lb1"},
		{Kind: decisions.KindOverride, Target: "10.0.0.21:80", Action: decisions.ActionDrain, At: old, Node: "lb1"},
	} {
		if _, err := st.Put(dec); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.d.pruneLoop(ctx, 10*time.Millisecond)
	eventually(t, "the old tombstone pruned", func() bool { return st.Len() == 1 })
	if got := st.Snapshot(); got[0].Action != decisions.ActionDrain {
		t.Errorf("left %+v, want the live drain", got)
	}
}

// A reload whose token file cannot be read is refused for the API and
// leaves the running listener serving, with the tokens it had.
func TestReloadAPIKeepsServingOnBadTokenFile(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n := startPairNode(t, "lb1", a1, a2, "")
	cfg := n.d.fileConfig()
	if err := os.Remove(cfg.API.RegistrationTokenFile); err != nil {
		t.Fatal(err)
	}
	if err := n.d.reloadAPI(cfg); err == nil || !strings.Contains(err.Error(), "registration_token_file") {
		t.Errorf("reload with a missing token file: %v, want an error naming it", err)
	}
	body := `{"service":"web","address":"10.0.0.23","port":80}`
	if code, msg := post(t, a1, "/v1/register", "register-secret-0123456789", body); code != http.StatusOK {
		t.Errorf("after the refused reload: %d %s, want the old token still taken", code, msg)
	}
}

// A new api.listen is bound before the old one closes: if it cannot be
// had, the old one keeps serving; if it can, the API moves.
func TestReloadAPIMoves(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n := startPairNode(t, "lb1", a1, a2, "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	next := *n.d.fileConfig()
	next.API.Listen = taken.Addr().String()
	if err := n.d.reloadAPI(&next); err == nil {
		t.Error("a reload onto a taken address succeeded")
	}
	body := `{"service":"web","address":"10.0.0.23","port":80}`
	if code, msg := post(t, a1, "/v1/register", "register-secret-0123456789", body); code != http.StatusOK {
		t.Fatalf("old listener after the refused move: %d %s", code, msg)
	}
	a3 := freeAddr(t)
	next.API.Listen = a3
	if err := n.d.reloadAPI(&next); err != nil {
		t.Fatal(err)
	}
	if code, msg := post(t, a3, "/v1/deregister", "register-secret-0123456789", body); code != http.StatusOK {
		t.Errorf("new listener: %d %s", code, msg)
	}
	if c, err := net.Dial("tcp", a1); err == nil {
		c.Close()
		t.Error("the old listener still answers after the move")
	}
}

// A scan of wrong tokens from one address is throttled: after a burst of
// failures that address gets 429 without its token being looked at, the
// failures are counted, and the log gets a few sampled lines, not one per
// failure (which filled journald's rate limit and cost director's own
// state-change lines).
func TestFailedTokensThrottled(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n := startPairNode(t, "lb1", a1, a2, "")
	body := `{"service":"web","address":"10.0.0.23","port":80}`
	codes := map[int]int{}
	for i := range 100 {
		path := "/v1/register"
		if i%2 == 1 {
			path = "/v1/peer/sync"
		}
		code, _ := post(t, a1, path, fmt.Sprintf("wrong-token-%016d", i), body)
		codes[code]++
	}
	if codes[http.StatusTooManyRequests] < 80 || codes[http.StatusUnauthorized] > 20 {
		t.Errorf("answers %v, want mostly 429 after a burst of 401", codes)
	}
	if lines := strings.Count(n.logs.String(), "unauthenticated"); lines > 10 || lines == 0 {
		t.Errorf("%d log lines for 100 failures, want a few:\n%s", lines, n.logs.String())
	}
	mfs, err := newMetrics(n.d).reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "director_api_") {
			got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got["director_api_auth_failures_total"] < 10 || got["director_api_throttled_total"] < 80 {
		t.Errorf("metrics %v, want the failures and the throttled requests counted", got)
	}
	// Even the right token waits out the block: the scanner cannot tell.
	if code, _ := post(t, a1, "/v1/register", "register-secret-0123456789", body); code != http.StatusTooManyRequests {
		t.Errorf("right token from a blocked address: %d, want 429", code)
	}
}

// The peer's decisions for targets this node does not know are refused:
// an override must name a configured real server, a registration a
// service that takes registrations, in its allowed prefixes and port.
func TestPeerUnknownTargetsRefused(t *testing.T) {
	n := startPairNode(t, "lb1", freeAddr(t), freeAddr(t), "")
	at := time.Now()
	n.d.peerMerge(peer.State{Node: "lb2", Decisions: []decisions.Decision{
		{Kind: decisions.KindOverride, Target: "web/10.0.0.21:80", Action: decisions.ActionDrain, At: at, Node: "lb2"}, // known
		{Kind: decisions.KindOverride, Target: "web/10.9.9.9:80", Action: decisions.ActionDrain, At: at, Node: "lb2"},
		{Kind: decisions.KindOverride, Target: "10.9.9.9:80", Action: decisions.ActionDisable, At: at, Node: "lb2"},
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.40:80", Action: decisions.ActionRegister, Weight: 1, At: at, Node: "lb2"}, // allowed
		{Kind: decisions.KindRegistration, Target: "nosuch/10.0.0.41:80", Action: decisions.ActionRegister, Weight: 1, At: at, Node: "lb2"},
		{Kind: decisions.KindRegistration, Target: "web/192.0.2.1:80", Action: decisions.ActionRegister, Weight: 1, At: at, Node: "lb2"},
		{Kind: decisions.KindRegistration, Target: "web/10.0.0.42:81", Action: decisions.ActionRegister, Weight: 1, At: at, Node: "lb2"},
	}})
	var got []string
	for _, d := range n.d.dp.Store().Snapshot() {
		got = append(got, d.Target)
	}
	if strings.Join(got, " ") != "web/10.0.0.21:80 web/10.0.0.40:80" {
		t.Errorf("store after the peer's merge: %v, want only the known targets", got)
	}
}

// The peer endpoint takes only a caller that proves itself with a
// certificate of the pair's CA: the right token alone, over TLS without a
// certificate or over plain HTTP, is refused.
func TestPeerNeedsClientCert(t *testing.T) {
	a1 := freeAddr(t)
	n := startPairNode(t, "lb1", a1, freeAddr(t), "")
	state := `{"node":"lb2","config_hash":"","decisions":[{"kind":"override","target":"web/10.0.0.21:80","action":"drain","at":"` +
		time.Now().UTC().Format(time.RFC3339) + `","node":"lb2"}]}`
	if code, msg := post(t, a1, peer.SyncPath, "pair-secret-0123456789", state); code != http.StatusUnauthorized {
		t.Errorf("the peer token without a certificate: %d %s, want 401", code, msg)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, "http://"+a1+peer.SyncPath, strings.NewReader(state))
	req.Header.Set("Authorization", "Bearer pair-secret-0123456789")
	if resp, err := plain.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS listener was served")
		}
	}
	if len(n.d.dp.Store().Snapshot()) != 0 {
		t.Errorf("the store took %v", n.d.dp.Store().Snapshot())
	}
}

// With api.insecure the pair still works, over plain HTTP.
func TestPairInsecure(t *testing.T) {
	a1, a2 := freeAddr(t), freeAddr(t)
	n1 := startPairNodeIn(t, t.TempDir(), "lb1", a1, a2, "", "", "  insecure: true\n")
	n2 := startPairNodeIn(t, t.TempDir(), "lb2", a2, a1, "", "", "  insecure: true\n")
	code, msg := postWith(t, &http.Client{Timeout: 5 * time.Second}, "http://"+a1+"/v1/register", "register-secret-0123456789",
		`{"service":"web","address":"10.0.0.23","port":80,"weight":2}`)
	if code != http.StatusOK {
		t.Fatalf("register over plain HTTP: %d %s", code, msg)
	}
	want := "10.0.0.21:80=1 10.0.0.23:80=2"
	eventually(t, "the registration in both tables", func() bool { return n1.weights() == want && n2.weights() == want })
}
