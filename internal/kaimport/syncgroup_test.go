package kaimport

import (
	"slices"
	"strings"
	"testing"
)

const natPair = `
vrrp_sync_group NAT {
    group {
        VI_OUT
        VI_IN
    }
    notify_master /etc/keepalived/master.sh
    global_tracking
}

vrrp_instance VI_OUT {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
}

vrrp_instance VI_IN {
    interface eth1
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.1/24
    }
}
`

// A sync group becomes sync_groups, which director's loader accepts,
// with its notify scripts.
func TestSyncGroupConversion(t *testing.T) {
	cfg, rep := load(t, natPair)
	if len(cfg.SyncGroups) != 1 || cfg.SyncGroups[0].Name != "NAT" || !slices.Equal(cfg.SyncGroups[0].Instances, []string{"VI_OUT", "VI_IN"}) {
		t.Fatalf("sync groups %+v", cfg.SyncGroups)
	}
	if got := cfg.SyncGroups[0].NotifyMaster; !slices.Equal(got, []string{"/etc/keepalived/master.sh"}) {
		t.Errorf("group notify_master %v", got)
	}
	for _, f := range rep.Findings {
		if f.Keyword == "notify_master" {
			t.Errorf("notify_master still reported: %v", f)
		}
	}
	if f := find(t, rep, "global_tracking"); f.Level != Note {
		t.Errorf("global_tracking finding %v", f)
	}
	for _, f := range rep.Findings {
		if f.Keyword == "vrrp_sync_group" {
			t.Errorf("the group itself is still reported: %v", f)
		}
	}
}

// Group tracks become the group's (FAULT while down, a weight dropped
// with a note); members' track weights become 0, as keepalived ignores
// them in a group, unless sync_group_tracking_weight keeps them.
func TestSyncGroupTracking(t *testing.T) {
	src := `
vrrp_script chk_fw {
    script "/usr/local/bin/chk_fw"
    weight -20
}
vrrp_sync_group NAT {
    group {
        VI_OUT
        VI_IN
    }
    track_interface {
        eth2 weight -10
    }
    track_script {
        chk_fw
    }
    notify /etc/keepalived/group.sh
    notify_fault "/etc/keepalived/fault.sh NAT"
}
vrrp_instance VI_OUT {
    interface eth0
    virtual_router_id 51
    track_script {
        chk_fw weight -30
    }
    virtual_ipaddress {
        192.0.2.10/24
    }
}
vrrp_instance VI_IN {
    interface eth1
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.1/24
    }
}
`
	cfg, rep := load(t, src)
	g := cfg.SyncGroups[0]
	if len(g.Track) != 2 || g.Track[0].Interface != "eth2" || g.Track[1].Script != "chk_fw" || g.Track[0].Weight != nil {
		t.Errorf("group tracks %+v", g.Track)
	}
	if g.Notify != "/etc/keepalived/group.sh" || !slices.Equal(g.NotifyFault, []string{"/etc/keepalived/fault.sh", "NAT"}) {
		t.Errorf("group hooks %q %v", g.Notify, g.NotifyFault)
	}
	if f := find(t, rep, "track_interface"); f.Level != Note || !strings.Contains(f.Msg, "weight -10 dropped") {
		t.Errorf("track_interface finding %v", f)
	}
	out := cfg.Instances[0].Tracks()
	if len(out) != 3 || out[0].Weight == nil || *out[0].Weight != 0 {
		t.Errorf("VI_OUT tracks %+v, want its own at weight 0 and the group's two", out)
	}
	cfg, _ = load(t, strings.Replace(src, "    notify /etc", "    sync_group_tracking_weight\n    notify /etc", 1))
	if w := cfg.Instances[0].Track[0].Weight; w == nil || *w != -30 {
		t.Errorf("with sync_group_tracking_weight VI_OUT's weight is %v, want -30", w)
	}
}

// Several members on one line are all members.
func TestSyncGroupMembersOnOneLine(t *testing.T) {
	src := strings.Replace(natPair, "        VI_OUT\n        VI_IN\n", "        VI_OUT VI_IN\n", 1)
	cfg, _ := load(t, src)
	if len(cfg.SyncGroups) != 1 || !slices.Equal(cfg.SyncGroups[0].Instances, []string{"VI_OUT", "VI_IN"}) {
		t.Fatalf("sync groups %+v", cfg.SyncGroups)
	}
}

// A member that names no instance is director's error, placed at the
// member's line in keepalived.conf.
func TestSyncGroupUnknownMember(t *testing.T) {
	src := strings.Replace(natPair, "        VI_IN\n    }", "        VI_INN\n    }", 1)
	_, rep, err := convertString(t, src, testOptions)
	if err == nil {
		t.Fatal("converted a group with an unknown member")
	}
	var found bool
	for _, f := range rep.Findings {
		if f.Level == Error && f.Pos.Line == 5 && strings.Contains(f.Msg, `no instance named "VI_INN"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no error at line 5 about VI_INN in %v", rep.Findings)
	}
}
