package daemon

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/hooks"
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

// recorder is a hooks.Starter that records argv and exits at once.
type recorder struct {
	mu    sync.Mutex
	argvs [][]string
}

type doneProc struct{}

func (doneProc) Wait() error                 { return nil }
func (doneProc) Signal(syscall.Signal) error { return nil }
func (doneProc) Output() []byte              { return nil }

func (r *recorder) start(argv, _ []string) (hooks.Process, error) {
	r.mu.Lock()
	r.argvs = append(r.argvs, slices.Clone(argv))
	r.mu.Unlock()
	return doneProc{}, nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.argvs {
		out = append(out, strings.Join(a, " "))
	}
	slices.Sort(out)
	return out
}

// Real-server and quorum hooks get the service, address and state after
// their own arguments, and the FIFO gets keepalived's RS and VS lines.
func TestHealthHooks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	rec := &recorder{}
	d := &Daemon{log: quietLogger(), hooks: &hookState{runner: hooks.New(hooks.Options{Start: rec.start, Logger: quietLogger()})}}
	defer d.closeHooks(context.Background())
	if err := d.setFIFO(fifo); err != nil {
		t.Fatal(err)
	}
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	svc := &config.Service{Name: "http", Addr: netip.MustParseAddr("192.0.2.10"), Port: 80, Protocol: "tcp",
		QuorumDown: config.Command{"/bin/q", "lost"}}
	rs := &config.RealServer{Addr: netip.MustParseAddr("10.0.0.21"), Port: 8080, NotifyDown: config.Command{"/bin/rs"}}
	d.healthHooks(healthEvent{svc: svc, rs: rs, up: false})
	d.healthHooks(healthEvent{svc: svc, rs: rs, up: true}) // no notify_up: a line only
	d.healthHooks(healthEvent{svc: svc, up: false})
	want := []string{"/bin/q lost http DOWN", "/bin/rs http 10.0.0.21:8080 DOWN"}
	testwait.Eventually(t, patience, "both hooks ran", func() bool { return slices.Equal(rec.got(), want) })
	b := make([]byte, 4096)
	n, _ := rd.Read(b)
	lines := "RS [10.0.0.21]:tcp:8080 [192.0.2.10]:tcp:80 DOWN\nRS [10.0.0.21]:tcp:8080 [192.0.2.10]:tcp:80 UP\nVS [192.0.2.10]:tcp:80 DOWN\n"
	if string(b[:n]) != lines {
		t.Errorf("FIFO got %q, want %q", b[:n], lines)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A reload that changes only hooks keeps the instance running (no
// handover) and the next change runs the new hook.
func TestReloadChangesHooksLive(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := func(word string) string {
		return strings.NewReplacer("SCRIPT", script, "WORD", word).Replace(`
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24], notify_fault: [SCRIPT, WORD]}
`)
	}
	h := start(t, yaml("old"))
	before := h.mustRunning("web").in
	if _, err := h.apply(yaml("new")); err != nil {
		t.Fatal(err)
	}
	r := h.mustRunning("web")
	if r.in != before {
		t.Fatal("a hook change restarted the instance")
	}
	r.in.SetLink(false)
	testwait.Eventually(t, patience, "the new FAULT hook", func() bool { return slices.Equal(readLines(out), []string{"new"}) })
}
