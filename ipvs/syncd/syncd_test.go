package syncd

import (
	"net/netip"
	"testing"
)

// The daemon attribute must round-trip through the kernel's layout.
func TestEncodeDecode(t *testing.T) {
	in := Config{Role: Backup, Interface: "eth0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	b, err := encode(in, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// Stop sends the state only.
	b, _ = encode(Config{Role: Master, Interface: "eth0"}, false)
	out, _ = decode(b)
	if out != (Config{Role: Master}) {
		t.Errorf("stop attrs decode to %+v", out)
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := encode(Config{Role: Master, Interface: "eth0", SyncID: 1, Group: netip.MustParseAddr("ff02::81")}, true)
	f.Add(b)
	f.Add([]byte{4, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		decode(b) // must not panic
	})
}
