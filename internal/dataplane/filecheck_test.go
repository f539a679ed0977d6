package dataplane

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
)

// A file check (keepalived's FILE_CHECK) drives the kernel weight through
// the real check manager: value × weight is added to the configured
// weight, within 0 and up, and a weight-0 file takes the server down.
func TestDataplaneFileCheckWeight(t *testing.T) {
	dir := t.TempDir()
	adj, maint := filepath.Join(dir, "adjust"), filepath.Join(dir, "maintenance")
	write := func(path, v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(adj, "3\n")
	y := fmt.Sprintf(`instances:
  - {name: web, interface: eth0, vrid: 51, vips: [127.0.0.100/32]}
ipvs: {resync_interval: 1h}
services:
  - name: http
    vip: 127.0.0.100
    port: 80
    checks:
      - {type: file, interval: 20ms, timeout: 10ms, file: {path: %s, weight: 2}}
      - {type: file, interval: 20ms, timeout: 10ms, file: {path: %s, weight: 0}}
    real_servers:
      - {address: 127.0.0.1, port: 8080, weight: 5}
`, adj, maint)
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	k := ipvs.NewFake()
	dp, err := New(cfg, Options{Kernel: k, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	runDataplane(t, dp)
	rs := netip.MustParseAddrPort("127.0.0.1:8080")
	weight := func() string {
		var parts []string
		for _, s := range k.Snapshot() {
			for _, d := range s.Destinations {
				parts = append(parts, fmt.Sprint(d.Weight))
			}
		}
		return strings.Join(parts, " ")
	}
	wait := func(want string) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, "weight "+want, func() bool { return weight() == want })
	}
	wait("11") // 5 + 3×2
	write(adj, "-10")
	wait("0") // 5 - 20, kept at 0; the server stays up
	if got, _ := dp.Status("http", rs); got != "up" {
		t.Errorf("status %q, want up", got)
	}
	write(adj, "1")
	wait("7")
	write(maint, "1")
	wait("0")
	if got, why := dp.Status("http", rs); got != "down" || !strings.Contains(why, "value 1: down") {
		t.Errorf("status %q (%q), want down for the maintenance file", got, why)
	}
	write(maint, "0")
	wait("7")
}
