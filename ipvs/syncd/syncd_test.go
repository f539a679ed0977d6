package syncd

import (
	"net/netip"
	"testing"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// A configuration survives the trip to ipvsnl's daemon and back, so what
// Running reports compares with what Start sent. (The kernel layout itself
// is ipvsnl's to test.)
func TestConfigRoundTrip(t *testing.T) {
	for _, in := range []Config{
		{Role: Backup, Interface: "eth0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1},
		{Role: Master, Interface: "eth1", SyncID: 255, Group: netip.MustParseAddr("ff02::81")},
	} {
		if out := fromNL(toNL(in)); out != in {
			t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
		}
	}
	if d := toNL(Config{Role: Master, SyncID: 9}); d.State != 1 || d.SyncID != 9 {
		t.Errorf("master is state %d sync id %d, want the kernel's 1 and 9", d.State, d.SyncID)
	}
	if got := fromNL(ipvsnl.Daemon{State: 2}); got.Role != Backup {
		t.Errorf("state 2 is %s", got.Role)
	}
}
