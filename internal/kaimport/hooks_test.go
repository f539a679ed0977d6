package kaimport

import (
	"slices"
	"strings"
	"testing"

	"github.com/director-lb/director/internal/config"
)

func TestScriptArgv(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"/bin/x", []string{"/bin/x"}},
		{"  /etc/keepalived/master.sh VI_1  web ", []string{"/etc/keepalived/master.sh", "VI_1", "web"}},
		{"/bin/x > /tmp/log", []string{"/bin/sh", "-c", "/bin/x > /tmp/log"}},
		{"/bin/x $HOME", []string{"/bin/sh", "-c", "/bin/x $HOME"}},
		{"/bin/x 'a b'", []string{"/bin/sh", "-c", "/bin/x 'a b'"}},
		{"/bin/a; /bin/b", []string{"/bin/sh", "-c", "/bin/a; /bin/b"}},
	} {
		if got := scriptArgv(c.in); !slices.Equal(got, c.want) {
			t.Errorf("scriptArgv(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Every keepalived hook keyword is carried over and loads through
// director's own loader.
func TestHooksCarriedOver(t *testing.T) {
	src := `
global_defs {
    notify_fifo /run/keepalived.fifo root
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
    notify /usr/local/bin/notify.sh
    notify_master "/usr/local/bin/vip.sh up VI_1"
    notify_backup /usr/local/bin/backup.sh
    notify_fault "/usr/bin/logger -t ka fault > /dev/null"
    notify_stop /usr/local/bin/stop.sh
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    quorum_up /usr/local/bin/q.sh
    quorum_down "/usr/local/bin/q.sh down"
    real_server 192.0.2.21 80 {
        notify_up "/usr/local/bin/rs.sh up"
        notify_down /usr/local/bin/rs-down.sh
    }
}
`
	cfg, rep := load(t, src)
	in := cfg.Instances[0]
	for _, c := range []struct {
		name      string
		got, want config.Command
	}{
		{"notify_master", in.NotifyMaster, config.Command{"/usr/local/bin/vip.sh", "up", "VI_1"}},
		{"notify_backup", in.NotifyBackup, config.Command{"/usr/local/bin/backup.sh"}},
		{"notify_fault", in.NotifyFault, config.Command{"/bin/sh", "-c", "/usr/bin/logger -t ka fault > /dev/null"}},
		{"notify_stop", in.NotifyStop, config.Command{"/usr/local/bin/stop.sh"}},
		{"quorum_up", cfg.Services[0].QuorumUp, config.Command{"/usr/local/bin/q.sh"}},
		{"quorum_down", cfg.Services[0].QuorumDown, config.Command{"/usr/local/bin/q.sh", "down"}},
		{"notify_up", cfg.Services[0].RealServers[0].NotifyUp, config.Command{"/usr/local/bin/rs.sh", "up"}},
		{"notify_down", cfg.Services[0].RealServers[0].NotifyDown, config.Command{"/usr/local/bin/rs-down.sh"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if in.Notify != "/usr/local/bin/notify.sh" || cfg.NotifyFIFO != "/run/keepalived.fifo" {
		t.Errorf("notify %q, notify_fifo %q", in.Notify, cfg.NotifyFIFO)
	}
	for _, f := range rep.Findings {
		if f.Level == Warning && strings.Contains(f.Keyword, "notify") {
			t.Errorf("still warned about: %v", f)
		}
	}
}

func TestHookScriptNeedsAbsolutePath(t *testing.T) {
	src := strings.Replace(instance, "interface eth0", "interface eth0\n    notify_master master.sh", 1)
	_, rep, err := convertString(t, src, testOptions)
	if err == nil {
		t.Fatal("a relative notify_master was converted")
	}
	if f := find(t, rep, "notify_master"); f.Level != Error || !strings.Contains(f.Msg, "absolute path") {
		t.Errorf("finding %v", f)
	}
}
