package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary messages and src/dst addresses (4 or 16 bytes;
// other lengths give an invalid address) to Parse. Seeds, including real
// keepalived captures, live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		in := bytes.Clone(b)
		p, err := Parse(b, src, dst)
		if !bytes.Equal(in, b) {
			t.Fatalf("Parse modified its input")
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" || pe.Msg == "" {
				t.Fatalf("error %v (%T) is not a complete *ParseError", err, err)
			}
			if p != nil {
				t.Fatalf("Parse returned both a packet and error %v", err)
			}
			return
		}
		out, err := p.Marshal(src, dst)
		if err != nil {
			t.Fatalf("Marshal of parsed %+v: %v", *p, err)
		}
		// The re-encoding must equal the input except for what Parse does
		// not keep: the v3 reserved bits and the checksum's encoding (0x0000
		// and 0xffff verify alike).
		if len(out) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d: %x vs %x", len(out), len(b), out, b)
		}
		norm := func(x []byte) []byte {
			x = bytes.Clone(x)
			x[6], x[7] = 0, 0
			if p.Version == V3 {
				x[4] &= 0x0f
			}
			return x
		}
		if !bytes.Equal(norm(out), norm(b)) {
			t.Fatalf("re-encoded %x from %x", out, b)
		}
		q, err := Parse(out, src, dst)
		if err != nil {
			t.Fatalf("Parse of re-encoded %x: %v", out, err)
		}
		if !packetsEqual(p, q) {
			t.Fatalf("round trip changed the packet: %+v -> %+v", *p, *q)
		}
	})
}

// FuzzMarshalParse builds packets from fuzzed fields: whatever Marshal
// accepts, Parse must accept and return unchanged (IPv6 zones aside, which
// are not on the wire).
func FuzzMarshalParse(f *testing.F) {
	f.Add(uint8(3), uint8(1), uint8(100), int64(time.Second), uint8(0), []byte{}, []byte{10, 0, 0, 1}, false, []byte{10, 0, 0, 2}, []byte{224, 0, 0, 18})
	f.Add(uint8(2), uint8(51), uint8(150), int64(time.Second), uint8(1), []byte("s3cr3t"), []byte{10, 0, 0, 1, 10, 0, 0, 3}, false, []byte{10, 0, 0, 2}, []byte{224, 0, 0, 18})
	f.Add(uint8(2), uint8(7), uint8(0), int64(3*time.Second), uint8(0), []byte{}, []byte{}, false, []byte{10, 0, 0, 2}, []byte{224, 0, 0, 18})
	f.Add(uint8(3), uint8(9), uint8(255), int64(40950*time.Millisecond), uint8(0), []byte{},
		bytes.Repeat([]byte{0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x54}, 2), true,
		netip.MustParseAddr("fe80::1").AsSlice(), netip.MustParseAddr("ff02::12").AsSlice())
	f.Fuzz(func(t *testing.T, ver, vrid, prio uint8, interval int64, authType uint8, authData, addrBytes []byte,
		v6 bool, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		p := Packet{Version: Version(ver), VRID: vrid, Priority: prio, Interval: time.Duration(interval), AuthType: authType}
		copy(p.AuthData[:], authData)
		alen := 4
		if v6 {
			alen = 16
		}
		for len(addrBytes) >= alen {
			a, _ := netip.AddrFromSlice(addrBytes[:alen])
			p.Addresses = append(p.Addresses, a)
			addrBytes = addrBytes[alen:]
		}
		b, err := p.Marshal(src, dst)
		if err != nil {
			return
		}
		if !checksumOK(b, src.Unmap(), dst.Unmap()) {
			t.Fatalf("checksum of %x does not verify", b)
		}
		if p.Version == V2 {
			// v2 ignores src/dst when sending but is received over IPv4 only.
			src, dst = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
		}
		q, err := Parse(b, src, dst)
		if err != nil {
			t.Fatalf("Parse of Marshal(%+v) = %x: %v", p, b, err)
		}
		if !packetsEqual(&p, q) {
			t.Fatalf("round trip changed the packet: %+v -> %+v", p, *q)
		}
	})
}
