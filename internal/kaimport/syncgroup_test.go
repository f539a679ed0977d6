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

// A sync group becomes sync_groups, which director's loader accepts; its
// notify scripts are reported, not carried.
func TestSyncGroupConversion(t *testing.T) {
	cfg, rep := load(t, natPair)
	if len(cfg.SyncGroups) != 1 || cfg.SyncGroups[0].Name != "NAT" || !slices.Equal(cfg.SyncGroups[0].Instances, []string{"VI_OUT", "VI_IN"}) {
		t.Fatalf("sync groups %+v", cfg.SyncGroups)
	}
	if f := find(t, rep, "notify_master"); f.Level != Warning || f.Pos.Line != 7 || !strings.Contains(f.Msg, "sync group") {
		t.Errorf("notify_master finding %v", f)
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
