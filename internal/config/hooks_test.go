package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const hooksYAML = `
notify_fifo: /run/director/notify.fifo
hooks: {timeout: 5s, queue: 8}
instances:
  - name: web
    interface: eth0
    vrid: 51
    vips: [10.0.0.100]
    notify: /usr/local/bin/notify
    notify_master: [/usr/local/bin/vip, up, web]
    notify_backup: /usr/local/bin/backup
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    quorum: 1
    quorum_up: [/usr/local/bin/q, up]
    quorum_down: [/usr/local/bin/q, down]
    real_servers:
      - address: 10.0.1.21
        notify_up: [/usr/local/bin/rs, up]
        notify_down: /usr/local/bin/rs-down
`

// hookBase is one instance plus extra lines for it.
func hookBase(extra string) string {
	return "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [10.0.0.100]\n" + extra
}

func TestParseHooks(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(hooksYAML))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	if in.Notify != "/usr/local/bin/notify" || !slices.Equal(in.NotifyMaster, Command{"/usr/local/bin/vip", "up", "web"}) ||
		!slices.Equal(in.NotifyBackup, Command{"/usr/local/bin/backup"}) || in.NotifyFault != nil {
		t.Errorf("instance hooks %+v", in.StateHooks)
	}
	if !slices.Equal(in.ForState("MASTER"), in.NotifyMaster) || in.ForState("STOP") != nil {
		t.Error("ForState picks the wrong command")
	}
	s := cfg.Services[0]
	if !slices.Equal(s.QuorumDown, Command{"/usr/local/bin/q", "down"}) || !slices.Equal(s.RealServers[0].NotifyDown, Command{"/usr/local/bin/rs-down"}) {
		t.Errorf("service hooks %v %v", s.QuorumDown, s.RealServers[0].NotifyDown)
	}
	if cfg.NotifyFIFO != "/run/director/notify.fifo" || cfg.Hooks.Timeout.D() != 5*time.Second || cfg.Hooks.Queue != 8 {
		t.Errorf("fifo %q hooks %+v", cfg.NotifyFIFO, cfg.Hooks)
	}
	cfg, err = Parse("d.yaml", []byte(hookBase("")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hooks.Timeout.D() != DefaultHookTimeout || cfg.Hooks.Queue != DefaultHookQueue {
		t.Errorf("defaults %+v", cfg.Hooks)
	}
}

func TestParseHooksBad(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"    notify_master: [bin/x]\n", `d.yaml:6: instances[0].notify_master: "bin/x" must be an absolute path`},
		{"    notify_fault: ['']\n", "instances[0].notify_fault: the command is empty"},
		{"    notify_stop: {a: b}\n", "want a command"},
		{"    notify_mastr: /x\n", "unknown field"},
	} {
		_, err := Parse("d.yaml", []byte(hookBase(tc.edit)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.edit, err, tc.want)
		}
	}
	for _, tc := range []struct{ top, want string }{
		{"notify_fifo: fifo\n", `notify_fifo: "fifo" must be an absolute path`},
		{"rt_priority: 100\n", `rt_priority: must be 0 (off) or 1-99, got 100`},
		{"rt_priority: -1\n", `rt_priority: must be 0 (off) or 1-99, got -1`},
		{"hooks: {queue: 0}\n", "hooks.queue: must be 1-10000"},
		{"hooks: {timeout: 2h}\n", "hooks.timeout: must be 10ms-1h"},
	} {
		_, err := Parse("d.yaml", []byte(tc.top+hookBase("")))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.top, err, tc.want)
		}
	}
}

// Changing only hooks is a live change: hooks are read when they run.
func TestCompareInstanceHooksLive(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(hooksYAML))
	if err != nil {
		t.Fatal(err)
	}
	next := *cfg
	next.Instances = slices.Clone(cfg.Instances)
	next.Instances[0].NotifyMaster = Command{"/bin/other"}
	if got := CompareInstance(&cfg.Instances[0], &next.Instances[0]); got != InstanceLive {
		t.Errorf("hook change: %v, want InstanceLive", got)
	}
	if d := Diff(cfg, &next); len(d) != 1 || !strings.Contains(d[0].How, "notify hooks changed") {
		t.Errorf("diff %v", d)
	}
}

// Hooks are per node: the pair hash ignores them, so two nodes with
// different scripts (or one not yet upgraded) still match.
func TestPairHashIgnoresHooks(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(hooksYAML))
	if err != nil {
		t.Fatal(err)
	}
	before := PairHash(cfg)
	cfg.Services[0].QuorumUp, cfg.Services[0].QuorumDown = nil, nil
	cfg.Services[0].RealServers[0].NotifyUp, cfg.Services[0].RealServers[0].NotifyDown = nil, nil
	cfg.Instances[0].NotifyMaster = nil
	if PairHash(cfg) != before {
		t.Error("PairHash changed with the hooks")
	}
}
