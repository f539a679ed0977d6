package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
)

// TestMain lets a test start this binary as the VRRP process, on fake
// edges of its own, as the daemon starts `director vrrp`.
func TestMain(m *testing.M) {
	if os.Getenv("DIRECTOR_TEST_VRRP_CHILD") == "1" {
		lv := new(slog.LevelVar)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
		from, to, err := childproc.Pipes()
		if err == nil {
			err = ServeVRRP(from, to, newFakeEdges().edges(), "v-test", lv, log)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const splitPatience = 20 * time.Second

// With a VRRP process the instances run there, not in the daemon: the
// daemon's state shows them, the tracked real server it checks reaches
// their priority, a reload reaches them, and a stop ends the process.
func TestInstancesInTheVRRPProcess(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer srv.Close()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	base := fmt.Sprintf(`control_socket: %%s
instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, advert_interval: 20ms, vips: [127.0.0.100/32], track: [{real_server: "http/%s", weight: -60}]}
INSTANCES
ipvs: {state_file: STATE, resync_interval: 1h, services_on_backup: false}
decisions: {file: DECISIONS}
services:
  - name: http
    vip: 127.0.0.100
    port: 80
    checks: [{type: http, interval: 50ms, timeout: 40ms, rise: 1, fall: 1}]
    real_servers: [{address: 127.0.0.1, port: %d}]
`, ap, ap.Port())
	h := &harness{t: t, e: newFakeEdges(), path: filepath.Join(t.TempDir(), "director.yaml"), logs: &testlog.Buffer{}}
	dir := filepath.Dir(h.path)
	fill := func(extra string) string {
		return strings.NewReplacer("INSTANCES", extra, "STATE", filepath.Join(dir, "ipvs.json"), "DECISIONS", filepath.Join(dir, "decisions.json")).Replace(base)
	}
	cfg := h.load(fill(""))
	t.Setenv("DIRECTOR_TEST_VRRP_CHILD", "1")
	edges := h.e.edges()
	edges.VRRPWorker = []string{os.Args[0]}
	d, err := New(cfg, edges, "v-test", nil, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", h.logs.String())
		}
	}()
	instance := func(name string) (control.InstanceState, bool) {
		for _, in := range d.State().Instances {
			if in.Name == name {
				return in, true
			}
		}
		return control.InstanceState{}, false
	}
	wait := func(name, state string, prio uint8) {
		t.Helper()
		testwait.Eventually(t, splitPatience, fmt.Sprintf("%s %s at priority %d", name, state, prio), func() bool {
			in, ok := instance(name)
			return ok && in.State == state && in.Priority == prio
		})
	}
	wait("web", "MASTER", 150)
	// The daemon's dataplane hears the mastership: the service, installed
	// only on the master (services_on_backup: false), is.
	testwait.Eventually(t, splitPatience, "the service installed on the master", func() bool {
		vs := d.dp.Table().Views
		return len(vs) == 1 && vs[0].Installed
	})
	d.mu.Lock()
	inProcess := len(d.running)
	d.mu.Unlock()
	if inProcess != 0 {
		t.Fatalf("%d instances run in the daemon's own process, want 0", inProcess)
	}
	// The daemon checks the real server; the VRRP process's instance
	// follows it.
	code.Store(503)
	wait("web", "MASTER", 90)
	code.Store(200)
	wait("web", "MASTER", 150)

	cfg2 := fill("  - {name: api, interface: eth0, vrid: 52, advert_interval: 20ms, vips: [127.0.0.101/32]}")
	h.write(cfg2)
	if _, err := d.ReloadFile(context.Background(), false); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wait("api", "MASTER", 100)
	// The VRRP process's answers come back as they would in one process.
	if err := d.Failback(context.Background(), "api"); err == nil || !strings.Contains(err.Error(), "already MASTER") {
		t.Errorf("failback of a master: %v, want the instance's own refusal", err)
	}
	if err := d.Failback(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `no instance named "nope"`) {
		t.Errorf("failback of an unknown instance: %v", err)
	}
	running, err := d.RunningConfig()
	if err != nil || !strings.Contains(string(running), "name: api") {
		t.Errorf("the running configuration lacks the VRRP process's instances: %v\n%s", err, running)
	}

	c := d.vrrpClient()
	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(splitPatience):
		t.Fatal("Run did not return")
	}
	if c.Starts() != 1 {
		t.Errorf("the VRRP process was started %d times, want 1", c.Starts())
	}
	if _, _, err := c.State(context.Background()); err == nil {
		t.Error("the VRRP process still answers after the daemon stopped")
	}
}
