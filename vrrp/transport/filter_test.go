package transport

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// ip4 builds an IPv4 packet with ihl 32-bit words of header, ttl, src,
// dst and a VRRP header of verType and vrid.
func ip4(ihl int, ttl byte, src, dst string, verType, vrid byte) []byte {
	b := make([]byte, ihl*4+8)
	b[0] = 0x40 | byte(ihl)
	b[8], b[9] = ttl, protocolVRRP
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	b[ihl*4], b[ihl*4+1] = verType, vrid
	return b
}

func run(t *testing.T, family int, f Filter, pkt []byte) bool {
	t.Helper()
	raw, err := compileFilter(family, f)
	if err != nil {
		t.Fatal(err)
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("the kernel's rules refuse the program: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return n >= len(pkt) // accepted whole (0: dropped)
}

func TestFilter4(t *testing.T) {
	peer, own, group := "10.0.0.12", "10.0.0.11", "224.0.0.18"
	multicast := Filter{VRIDs: []uint8{51, 52}, TTL255: true}
	unicast := Filter{VRIDs: []uint8{51}, TTL255: true, Sources: []netip.Addr{netip.MustParseAddr(peer)}, Dest: netip.MustParseAddr(own)}
	cases := []struct {
		name string
		f    Filter
		pkt  []byte
		want bool
	}{
		{"v3 advert", multicast, ip4(5, 255, peer, group, verTypeV3, 51), true},
		{"v2 advert, other VRID of ours", multicast, ip4(5, 255, peer, group, verTypeV2, 52), true},
		{"IP options", multicast, ip4(6, 255, peer, group, verTypeV3, 52), true},
		{"crossed a router", multicast, ip4(5, 254, peer, group, verTypeV3, 51), false},
		{"another virtual router", multicast, ip4(5, 255, peer, group, verTypeV3, 99), false},
		{"junk type", multicast, ip4(5, 255, peer, group, 0x77, 51), false},
		{"truncated", multicast, ip4(5, 255, peer, group, verTypeV3, 51)[:21], false},
		{"unicast from the peer", unicast, ip4(5, 255, peer, own, verTypeV3, 51), true},
		{"unicast from a stranger", unicast, ip4(5, 255, "10.0.0.66", own, verTypeV3, 51), false},
		{"unicast to another address", unicast, ip4(5, 255, peer, "10.0.0.13", verTypeV3, 51), false},
		{"routed unicast", Filter{VRIDs: []uint8{51}}, ip4(5, 3, peer, own, verTypeV3, 51), true},
		{"no VRIDs yet", Filter{}, ip4(5, 255, peer, group, verTypeV3, 51), false},
	}
	for _, c := range cases {
		if got := run(t, 4, c.f, c.pkt); got != c.want {
			t.Errorf("%s: accepted %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilter6(t *testing.T) {
	f := Filter{VRIDs: []uint8{51}, TTL255: true, Sources: []netip.Addr{netip.MustParseAddr("fe80::1")}}
	if !run(t, 6, f, []byte{verTypeV3, 51, 100, 1, 0, 100, 0, 0}) {
		t.Error("a v3 advert for VRID 51 was refused")
	}
	if run(t, 6, f, []byte{verTypeV3, 50, 100, 1, 0, 100, 0, 0}) {
		t.Error("VRID 50 accepted")
	}
}

// Every VRID at once still makes a program the kernel takes: jumps never
// depend on how many values a test has.
func TestFilterAllVRIDs(t *testing.T) {
	var all []uint8
	for v := 1; v <= 255; v++ {
		all = append(all, uint8(v))
	}
	var peers []netip.Addr
	for i := range 200 {
		peers = append(peers, netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}))
	}
	f := Filter{VRIDs: all, Sources: peers, TTL255: true}
	if !run(t, 4, f, ip4(5, 255, "10.0.0.200", "224.0.0.18", verTypeV3, 255)) {
		t.Error("the last VRID from the last peer was refused")
	}
}
