package labplan

import (
	"strings"
	"testing"
	"time"
)

func haproxyParams(impl Impl) Params {
	p := DefaultParams(impl)
	p.Track = &Track{Interval: Duration(time.Second), Fall: 2, Rise: 2, Weight: -60, Maintenance: true}
	return p
}

// director accepts the HAProxy pair's tracking, and it tracks this node's
// own HAProxy and maintenance file.
func TestDirectorTrackConfig(t *testing.T) {
	for _, node := range []string{LB1, LB2} {
		cfg, body := loadDirectorConfig(t, haproxyParams(Director), node)
		if len(cfg.Scripts) != 1 || cfg.Scripts[0].Name != "chk_haproxy" || len(cfg.TrackFiles) != 1 {
			t.Fatalf("%s: scripts %+v files %+v\n%s", node, cfg.Scripts, cfg.TrackFiles, body)
		}
		s := cfg.Scripts[0]
		if strings.Join(s.Command, " ") != "/bin/sh /mnt/out/"+CheckScriptFile(node) || s.Fall != 2 || s.Rise != 2 || s.Weight != -60 {
			t.Errorf("%s: script %+v", node, s)
		}
		if cfg.TrackFiles[0].Path != MaintenanceFile(node) {
			t.Errorf("%s: maintenance file %q", node, cfg.TrackFiles[0].Path)
		}
		if tr := cfg.Instances[0].Track; len(tr) != 2 || tr[0].Script != "chk_haproxy" || tr[1].File != "maintenance" {
			t.Errorf("%s: instance tracks %+v", node, tr)
		}
	}
}

func TestKeepalivedTrackConfig(t *testing.T) {
	body, err := KeepalivedConfig(haproxyParams(Keepalived), LB2)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"script_user root",
		"vrrp_script chk_haproxy {\n    script \"/bin/sh /mnt/out/chk-haproxy-lb2.sh\"\n    interval 1\n    fall 2\n    rise 2\n    weight -60\n}",
		"track_file maintenance {\n    file \"/run/maintenance-lb2\"\n    weight 0\n}",
		"    track_script {\n        chk_haproxy\n    }\n    track_file {\n        maintenance\n    }\n    virtual_ipaddress",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, body)
		}
	}
}

func TestCheckScriptNamesItsNode(t *testing.T) {
	if s := CheckScript(LB1); !strings.Contains(s, HAProxyPIDFile(LB1)) || strings.Contains(s, LB2) {
		t.Errorf("lb1's check: %q", s)
	}
}

func TestDirectorHooksConfig(t *testing.T) {
	p := DefaultParams(Director)
	p.Hooks = &Hooks{Timeout: Duration(time.Second)}
	cfg, body := loadDirectorConfig(t, p, LB2)
	if cfg.NotifyFIFO != NotifyFIFO(LB2) || cfg.Hooks.Timeout.D() != time.Second {
		t.Errorf("fifo %q hooks %+v\n%s", cfg.NotifyFIFO, cfg.Hooks, body)
	}
	if got := strings.Join(cfg.Instances[0].NotifyMaster, " "); got != "/bin/sh /mnt/out/"+SlowHookFile {
		t.Errorf("notify_master = %q", got)
	}
}
