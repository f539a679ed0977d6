package main

import (
	"strings"
	"testing"

	"github.com/director-lb/director/internal/control"
)

func TestPrintTracks(t *testing.T) {
	var b strings.Builder
	printState(&b, control.State{Instances: []control.InstanceState{{Name: "web", State: "BACKUP", Priority: 90,
		Tracks: []control.TrackState{
			{Kind: "script", Name: "chk_haproxy", State: "down", Result: "exit status 1", Weight: -60, Applied: -60},
			{Kind: "file", Name: "maint", State: "up", Result: "value 1", Weight: 0, Fault: true},
		}}}})
	out := b.String()
	for _, want := range []string{"TRACK", "chk_haproxy", "exit status 1", "-60", "maint", "FAULT", "value 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
