//go:build linux

package ipvsadm

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// destMessage builds a GET_DEST reply as the kernel lays it out
// (ip_vs_genl_fill_dest): ports in network byte order, a 16-byte address,
// 32-bit counters but 64-bit byte counts in the old stats attribute.
func destMessage(t testing.TB, addr netip.Addr, fam uint16, withFamily bool, s32, s64 bool) genetlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDest, func(n *netlink.AttributeEncoder) error {
		a := rawAddr(addr)
		n.Bytes(destAttrAddr, a[:])
		n.Bytes(destAttrPort, binary.BigEndian.AppendUint16(nil, 80))
		n.Uint32(destAttrFwdMethod, uint32(Tunnel))
		n.Uint32(destAttrWeight, 3)
		n.Uint32(destAttrUThresh, 10)
		n.Uint32(destAttrLThresh, 2)
		n.Uint32(destAttrActiveConns, 1)
		n.Uint32(destAttrInactConns, 2)
		n.Uint32(destAttrPersistConns, 3)
		if s32 {
			n.Nested(destAttrStats, func(s *netlink.AttributeEncoder) error {
				s.Uint32(statsAttrConns, 9)
				s.Uint32(statsAttrInPkts, 8)
				s.Uint64(statsAttrInBytes, 1<<33)
				s.Uint32(statsAttrOutBPS, 7)
				s.Bytes(11, nil) // IPVS_STATS_ATTR_PAD
				return nil
			})
		}
		if withFamily {
			n.Uint16(destAttrAddrFamily, fam)
		}
		if s64 {
			n.Nested(destAttrStats64, func(s *netlink.AttributeEncoder) error {
				s.Uint64(statsAttrConns, 5)
				s.Uint64(statsAttrInBytes, 1<<40)
				s.Bytes(11, nil) // IPVS_STATS_ATTR_PAD
				s.Uint64(statsAttrCPS, 1<<35)
				return nil
			})
		}
		n.Uint8(destAttrTunType, uint8(GUE))
		n.Bytes(destAttrTunPort, binary.BigEndian.AppendUint16(nil, 6080))
		n.Uint16(destAttrTunFlags, 1)
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return genetlink.Message{Data: b}
}

func TestParseDests(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	v4 := netip.MustParseAddr("10.0.0.21")
	got, err := parseDests([]genetlink.Message{
		destMessage(t, v6, uint16(INet6), true, true, true),
		// A kernel without ADDR_FAMILY or 64-bit stats: the service's
		// family, and the 32-bit counters.
		destMessage(t, v4, 0, false, true, false),
	}, INet)
	if err != nil {
		t.Fatal(err)
	}
	want := Destination{
		Family: INet6, Address: v6, Port: 80, Forward: Tunnel, Weight: 3,
		UpperThreshold: 10, LowerThreshold: 2, ActiveConns: 1, InactiveConns: 2, PersistConns: 3,
		TunnelType: GUE, TunnelPort: 6080, TunnelFlags: 1, Stats: Stats{Conns: 5, InBytes: 1 << 40, CPS: 1 << 35},
	}
	if len(got) != 2 || got[0] != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	want.Family, want.Address, want.Stats = INet, v4, Stats{Conns: 9, InPkts: 8, InBytes: 1 << 33, OutBPS: 7}
	if got[1] != want {
		t.Errorf("old kernel: %+v\nwant %+v", got[1], want)
	}
}

func TestParseDestsBadAddress(t *testing.T) {
	m := destMessage(t, netip.MustParseAddr("10.0.0.21"), 99, true, false, false)
	if _, err := parseDests([]genetlink.Message{m}, INet); err == nil || !strings.Contains(err.Error(), "family 99") {
		t.Fatalf("err = %v, want one naming the family", err)
	}
}

// The request names the service as the kernel looks it up.
func TestEncodeServiceKey(t *testing.T) {
	for _, k := range []svcKey{
		{fam: INet, proto: TCP, addr: rawAddr(netip.MustParseAddr("10.0.0.100")), port: 80},
		{fam: INet6, fwmark: 7},
	} {
		b, err := encodeServiceKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pes, err := parsePENames([]genetlink.Message{{Data: appendPE(t, b)}})
		if err != nil {
			t.Fatal(err)
		}
		if pes[k] != "sip" {
			t.Errorf("%+v did not round-trip: %v", k, pes)
		}
	}
}

// appendPE adds a PE name inside the service attribute b, so that
// parsePENames reports the key it decodes.
func appendPE(t *testing.T, b []byte) []byte {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	ae := netlink.NewAttributeEncoder()
	for ad.Next() {
		inner := ad.Bytes()
		ae.Nested(ad.Type(), func(n *netlink.AttributeEncoder) error {
			nd, err := netlink.NewAttributeDecoder(inner)
			if err != nil {
				return err
			}
			for nd.Next() {
				n.Bytes(nd.Type(), nd.Bytes())
			}
			n.String(svcAttrPEName, "sip")
			return nil
		})
	}
	out, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzParseDests(f *testing.F) {
	f.Add(destMessage(f, netip.MustParseAddr("2001:db8::1"), uint16(INet6), true, true, true).Data)
	f.Add(destMessage(f, netip.MustParseAddr("10.0.0.21"), 0, false, true, false).Data)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := parseDests([]genetlink.Message{{Data: b}}, INet)
		if err != nil {
			return
		}
		for _, d := range ds {
			if !d.Address.IsValid() {
				t.Fatalf("decoded a destination without an address: %+v", d)
			}
		}
	})
}
