package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/control"
)

// The state output has a line per sync group with its state and members,
// and no sync group table without groups.
func TestPrintStateSyncGroups(t *testing.T) {
	st := control.State{Version: "v", Started: time.Now(), Instances: []control.InstanceState{{Name: "outside", State: "BACKUP"}, {Name: "inside", State: "FAULT"}}}
	var b bytes.Buffer
	printState(&b, st)
	if strings.Contains(b.String(), "SYNC GROUP") {
		t.Fatalf("sync group table without groups:\n%s", b.String())
	}
	st.SyncGroups = []control.SyncGroupState{{Name: "nat", State: "FAULT", Gate: "hold", Members: []control.SyncGroupMember{
		{Name: "outside", State: "BACKUP", Ready: true}, {Name: "inside", State: "FAULT"},
	}}}
	b.Reset()
	printState(&b, st)
	want := "nat         FAULT  hold  outside BACKUP (ready), inside FAULT"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("state output:\n%s\nwant a line %q", b.String(), want)
	}
}
