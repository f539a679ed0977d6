package kaimport

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const trackConf = `
vrrp_script chk_haproxy {
    script "killall -0 haproxy"
    interval 2
    timeout 1
    fall 2
    rise 3
    weight -20
}
vrrp_script chk_port {
    script "</dev/tcp/127.0.0.1/80"
    weight 10 reverse
    user nobody nogroup
    init_fail
}
track_file maint {
    file "/etc/keepalived/maint"
    weight 0
}
vrrp_track_file offset {
    file "/run/offset"
}
vrrp_track_process haproxy {
    process haproxy
    quorum 1
    quorum_max 4
    delay 2
    weight -30
}
vrrp_track_process nginx_master {
    process "nginx: master process" -g
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.0.2.10/24
    }
    track_script {
        chk_haproxy
        chk_port weight 5 noreverse
    }
    track_interface {
        eth1 weight -10
        eth2
    }
    track_file {
        maint
        offset weight 2
    }
    track_process {
        haproxy
        nginx_master weight -60 reverse
    }
}
`

// Everything keepalived tracks is carried over and loads in director.
func TestImportTracking(t *testing.T) {
	cfg, rep := load(t, trackConf)
	if len(cfg.Scripts) != 2 || len(cfg.TrackFiles) != 2 || len(cfg.TrackProcesses) != 2 {
		t.Fatalf("scripts %d, track files %d, processes %d; want 2 each", len(cfg.Scripts), len(cfg.TrackFiles), len(cfg.TrackProcesses))
	}
	s := cfg.Scripts[0]
	if !slices.Equal(s.Command, []string{"killall", "-0", "haproxy"}) || s.Shell != "" || s.Interval.D() != 2*time.Second ||
		s.Timeout.D() != time.Second || s.Fall != 2 || s.Rise != 3 || s.Weight != -20 || s.WeightReverse {
		t.Errorf("chk_haproxy: %+v", s)
	}
	s = cfg.Scripts[1]
	if s.Shell != "</dev/tcp/127.0.0.1/80" || len(s.Command) != 0 || s.Weight != 10 || !s.WeightReverse || s.User != "nobody" ||
		s.Interval.D() != time.Second || s.Timeout.D() != time.Second {
		t.Errorf("chk_port: %+v", s)
	}
	if f := cfg.TrackFiles; f[0].Path != "/etc/keepalived/maint" || *f[0].Weight != 0 || f[1].Path != "/run/offset" || *f[1].Weight != 1 {
		t.Errorf("track files: %+v", f)
	}
	if p := cfg.TrackProcesses[0]; p.Process != "haproxy" || p.Quorum != 1 || p.QuorumMax != 4 || p.Delay.D() != 2*time.Second || p.Weight != -30 {
		t.Errorf("process haproxy: %+v", p)
	}
	if p := cfg.TrackProcesses[1]; p.Process != "" || !slices.Equal(p.Argv, []string{"nginx: master process", "-g"}) {
		t.Errorf("process nginx_master: %+v", p)
	}
	var got []string
	for _, tr := range cfg.Instances[0].Track {
		k, n := tr.Kind()
		e := k + ":" + n
		if tr.Weight != nil {
			e += " w" + strconv.Itoa(*tr.Weight)
		}
		if tr.WeightReverse != nil {
			e += map[bool]string{true: " reverse", false: " noreverse"}[*tr.WeightReverse]
		}
		got = append(got, e)
	}
	want := []string{"script:chk_haproxy", "script:chk_port w5 noreverse", "interface:eth1 w-10", "interface:eth2",
		"file:maint", "file:offset w2", "process:haproxy", "process:nginx_master w-60 reverse"}
	if !slices.Equal(got, want) {
		t.Errorf("tracks\n got %v\nwant %v", got, want)
	}
	for _, kw := range []string{"vrrp_script", "track_script", "track_interface", "track_file", "track_process"} {
		for _, f := range rep.Findings {
			if f.Keyword == kw && f.Level != Note {
				t.Errorf("%s still reported: %v", kw, f)
			}
		}
	}
	if f := find(t, rep, "init_fail"); f.Level != Note {
		t.Errorf("init_fail: %v", f)
	}
	if f := find(t, rep, "script"); f.Level != Note || !strings.Contains(f.Msg, "shell") {
		t.Errorf("a script with shell syntax: %v, want a note that it runs in a shell", f)
	}
}

// A track naming no declared script is director's error, placed at the
// keepalived line.
func TestImportTrackUnknownScript(t *testing.T) {
	src := strings.Replace(instance, "interface eth0", "interface eth0\n    track_script {\n        nope\n    }", 1)
	_, rep, err := convertString(t, src, testOptions)
	if err == nil {
		t.Fatal("converted a track of an undeclared script")
	}
	found := false
	for _, f := range rep.Findings {
		if f.Level == Error && strings.Contains(f.Msg, `"nope"`) && f.Pos.Line == 5 {
			found = true
		}
	}
	if !found {
		t.Errorf("no error about nope at line 5, where it is named: %v", rep.Findings)
	}
}
