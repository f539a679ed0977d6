package daemon

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/vrrp"
)

func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// State hooks run with keepalived's arguments, per-state before notify, in
// order per instance; a slow hook does not hold up the takeover, and the
// STOP hooks run at shutdown.
func TestInstanceHooks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	slowDone := filepath.Join(dir, "slow-done")
	yaml := strings.NewReplacer("SCRIPT", script, "SLOWDONE", slowDone).Replace(`
control_socket: %s
hooks: {timeout: 20s}
instances:
  - name: web
    interface: eth0
    vrid: 51
    advert_interval: 20ms
    vips: [10.0.0.100/24]
    notify: SCRIPT
    notify_backup: [/bin/sh, -c, "sleep 2; touch SLOWDONE"]
    notify_master: [SCRIPT, became, master]
    notify_stop: [SCRIPT, stopping]
`)
	h := start(t, yaml)
	l := localOf(t, h.mustRunning("web"))
	testwait.Eventually(t, patience, "web holding its VIPs", l.Held)
	if _, err := os.Stat(slowDone); err == nil {
		t.Error("the takeover waited for the slow BACKUP hook")
	}
	want := []string{"INSTANCE web BACKUP 100", "became master", "INSTANCE web MASTER 100"}
	testwait.Eventually(t, patience, "BACKUP then MASTER hooks", func() bool { return slices.Equal(readLines(out), want) })
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	want = append(want, "stopping", "INSTANCE web STOP 100")
	if got := readLines(out); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// Group and instance changes are written to the FIFO in keepalived's format.
func TestFIFOLines(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "notify.fifo")
	h := start(t, strings.Replace(instancesYAML, "instances:", "notify_fifo: "+fifo+"\ninstances:", 1))
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	h.d.notifyGroup("g1", &config.StateHooks{}, vrrp.StateFault)
	h.mustRunning("web").in.SetLink(false)
	br := bufio.NewReader(rd)
	var got []string
	testwait.Eventually(t, patience, "GROUP and INSTANCE lines", func() bool {
		line, err := br.ReadString('\n')
		if err == nil {
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
		return slices.Contains(got, `GROUP "g1" FAULT`) && slices.Contains(got, `INSTANCE "web" FAULT 100`)
	})
}

// healthEvents announces real-server and quorum transitions, not the
// first healthy sighting nor unknown states.
func TestHealthEvents(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{{
		Name: "http", Quorum: 1,
		RealServers: []config.RealServer{
			{Addr: netip.MustParseAddr("10.0.0.21"), Port: 80},
			{Addr: netip.MustParseAddr("10.0.0.22"), Port: 80},
		},
	}}}
	health := map[string]string{}
	status := func(_ string, ap netip.AddrPort) (string, string) { return health[ap.String()], "" }
	weights := map[string]checks.ServiceWeights{"http": {}}
	rs, quorum := map[rsKey]bool{}, map[string]bool{}
	step := func(a, b string, lost bool) []string {
		health["10.0.0.21:80"], health["10.0.0.22:80"] = a, b
		weights["http"] = checks.ServiceWeights{QuorumLost: lost}
		var out []string
		for _, e := range healthEvents(cfg, status, weights, rs, quorum) {
			what := "quorum"
			if e.rs != nil {
				what = e.rs.Addr.String()
			}
			out = append(out, what+"="+map[bool]string{true: "UP", false: "DOWN"}[e.up])
		}
		return out
	}
	up, down, unknown := checks.Up.String(), checks.Down.String(), checks.Unknown.String()
	for i, c := range []struct {
		a, b string
		lost bool
		want []string
	}{
		{unknown, unknown, false, nil},
		{up, down, false, []string{"10.0.0.22=DOWN"}},
		{down, down, true, []string{"10.0.0.21=DOWN", "quorum=DOWN"}},
		{unknown, down, true, nil},
		{up, down, false, []string{"10.0.0.21=UP", "quorum=UP"}},
		{up, down, false, nil},
	} {
		if got := step(c.a, c.b, c.lost); !slices.Equal(got, c.want) {
			t.Errorf("step %d: %v, want %v", i, got, c.want)
		}
	}
}
