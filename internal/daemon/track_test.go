package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

// A tracked real server that fails lowers the instance's priority by its
// weight, and restores it when it recovers.
func TestTrackLowersPriority(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer srv.Close()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	y := fmt.Sprintf(`instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, vips: [127.0.0.100/32], track: [{real_server: "http/%s", weight: -60}]}
ipvs: {resync_interval: 1h}
services:
  - name: http
    vip: 127.0.0.100
    port: 80
    checks: [{type: http, interval: 50ms, timeout: 40ms, rise: 1, fall: 1}]
    real_servers: [{address: 127.0.0.1, port: %d}]
`, ap, ap.Port())
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := testInstance(log, 150, time.Second)
	runInstance(t, in)

	d := &Daemon{log: log, cfg: cfg, carriers: map[string]*carrier{},
		running: []*runningInstance{{in: in, cfg: cfg.Instances[0], prio: 150, link: true}}}
	dp, err := dataplane.New(cfg, dataplane.Options{Kernel: ipvs.NewFake(), Logger: log, OnHealth: d.retrack})
	if err != nil {
		t.Fatal(err)
	}
	d.dp = dp // before the checks start: their first transition retracks
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	defer dp.Close()

	wait := func(want uint8) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, fmt.Sprintf("priority %d", want), func() bool { return in.Stats().Priority == want })
	}
	code.Store(503)
	wait(90)
	code.Store(200)
	wait(150)
}
