package vrrp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// keepaliveCapture is one advertisement sent by keepalived 2.2.7 (Debian 12)
// in a network namespace and captured with tcpdump on the peer end of a veth.
// hex is the IP payload (IPv4 header stripped, as Parse expects).
type keepaliveCapture struct {
	name     string
	src, dst string
	hex      string
	want     Packet
}

const (
	capLL6 = "fe80::ece7:c4ff:fed5:da6c" // link-local source of the IPv6 multicast adverts
	capMC4 = "224.0.0.18"
	capMC6 = "ff02::12"
)

var keepalivedCaptures = []keepaliveCapture{
	{"v2-mcast-2vips", "10.99.0.1", capMC4, "213396020001339c0a6300330a6300340000000000000000",
		Packet{Version: V2, VRID: 51, Priority: 150, Interval: time.Second, Addresses: addrs("10.99.0.51", "10.99.0.52")}},
	{"v2-mcast-2vips-prio0", "10.99.0.1", capMC4, "213300020001c99c0a6300330a6300340000000000000000",
		Packet{Version: V2, VRID: 51, Priority: 0, Interval: time.Second, Addresses: addrs("10.99.0.51", "10.99.0.52")}},
	{"v2-mcast-pass", "10.99.0.1", capMC4, "21346401010265160a6300357333637233740000",
		Packet{Version: V2, VRID: 52, Priority: 100, Interval: 2 * time.Second, AuthType: 1,
			AuthData: [8]byte{'s', '3', 'c', 'r', '3', 't'}, Addresses: addrs("10.99.0.53")}},
	{"v2-mcast-pass-prio0", "10.99.0.1", capMC4, "213400010102c9160a6300357333637233740000",
		Packet{Version: V2, VRID: 52, Priority: 0, Interval: 2 * time.Second, AuthType: 1,
			AuthData: [8]byte{'s', '3', 'c', 'r', '3', 't'}, Addresses: addrs("10.99.0.53")}},
	{"v2-ucast", "10.99.0.1", "10.99.0.2", "2138650100016f290a6300390000000000000000",
		Packet{Version: V2, VRID: 56, Priority: 101, Interval: time.Second, Addresses: addrs("10.99.0.57")}},
	{"v2-ucast-prio0", "10.99.0.1", "10.99.0.2", "213800010001d4290a6300390000000000000000",
		Packet{Version: V2, VRID: 56, Priority: 0, Interval: time.Second, Addresses: addrs("10.99.0.57")}},
	{"v2-mcast-novip-owner", "10.99.0.1", capMC4, "2139ff000003dfc20000000000000000",
		Packet{Version: V2, VRID: 57, Priority: 255, Interval: 3 * time.Second}},
	{"v2-mcast-novip-prio0", "10.99.0.1", capMC4, "213900000003dec30000000000000000",
		Packet{Version: V2, VRID: 57, Priority: 0, Interval: 3 * time.Second}},
	{"v3-mcast4-100ms", "10.99.0.1", capMC4, "3135c801000a11330a630036",
		Packet{Version: V3, VRID: 53, Priority: 200, Interval: 100 * time.Millisecond, Addresses: addrs("10.99.0.54")}},
	{"v3-mcast4-100ms-prio0", "10.99.0.1", capMC4, "31350001000ad9330a630036",
		Packet{Version: V3, VRID: 53, Priority: 0, Interval: 100 * time.Millisecond, Addresses: addrs("10.99.0.54")}},
	{"v3-ucast4-500ms", "10.99.0.1", "10.99.0.2", "31376e01003240b50a630038",
		Packet{Version: V3, VRID: 55, Priority: 110, Interval: 500 * time.Millisecond, Addresses: addrs("10.99.0.56")}},
	{"v3-ucast4-500ms-prio0", "10.99.0.1", "10.99.0.2", "313700010032aeb50a630038",
		Packet{Version: V3, VRID: 55, Priority: 0, Interval: 500 * time.Millisecond, Addresses: addrs("10.99.0.56")}},
	{"v3-mcast4-5vips", "10.99.0.1", capMC4, "313cff050064af310a63003c0a63003d0a63003e0a63003f0a630040",
		Packet{Version: V3, VRID: 60, Priority: 255, Interval: time.Second,
			Addresses: addrs("10.99.0.60", "10.99.0.61", "10.99.0.62", "10.99.0.63", "10.99.0.64")}},
	{"v3-mcast4-5vips-prio0", "10.99.0.1", capMC4, "313c00050064ae320a63003c0a63003d0a63003e0a63003f0a630040",
		Packet{Version: V3, VRID: 60, Priority: 0, Interval: time.Second,
			Addresses: addrs("10.99.0.60", "10.99.0.61", "10.99.0.62", "10.99.0.63", "10.99.0.64")}},
	{"v3-mcast6", capLL6, capMC6,
		"313678020064d12dfd990000000000000000000000000054fd990000000000000000000000000055",
		Packet{Version: V3, VRID: 54, Priority: 120, Interval: time.Second, Addresses: addrs("fd99::54", "fd99::55")}},
	{"v3-mcast6-prio0", capLL6, capMC6,
		"313600020064492efd990000000000000000000000000054fd990000000000000000000000000055",
		Packet{Version: V3, VRID: 54, Priority: 0, Interval: time.Second, Addresses: addrs("fd99::54", "fd99::55")}},
	{"v3-mcast6-linklocal-10ms", capLL6, capMC6,
		"313bff0300014b96fe800000000000000000000000000059fd990000000000000000000000000059fd99000000000000000000000000005a",
		Packet{Version: V3, VRID: 59, Priority: 255, Interval: 10 * time.Millisecond,
			Addresses: addrs("fe80::59", "fd99::59", "fd99::5a")}},
	{"v3-mcast6-linklocal-10ms-prio0", capLL6, capMC6,
		"313b000300014a97fe800000000000000000000000000059fd990000000000000000000000000059fd99000000000000000000000000005a",
		Packet{Version: V3, VRID: 59, Priority: 0, Interval: 10 * time.Millisecond,
			Addresses: addrs("fe80::59", "fd99::59", "fd99::5a")}},
	{"v3-ucast6-40.95s", "fd99::1", "fd99::2", "313aff010fffc613fd990000000000000000000000000058",
		Packet{Version: V3, VRID: 58, Priority: 255, Interval: 40950 * time.Millisecond, Addresses: addrs("fd99::58")}},
	{"v3-ucast6-40.95s-prio0", "fd99::1", "fd99::2", "313a00010fffc514fd990000000000000000000000000058",
		Packet{Version: V3, VRID: 58, Priority: 0, Interval: 40950 * time.Millisecond, Addresses: addrs("fd99::58")}},
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func packetsEqual(a, b *Packet) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.Interval == b.Interval && a.AuthType == b.AuthType && a.AuthData == b.AuthData &&
		slices.Equal(a.Addresses, b.Addresses)
}

// checksumOK recomputes the checksum independently of Parse: the one's-
// complement sum over the pseudo-header (v3) and the message, including the
// checksum field, must be 0xffff.
func checksumOK(b []byte, src, dst netip.Addr) bool {
	var words []byte
	if b[0]>>4 == 3 {
		words = append(words, src.AsSlice()...)
		words = append(words, dst.AsSlice()...)
		words = append(words, 0, 0, byte(len(b)>>8), byte(len(b)), 0, 0, 0, 112)
	}
	words = append(words, b...)
	var sum uint64
	for i := 0; i+1 < len(words); i += 2 {
		sum += uint64(words[i])<<8 | uint64(words[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}

func TestKeepalivedCaptures(t *testing.T) {
	for _, c := range keepalivedCaptures {
		t.Run(c.name, func(t *testing.T) {
			b := mustHex(t, c.hex)
			src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
			if !checksumOK(b, src, dst) {
				t.Fatalf("capture checksum does not verify independently")
			}
			p, err := Parse(b, src, dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !packetsEqual(p, &c.want) {
				t.Fatalf("Parse = %+v, want %+v", *p, c.want)
			}
			out, err := c.want.Marshal(src, dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("Marshal = %x, want keepalived's %x", out, b)
			}
		})
	}
}

// TestGoldenByHand checks vectors whose checksums were worked out on paper.
func TestGoldenByHand(t *testing.T) {
	tests := []struct {
		name     string
		p        Packet
		src, dst string
		hex      string
	}{
		// 2101+6401+0001+c0a8+0001 = 0x145ac, folded 0x45ad, inverted 0xba52.
		{"v2", Packet{Version: V2, VRID: 1, Priority: 100, Interval: time.Second, Addresses: addrs("192.168.0.1")},
			"192.168.0.2", capMC4, "21016401 0001ba52 c0a80001 00000000 00000000"},
		// Message 3135+c801+000a+0a63+0036 = 0x103d9; pseudo-header
		// 0a63+0001 (src) + e000+0012 (dst) + 0070 (proto) + 000c (len)
		// brings it to 0x1eecb, folded 0xeecc, inverted 0x1133: the same
		// value keepalived sent for this packet.
		{"v3-ipv4", Packet{Version: V3, VRID: 53, Priority: 200, Interval: 100 * time.Millisecond, Addresses: addrs("10.99.0.54")},
			"10.99.0.1", capMC4, "3135c801 000a1133 0a630036"},
		// Message 3101+6401+0064 (the address is all zero) = 0x9566;
		// pseudo-header fe80+0001 (src) + ff02+0012 (dst) + 0018 (length)
		// + 0070 (next header) = 0x1fe1d; total 0x29383, folded 0x9385,
		// inverted 0x6c7a.
		{"v3-ipv6", Packet{Version: V3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: addrs("::")},
			"fe80::1", capMC6, "31016401 00646c7a" + strings.Repeat("00", 16)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := mustHex(t, strings.ReplaceAll(tc.hex, " ", ""))
			src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
			got, err := tc.p.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal = %x, want %x", got, want)
			}
			if _, err := Parse(want, src, dst); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func manyAddrs(n int, v6 bool) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		if v6 {
			out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		} else {
			out[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr(capMC4)
	src6, dst6 := netip.MustParseAddr("fe80::10"), netip.MustParseAddr(capMC6)
	tests := []struct {
		name     string
		p        Packet
		src, dst netip.Addr
		wantLen  int
	}{
		{"v2 no address", Packet{Version: V2, VRID: 1, Priority: 1, Interval: time.Second}, src4, dst4, 16},
		{"v2 one", Packet{Version: V2, VRID: 7, Priority: 254, Interval: 255 * time.Second, Addresses: manyAddrs(1, false)}, src4, dst4, 20},
		{"v2 password", Packet{Version: V2, VRID: 255, Priority: 0, Interval: time.Second, AuthType: 1,
			AuthData: [8]byte{'p', 'a', 's', 's', 'w', 'o', 'r', 'd'}, Addresses: manyAddrs(3, false)}, src4, dst4, 28},
		{"v2 255 addresses", Packet{Version: V2, VRID: 9, Priority: 100, Interval: 3 * time.Second, Addresses: manyAddrs(255, false)}, src4, dst4, 8 + 255*4 + 8},
		{"v2 ignores src/dst", Packet{Version: V2, VRID: 9, Priority: 100, Interval: time.Second, Addresses: manyAddrs(2, false)}, src4, netip.MustParseAddr("192.0.2.99"), 24},
		{"v3 ipv4 one 10ms", Packet{Version: V3, VRID: 1, Priority: 255, Interval: 10 * time.Millisecond, Addresses: manyAddrs(1, false)}, src4, dst4, 12},
		{"v3 ipv4 40.95s", Packet{Version: V3, VRID: 2, Priority: 100, Interval: 40950 * time.Millisecond, Addresses: manyAddrs(4, false)}, src4, dst4, 24},
		{"v3 ipv4 255 unicast", Packet{Version: V3, VRID: 3, Priority: 100, Interval: time.Second, Addresses: manyAddrs(255, false)}, src4, netip.MustParseAddr("192.0.2.11"), 8 + 255*4},
		{"v3 ipv6 one", Packet{Version: V3, VRID: 4, Priority: 100, Interval: 20 * time.Millisecond, Addresses: manyAddrs(1, true)}, src6, dst6, 24},
		{"v3 ipv6 255", Packet{Version: V3, VRID: 5, Priority: 100, Interval: time.Second, Addresses: manyAddrs(255, true)}, src6, dst6, 8 + 255*16},
		{"v3 ipv6 unicast", Packet{Version: V3, VRID: 6, Priority: 100, Interval: time.Second, Addresses: manyAddrs(2, true)},
			netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.Marshal(tc.src, tc.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if len(b) != tc.wantLen {
				t.Fatalf("len = %d, want %d", len(b), tc.wantLen)
			}
			if !checksumOK(b, tc.src, tc.dst) {
				t.Fatalf("checksum does not verify: %x", b)
			}
			got, err := Parse(b, tc.src, tc.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !packetsEqual(got, &tc.p) {
				t.Fatalf("Parse = %+v, want %+v", *got, tc.p)
			}
			// AppendMarshal must leave the prefix alone and produce the same bytes.
			prefix := []byte{0xde, 0xad}
			app, err := tc.p.AppendMarshal(slices.Clone(prefix), tc.src, tc.dst)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if !bytes.Equal(app[:2], prefix) || !bytes.Equal(app[2:], b) {
				t.Fatalf("AppendMarshal = %x, want %x%x", app, prefix, b)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr(capMC4)
	src6, dst6 := netip.MustParseAddr("fe80::10"), netip.MustParseAddr(capMC6)
	v4 := manyAddrs(1, false)
	v6 := manyAddrs(1, true)
	tests := []struct {
		name     string
		p        Packet
		src, dst netip.Addr
	}{
		{"version 0", Packet{VRID: 1, Interval: time.Second, Addresses: v4}, src4, dst4},
		{"version 4", Packet{Version: 4, VRID: 1, Interval: time.Second, Addresses: v4}, src4, dst4},
		{"vrid 0", Packet{Version: V3, Interval: time.Second, Addresses: v4}, src4, dst4},
		{"v3 no address", Packet{Version: V3, VRID: 1, Interval: time.Second}, src4, dst4},
		{"256 addresses", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: manyAddrs(256, false)}, src4, dst4},
		{"v2 256 addresses", Packet{Version: V2, VRID: 1, Interval: time.Second, Addresses: manyAddrs(256, false)}, src4, dst4},
		{"mixed families", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: append(manyAddrs(1, false), v6...)}, src4, dst4},
		{"invalid address", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: []netip.Addr{{}}}, src4, dst4},
		{"v2 invalid address", Packet{Version: V2, VRID: 1, Interval: time.Second, Addresses: []netip.Addr{{}}}, src4, dst4},
		{"v2 ipv6", Packet{Version: V2, VRID: 1, Interval: time.Second, Addresses: v6}, src6, dst6},
		{"v3 src family", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: v4}, src6, dst4},
		{"v3 dst family", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: v6}, src6, dst4},
		{"v3 no src", Packet{Version: V3, VRID: 1, Interval: time.Second, Addresses: v4}, netip.Addr{}, dst4},
		{"v3 interval 0", Packet{Version: V3, VRID: 1, Addresses: v4}, src4, dst4},
		{"v3 interval 5ms", Packet{Version: V3, VRID: 1, Interval: 5 * time.Millisecond, Addresses: v4}, src4, dst4},
		{"v3 interval 15ms", Packet{Version: V3, VRID: 1, Interval: 15 * time.Millisecond, Addresses: v4}, src4, dst4},
		{"v3 interval 40.96s", Packet{Version: V3, VRID: 1, Interval: 40960 * time.Millisecond, Addresses: v4}, src4, dst4},
		{"v3 negative interval", Packet{Version: V3, VRID: 1, Interval: -time.Second, Addresses: v4}, src4, dst4},
		{"v2 interval 0", Packet{Version: V2, VRID: 1, Addresses: v4}, src4, dst4},
		{"v2 interval 1.5s", Packet{Version: V2, VRID: 1, Interval: 1500 * time.Millisecond, Addresses: v4}, src4, dst4},
		{"v2 interval 256s", Packet{Version: V2, VRID: 1, Interval: 256 * time.Second, Addresses: v4}, src4, dst4},
		{"v2 auth type 2", Packet{Version: V2, VRID: 1, Interval: time.Second, AuthType: 2, Addresses: v4}, src4, dst4},
		{"v3 auth type", Packet{Version: V3, VRID: 1, Interval: time.Second, AuthType: 1, Addresses: v4}, src4, dst4},
		{"v3 auth data", Packet{Version: V3, VRID: 1, Interval: time.Second, AuthData: [8]byte{1}, Addresses: v4}, src4, dst4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := tc.p.Marshal(tc.src, tc.dst); err == nil {
				t.Fatalf("Marshal = %x, want error", b)
			}
			prefix := []byte{1, 2, 3}
			b, err := tc.p.AppendMarshal(prefix, tc.src, tc.dst)
			if err == nil || !bytes.Equal(b, prefix) {
				t.Fatalf("AppendMarshal = %x, %v; want prefix unchanged and an error", b, err)
			}
		})
	}
}

// fixChecksum rewrites the checksum of a (possibly tampered) message so that
// tests reach the check they aim at instead of failing on the checksum.
func fixChecksum(b []byte, src, dst netip.Addr) []byte {
	b[6], b[7] = 0, 0
	sum := pktSum(0, b)
	if b[0]>>4 == 3 {
		sum = pktPseudoSum(sum, src, dst, len(b))
	}
	c := ^pktFold(sum)
	b[6], b[7] = byte(c>>8), byte(c)
	return b
}

func TestParseDrops(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr(capMC4)
	src6, dst6 := netip.MustParseAddr(capLL6), netip.MustParseAddr(capMC6)
	v2 := func() []byte { return mustHex(t, "213396020001339c0a6300330a6300340000000000000000") }
	v3 := func() []byte { return mustHex(t, "3135c801000a11330a630036") }
	v36 := func() []byte {
		return mustHex(t, "313678020064d12dfd990000000000000000000000000054fd990000000000000000000000000055")
	}
	mod := func(b []byte, f func([]byte)) []byte { f(b); return b }
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     DropReason
		msg      string // substring of the message
	}{
		{"empty", nil, src4, dst4, DropShort, "0 bytes"},
		{"7 bytes", v3()[:7], src4, dst4, DropShort, "7 bytes"},
		{"v3 address cut", v3()[:10], src4, dst4, DropShort, "needs 12"},
		{"v2 without auth data", v2()[:16], src4, dst4, DropShort, "needs 24"},
		{"v3 ipv6 addresses cut", v36()[:24], src6, dst6, DropShort, "needs 40"},
		{"v3 ipv6 list read as ipv4", v36(), src4, dst4, DropLength, "trailing"},
		{"count larger than list", fixChecksum(mod(v3(), func(b []byte) { b[3] = 2 }), src4, dst4), src4, dst4, DropShort, "needs 16"},
		{"version 1", mod(v3(), func(b []byte) { b[0] = 0x11 }), src4, dst4, DropVersion, "version 1"},
		{"version 4", mod(v3(), func(b []byte) { b[0] = 0x41 }), src4, dst4, DropVersion, "version 4"},
		{"version 0 in short packet", []byte{0x01, 1, 1, 0, 0, 0, 0, 0}, src4, dst4, DropVersion, "version 0"},
		{"type 2", mod(v3(), func(b []byte) { b[0] = 0x32 }), src4, dst4, DropType, "type 2"},
		{"type 0", mod(v2(), func(b []byte) { b[0] = 0x20 }), src4, dst4, DropType, "type 0"},
		{"checksum v3", mod(v3(), func(b []byte) { b[7] ^= 1 }), src4, dst4, DropChecksum, "checksum 0x1132, want 0x1133"},
		{"checksum v3 wrong dst", v3(), src4, netip.MustParseAddr("10.99.0.2"), DropChecksum, "want 0x"},
		{"checksum v3 wrong src", v36(), netip.MustParseAddr("fe80::1"), dst6, DropChecksum, "want 0x"},
		{"checksum v2 priority", mod(v2(), func(b []byte) { b[2] = 1 }), src4, dst4, DropChecksum, "checksum 0x339c"},
		{"checksum v2 auth data", mod(v2(), func(b []byte) { b[23] = 1 }), src4, dst4, DropChecksum, "checksum"},
		{"v2 trailing byte", append(v2(), 0), src4, dst4, DropLength, "1 trailing"},
		{"v3 trailing 8 bytes", append(v3(), make([]byte, 8)...), src4, dst4, DropLength, "8 trailing"},
		{"v3 count 0", fixChecksum(mod(v3()[:8], func(b []byte) { b[3] = 0 }), src4, dst4), src4, dst4, DropLength, "count 0"},
		{"v2 over ipv6", v2(), src6, dst6, DropFamily, "IPv4 only"},
		{"src/dst families differ", v3(), src4, dst6, DropFamily, "family"},
		{"no src", v3(), netip.Addr{}, dst4, DropFamily, "family"},
		{"no dst", v2(), src4, netip.Addr{}, DropFamily, "family"},
		{"vrid 0", fixChecksum(mod(v2(), func(b []byte) { b[1] = 0 }), src4, dst4), src4, dst4, DropVRID, "VRID 0"},
		{"v3 interval 0", fixChecksum(mod(v3(), func(b []byte) { b[4], b[5] = 0xf0, 0 }), src4, dst4), src4, dst4, DropInterval, "interval 0"},
		{"v2 interval 0", fixChecksum(mod(v2(), func(b []byte) { b[5] = 0 }), src4, dst4), src4, dst4, DropInterval, "interval 0"},
		{"v2 auth type 2", fixChecksum(mod(v2(), func(b []byte) { b[4] = 2 }), src4, dst4), src4, dst4, DropAuth, "auth type 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.b, tc.src, tc.dst)
			if err == nil {
				t.Fatalf("Parse = %+v, want drop %q", *p, tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *ParseError", err, err)
			}
			if pe.Reason != tc.want || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("drop %q %q, want %q containing %q", pe.Reason, pe.Msg, tc.want, tc.msg)
			}
			if !strings.Contains(err.Error(), string(tc.want)) || !strings.Contains(err.Error(), pe.Msg) {
				t.Fatalf("Error() = %q lacks reason or message", err.Error())
			}
		})
	}
}

func TestParseIgnoresReservedBits(t *testing.T) {
	src, dst := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr(capMC4)
	b := fixChecksum(mustHex(t, "3135c801a00a11330a630036"), src, dst)
	p, err := Parse(b, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if p.Interval != 100*time.Millisecond {
		t.Fatalf("Interval = %v, want 100ms (reserved bits must not leak in)", p.Interval)
	}
}

// IPv4-mapped IPv6 src/dst, as 16-byte net.IP values yield, mean IPv4.
func TestParseMappedAddrs(t *testing.T) {
	b := mustHex(t, "3135c801000a11330a630036")
	src := netip.AddrFrom16(netip.MustParseAddr("10.99.0.1").As16())
	dst := netip.AddrFrom16(netip.MustParseAddr(capMC4).As16())
	p, err := Parse(b, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("10.99.0.54"); len(p.Addresses) != 1 || p.Addresses[0] != want {
		t.Fatalf("Addresses = %v, want [%v]", p.Addresses, want)
	}
	out, err := p.Marshal(src, dst)
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("Marshal with mapped src/dst = %x, %v; want %x", out, err, b)
	}
}

// A checksum of 0x0000 and one of 0xffff are the same one's-complement value;
// both must verify.
func TestChecksumZeroEquivalence(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr(capMC4)
	var b []byte
	for i := 0; i < 1<<16; i++ {
		p := Packet{Version: V3, VRID: 1, Priority: 100, Interval: time.Second,
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}}
		out, err := p.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if out[6] == 0 && out[7] == 0 {
			b = out
			break
		}
	}
	if b == nil {
		t.Fatal("no address gives checksum 0x0000")
	}
	if _, err := Parse(b, src, dst); err != nil {
		t.Fatalf("checksum 0x0000: %v", err)
	}
	b[6], b[7] = 0xff, 0xff
	if _, err := Parse(b, src, dst); err != nil {
		t.Fatalf("checksum 0xffff: %v", err)
	}
}

func TestParseDoesNotAliasInput(t *testing.T) {
	b := mustHex(t, "21346401010265160a6300357333637233740000")
	src, dst := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr(capMC4)
	p, err := Parse(b, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if p.AuthData != [8]byte{'s', '3', 'c', 'r', '3', 't'} || p.Addresses[0] != netip.MustParseAddr("10.99.0.53") {
		t.Fatalf("packet changed with the input buffer: %+v", *p)
	}
}

func TestAllocations(t *testing.T) {
	p := Packet{Version: V3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: manyAddrs(8, true)}
	src, dst := netip.MustParseAddr("fe80::1"), netip.MustParseAddr(capMC6)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := p.AppendMarshal(buf[:0], src, dst); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("AppendMarshal allocates %v times, want 0", n)
	}
	b, err := p.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	// One Packet and one address slice.
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(b, src, dst); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Fatalf("Parse allocates %v times, want at most 2", n)
	}
}

// The committed seed corpus must hold every capture, byte for byte, so that
// fuzzing starts from real keepalived traffic.
func TestSeedCorpusHoldsCaptures(t *testing.T) {
	for _, c := range keepalivedCaptures {
		path := filepath.Join("testdata", "fuzz", "FuzzParse", "keepalived-"+c.name)
		vals := readCorpusFile(t, path)
		src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
		want := [][]byte{mustHex(t, c.hex), src.AsSlice(), dst.AsSlice()}
		if len(vals) != 3 || !bytes.Equal(vals[0], want[0]) || !bytes.Equal(vals[1], want[1]) || !bytes.Equal(vals[2], want[2]) {
			t.Errorf("%s: holds %x, want %x", path, vals, want)
		}
	}
}

// readCorpusFile reads a "go test fuzz v1" file made only of []byte values.
func readCorpusFile(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" {
		t.Fatalf("%s: missing header", path)
	}
	var out [][]byte
	for sc.Scan() {
		line := sc.Text()
		lit, ok := strings.CutPrefix(line, "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		if !ok || !ok2 {
			t.Fatalf("%s: unexpected line %q", path, line)
		}
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, src, dst, hex string }{
		{"v2", "10.99.0.1", capMC4, "213396020001339c0a6300330a6300340000000000000000"},
		{"v3-ipv4", "10.99.0.1", capMC4, "313cff050064af310a63003c0a63003d0a63003e0a63003f0a630040"},
		{"v3-ipv6", capLL6, capMC6, "313bff0300014b96fe800000000000000000000000000059fd990000000000000000000000000059fd99000000000000000000000000005a"},
	} {
		b.Run(c.name, func(b *testing.B) {
			msg := mustHex(b, c.hex)
			src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := Parse(msg, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, c := range []struct {
		name     string
		p        Packet
		src, dst string
	}{
		{"v2", Packet{Version: V2, VRID: 1, Priority: 100, Interval: time.Second, Addresses: manyAddrs(2, false)}, "10.99.0.1", capMC4},
		{"v3-ipv4", Packet{Version: V3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: manyAddrs(5, false)}, "10.99.0.1", capMC4},
		{"v3-ipv6", Packet{Version: V3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: manyAddrs(3, true)}, capLL6, capMC6},
	} {
		src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
		b.Run(c.name+"/Append", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.p.AppendMarshal(buf[:0], src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.p.Marshal(src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
