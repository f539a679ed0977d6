package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs/ipvsadm"
)

// fakeDevice records the routed VIPs put on the device.
type fakeDevice struct {
	mu      sync.Mutex
	name    string
	addrs   []netip.Addr
	removed bool
}

func (f *fakeDevice) SetAddresses(a []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = slices.Clone(a)
	return nil
}

func (f *fakeDevice) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs, f.removed = nil, true
	return nil
}

// routedEdges are fake edges with routed mode's: a fake announcer per
// start, a fake device, and IPVS counters the test sets.
type routedEdges struct {
	mu       sync.Mutex
	anns     []*routing.Fake
	dev      *fakeDevice
	traffic  routing.Traffic
	modes    []string
	readErrs int
}

func (r *routedEdges) install(e Edges) Edges {
	e.EnsureRoutingDevice = func(name string, addrs []netip.Addr) (RoutingDevice, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.dev = &fakeDevice{name: name, addrs: slices.Clone(addrs)}
		return r.dev, nil
	}
	e.NewAnnouncer = func(_ context.Context, rc *config.Routing, _ *slog.Logger) (routing.Announcer, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		f := routing.NewFake()
		r.anns = append(r.anns, f)
		r.modes = append(r.modes, rc.Mode)
		return f, nil
	}
	e.ReadIPVS = func() (*ipvsadm.Snapshot, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		t := r.traffic
		return &ipvsadm.Snapshot{Services: []ipvsadm.Service{
			{Address: netip.MustParseAddr("10.0.0.100"), Port: 80, Stats: ipvsadm.Stats{InPkts: t.InPackets},
				Destinations: []ipvsadm.Destination{{ActiveConns: uint32(t.ActiveConns)}}},
			// Another VIP's service counts for nothing.
			{Address: netip.MustParseAddr("192.0.2.1"), Port: 80, Stats: ipvsadm.Stats{InPkts: 999}, Destinations: []ipvsadm.Destination{{ActiveConns: 50}}},
		}}, nil
	}
	return e
}

func (r *routedEdges) ann(i int) *routing.Fake {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.anns) {
		return nil
	}
	return r.anns[i]
}

func (r *routedEdges) setTraffic(t routing.Traffic) {
	r.mu.Lock()
	r.traffic = t
	r.mu.Unlock()
}

// announced is the fake's routes as "prefix" strings.
func announced(f *routing.Fake) string {
	if f == nil {
		return "<no announcer>"
	}
	var out []string
	for _, r := range f.Routes() {
		out = append(out, r.String())
	}
	return strings.Join(out, " | ")
}

// routedYAML: two VIPs; 10.0.0.101's only real server is checked on a
// loopback port nobody listens on, so its service has no quorum once the
// check has run. A track file withdraws everything while it holds 1.
const routedYAML = `control_socket: %%s
ipvs: {state_file: %[1]s/ipvs.json}
decisions: {file: %[1]s/decisions.json}
services:
  - {name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}
  - name: dead
    vip: 10.0.0.101
    port: 80
    real_servers: [{address: 127.0.0.1, port: %[2]d}]
    checks: [{type: tcp, interval: 50ms, timeout: 50ms}]
track_files:
  - {name: maint, path: %[1]s/maint, weight: 0}
routing:
  mode: %[3]s
  vips: [10.0.0.100, 10.0.0.101]
  drain_timeout: %[4]s
  track: [{file: maint}]
`

func bgpPart(med int) string {
	return fmt.Sprintf(`  router_id: 10.0.0.11
  asn: 65011
  announce: [{vip: 10.0.0.100, med: %d}]
  peers: [{address: 10.0.1.1, asn: 65000}]
`, med)
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func TestRoutedMode(t *testing.T) {
	dir := t.TempDir()
	port := closedPort(t)
	y := fmt.Sprintf(routedYAML, dir, port, "bgp", "10s") + bgpPart(10)
	h, cfg := newHarness(t, y)
	re := &routedEdges{}
	d, err := New(cfg, re.install(h.e.edges()), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		if !h.ended {
			h.shutdown()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", h.logs.String())
		}
	})
	wait := func(what string, f func() bool) { t.Helper(); testwait.Eventually(t, patience, what, f) }
	routes := func(want string) {
		t.Helper()
		wait("routes "+want, func() bool { return announced(re.ann(0)) == want })
	}

	// The dead service's check fails: only 10.0.0.100 is announced, with
	// its MED; both VIPs are on the device.
	routes("10.0.0.100/32 med 10")
	re.mu.Lock()
	if dev := re.dev; dev.name != "lo" || len(dev.addrs) != 2 {
		t.Errorf("device %s with %v, want lo with both VIPs", dev.name, dev.addrs)
	}
	re.mu.Unlock()
	st := d.State().Routing
	if st == nil || st.Mode != "bgp" || st.Drain != "serving" || len(st.VIPs) != 2 || st.VIPs[1].Reason != "quorum lost: dead" {
		t.Fatalf("state routing %+v", st)
	}

	// The maintenance file withdraws everything.
	maint := filepath.Join(dir, "maint")
	os.WriteFile(maint, []byte("1\n"), 0o644)
	routes("")
	if r := d.State().Routing.VIPs[0].Reason; r != "tracking down: file maint" {
		t.Errorf("reason %q", r)
	}
	os.WriteFile(maint, []byte("0\n"), 0o644)
	routes("10.0.0.100/32 med 10")

	// drain-node: withdrawn at once, kept for a restart, and over when
	// the packets stop.
	re.setTraffic(routing.Traffic{ActiveConns: 3, InPackets: 100})
	p, err := d.DrainNode(ctx)
	if err != nil || p.State != "draining" || p.Mode != "withdrawn" {
		t.Fatalf("DrainNode = %+v, %v", p, err)
	}
	routes("")
	if b, err := os.ReadFile(filepath.Join(dir, "node-drain")); err != nil || string(b) != "withdrawn\n" {
		t.Errorf("drain file %q, %v", b, err)
	}
	re.setTraffic(routing.Traffic{ActiveConns: 0, InPackets: 120})
	wait("the drain over", func() bool {
		p := d.State().Routing.DrainProgress
		return p != nil && p.State == "drained"
	})
	if s := d.State().Routing; s.Drain != "withdrawn" || !strings.Contains(s.DrainProgress.Result, "no active connections") {
		t.Errorf("state after drain: %+v %+v", s, s.DrainProgress)
	}
	if err := d.UndrainNode(ctx); err != nil {
		t.Fatal(err)
	}
	routes("10.0.0.100/32 med 10")
	if _, err := os.Stat(filepath.Join(dir, "node-drain")); !os.IsNotExist(err) {
		t.Errorf("drain file after undrain: %v", err)
	}

	// A reload with a new MED reconfigures the same announcer in place.
	h.write(fmt.Sprintf(routedYAML, dir, port, "bgp", "10s") + bgpPart(20))
	if _, err := d.ReloadFile(ctx, false); err != nil {
		t.Fatal(err)
	}
	routes("10.0.0.100/32 med 20")
	if n := len(re.ann(0).Configured()); n != 1 || re.ann(1) != nil {
		t.Errorf("reload: %d Configure calls, second announcer %v; want one in place", n, re.ann(1))
	}
	// An unreadable password file refuses the reload: the old stays.
	h.write(fmt.Sprintf(routedYAML, dir, port, "bgp", "10s") + strings.Replace(bgpPart(30), "asn: 65000}", "asn: 65000, password_file: "+dir+"/none}", 1))
	if _, err := d.ReloadFile(ctx, false); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("reload with a missing password file: %v", err)
	}
	routes("10.0.0.100/32 med 20")
	// Table mode instead: a new announcer.
	h.write(fmt.Sprintf(routedYAML, dir, port, "table", "10s") + "  table: 100\n")
	if _, err := d.ReloadFile(ctx, false); err != nil {
		t.Fatal(err)
	}
	wait("the table announcer", func() bool { return announced(re.ann(1)) == "10.0.0.100/32" })
	if !re.ann(0).Closed() {
		t.Error("the BGP announcer was not closed")
	}

	// A stop drains first: withdrawn while the packets still move, then
	// closed once they stop.
	re.setTraffic(routing.Traffic{ActiveConns: 5, InPackets: 500})
	h.ended = true
	h.stop()
	routes2 := func() string { return announced(re.ann(1)) }
	wait("withdrawn at the stop", func() bool { return routes2() == "" })
	select {
	case <-h.done:
		t.Fatal("the daemon stopped before the traffic left")
	case <-time.After(300 * time.Millisecond):
	}
	if s := d.State().Routing; s == nil || s.Drain != "stopping" {
		t.Errorf("state while stopping: %+v", s)
	}
	re.setTraffic(routing.Traffic{ActiveConns: 0, InPackets: 510})
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(patience):
		t.Fatal("the daemon did not stop after the drain")
	}
	if !re.ann(1).Closed() {
		t.Error("announcer not closed at the stop")
	}
	re.mu.Lock()
	defer re.mu.Unlock()
	if !re.dev.removed {
		t.Error("VIPs left on the device at the stop")
	}
}

// A node drained by drain-node stays drained through a restart.
func TestRoutedDrainSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "node-drain"), []byte("withdrawn\n"), 0o600)
	y := fmt.Sprintf(routedYAML, dir, closedPort(t), "table", "1s") + "  table: 100\n"
	h, cfg := newHarness(t, y)
	re := &routedEdges{}
	d, err := New(cfg, re.install(h.e.edges()), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testwait.Eventually(t, patience, "state with routing", func() bool {
		s := d.State().Routing
		return s != nil && len(s.VIPs) == 2 && s.VIPs[0].Reason == "node drained: withdrawn"
	})
	if got := announced(re.ann(0)); got != "" {
		t.Errorf("a drained node announced %q after its restart", got)
	}
	if err := d.UndrainNode(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, patience, "announced after undrain", func() bool { return announced(re.ann(0)) == "10.0.0.100/32" })
	cancel()
	// Stopping a node whose traffic is gone takes no longer than the quiet time.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
}
