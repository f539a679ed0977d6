package main

import (
	"testing"

	"github.com/director-lb/director/labtests/labplan"
)

// Server steps name a real server and one of its servers; anything else
// is refused before a namespace is touched.
func TestServerStepRefusesUnknown(t *testing.T) {
	hs := &hostServers{stops: map[serverKey]func(){}}
	for _, c := range []struct{ host, server string }{{labplan.LB1, labplan.ServerDNS}, {"nobody", labplan.ServerEcho}, {labplan.RS1, "ssh"}} {
		if err := hs.set(c.host, c.server, false); err == nil {
			t.Errorf("server step %s %s accepted", c.host, c.server)
		}
	}
	// Closing an open server calls its stop once and forgets it.
	stops := 0
	hs.stops[serverKey{labplan.RS2, labplan.ServerDNS}] = func() { stops++ }
	for range 2 {
		if err := hs.set(labplan.RS2, labplan.ServerDNS, false); err != nil {
			t.Fatal(err)
		}
	}
	if stops != 1 || len(hs.stops) != 0 {
		t.Errorf("stopped %d times, %d still open; want once, none", stops, len(hs.stops))
	}
}
