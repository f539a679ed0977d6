package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/routing"
)

// nodeBackend is a daemon in routed mode whose drain finishes after a
// few state reads.
type nodeBackend struct {
	mu       sync.Mutex
	reads    int
	drained  bool
	undrains int
	timeout  bool
}

func (b *nodeBackend) State() control.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	r := &control.RoutingState{Mode: "bgp", Drain: "serving"}
	if b.drained {
		r.Drain = "withdrawn"
		p := routing.DrainProgress{State: "draining", Mode: "withdrawn", Elapsed: time.Duration(b.reads) * time.Second, ActiveConns: uint64(10 - b.reads)}
		if b.reads >= 3 {
			p.State, p.Result = "drained", "drained in 3s: no active connections"
			if b.timeout {
				p.State, p.Result = "timed_out", "drain_timeout 3s passed with 7 active connections still receiving packets"
			}
		}
		r.DrainProgress = &p
	}
	return control.State{Version: "t", Routing: r}
}
func (b *nodeBackend) Failback(context.Context, string) error { return nil }
func (b *nodeBackend) Failover(context.Context, string) error { return nil }
func (b *nodeBackend) Reload(context.Context, bool) ([]string, error) {
	return nil, nil
}
func (b *nodeBackend) RunningConfig() ([]byte, error)                        { return nil, nil }
func (b *nodeBackend) RealServer(context.Context, string, string, int) error { return nil }
func (b *nodeBackend) DrainNode(context.Context) (routing.DrainProgress, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drained, b.reads = true, 0
	return routing.DrainProgress{State: "draining", Mode: "withdrawn"}, nil
}
func (b *nodeBackend) UndrainNode(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.drained {
		return errors.New("not drained")
	}
	b.drained = false
	b.undrains++
	return nil
}

func serveNode(t *testing.T, b control.Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "d.sock")
	s, err := control.Listen(sock, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return sock
}

func TestDrainNodeReportsProgress(t *testing.T) {
	b := &nodeBackend{}
	sock := serveNode(t, b)
	var out, errOut bytes.Buffer
	c := control.NewClient(sock)
	if _, err := c.DrainNode(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := followDrain(context.Background(), c, &out, &errOut, time.Millisecond); code != 0 {
		t.Fatalf("code %d, out %q, err %q", code, out.String(), errOut.String())
	}
	for _, want := range []string{"1s: 9 active connections", "2s: 8 active connections", "drained in 3s: no active connections"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b.timeout = true
	out.Reset()
	c.DrainNode(context.Background())
	if code := followDrain(context.Background(), c, &out, &errOut, time.Millisecond); code != 1 || !strings.Contains(out.String(), "timed out: drain_timeout 3s") {
		t.Errorf("timed-out drain: code %d, out %q", code, out.String())
	}
	if code, stdout, stderr := runCmd("undrain-node", "-socket", sock); code != 0 || !strings.Contains(stdout, "undrained") || b.undrains != 1 {
		t.Errorf("undrain-node: code %d, out %q, err %q", code, stdout, stderr)
	}
	if code, _, stderr := runCmd("undrain-node", "-socket", sock); code != 1 || !strings.Contains(stderr, "not drained") {
		t.Errorf("second undrain-node: code %d, err %q", code, stderr)
	}
	if code, _, stderr := runCmd("drain-node", "-socket", filepath.Join(t.TempDir(), "none.sock")); code != 1 || !strings.Contains(stderr, "no director daemon") {
		t.Errorf("drain-node without a daemon: code %d, err %q", code, stderr)
	}
}

func TestPrintRouting(t *testing.T) {
	st := control.State{Version: "v", Started: time.Now(), Routing: &control.RoutingState{
		Mode: "bgp", Drain: "serving",
		VIPs: []routing.VIPView{
			{Addr: netip.MustParseAddr("10.0.0.100"), Announced: true, Route: "10.0.0.100/32 med 10", Reason: "fit"},
			{Addr: netip.MustParseAddr("10.0.0.101"), Reason: "quorum lost: dead"},
		},
		Sessions: []routing.Session{{Peer: netip.MustParseAddr("10.0.1.1"), ASN: 65000, State: "established", Since: time.Now().Add(-90 * time.Second), PrefixesSent: 1, Flaps: 2, BFD: "up"}},
	}}
	var b bytes.Buffer
	printState(&b, st)
	for _, want := range []string{
		"routed mode bgp, node serving",
		"10.0.0.100  yes        10.0.0.100/32 med 10  fit",
		"10.0.0.101  no         -                     quorum lost: dead",
		"10.0.1.1  65000  ESTABLISHED  1m30s   1              2      up   -",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("state output lacks %q:\n%s", want, b.String())
		}
	}
}

// validate reads the BGP password files as the daemon will.
func TestValidateChecksPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "bgp.secret")
	cfg := filepath.Join(dir, "d.yaml")
	os.WriteFile(cfg, []byte("services: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]\n"+
		"routing: {mode: bgp, vips: [10.0.0.100], router_id: 10.0.0.11, asn: 65011, peers: [{address: 10.0.1.1, asn: 65000, password_file: "+pw+"}]}\n"), 0o600)
	os.WriteFile(pw, []byte("md5-secret\n"), 0o644)
	os.Chmod(pw, 0o644)
	if code, out, errOut := runCmd("validate", "-c", cfg); code != 1 || !strings.Contains(errOut, "routing.peers[0].password_file") || strings.Contains(errOut, "md5-secret") {
		t.Errorf("readable password file: code %d, out %q, err %q", code, out, errOut)
	}
	os.Chmod(pw, 0o600)
	if code, out, errOut := runCmd("validate", "-c", cfg); code != 0 {
		t.Errorf("good password file: code %d, out %q, err %q", code, out, errOut)
	}
}
