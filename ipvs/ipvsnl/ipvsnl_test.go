package ipvsnl

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
// 32-bit counters but 64-bit byte counts in the old stats attribute, and
// zero-length padding attributes among the stats.
func destMessage(t testing.TB, addr netip.Addr, fam uint16, withFamily, s32, s64 bool) genetlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(CmdAttrDest, func(n *netlink.AttributeEncoder) error {
		var raw [16]byte
		if addr.Is4() {
			v4 := addr.As4()
			copy(raw[:], v4[:])
		} else {
			raw = addr.As16()
		}
		n.Bytes(DestAttrAddr, raw[:])
		n.Bytes(DestAttrPort, binary.BigEndian.AppendUint16(nil, 80))
		n.Uint32(DestAttrFwdMethod, 2|0x100) // tunnel, and a flag outside the mask
		n.Uint32(DestAttrWeight, 3)
		n.Uint32(DestAttrUThresh, 10)
		n.Uint32(DestAttrLThresh, 2)
		n.Uint32(DestAttrActiveConns, 1)
		n.Uint32(DestAttrInactConns, 2)
		n.Uint32(DestAttrPersistConns, 3)
		if s32 {
			n.Nested(DestAttrStats, func(s *netlink.AttributeEncoder) error {
				s.Uint32(StatsAttrConns, 9)
				s.Uint32(StatsAttrInPkts, 8)
				s.Uint64(StatsAttrInBytes, 1<<33)
				s.Uint32(StatsAttrOutBPS, 7)
				s.Bytes(11, nil) // IPVS_STATS_ATTR_PAD
				return nil
			})
		}
		if withFamily {
			n.Uint16(DestAttrAddrFamily, fam)
		}
		if s64 {
			n.Nested(DestAttrStats64, func(s *netlink.AttributeEncoder) error {
				s.Uint64(StatsAttrConns, 5)
				s.Uint64(StatsAttrInBytes, 1<<40)
				s.Bytes(11, nil)
				s.Uint64(StatsAttrCPS, 1<<35)
				return nil
			})
		}
		n.Uint8(DestAttrTunType, 1)
		n.Bytes(DestAttrTunPort, binary.BigEndian.AppendUint16(nil, 6080))
		n.Uint16(DestAttrTunFlags, 1)
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
	got, err := ParseDests([]genetlink.Message{
		destMessage(t, v6, AFInet6, true, true, true),
		// A kernel without ADDR_FAMILY or 64-bit stats: the service's
		// family, and the 32-bit counters.
		destMessage(t, v4, 0, false, true, false),
	}, AFInet)
	if err != nil {
		t.Fatal(err)
	}
	want := Dest{
		Family: AFInet6, Addr: v6, Port: 80, FwdMethod: 2, Weight: 3, Upper: 10, Lower: 2,
		ActiveConns: 1, InactiveConns: 2, PersistConns: 3, TunType: 1, TunPort: 6080, TunFlags: 1,
		Stats: Stats{Conns: 5, InBytes: 1 << 40, CPS: 1 << 35},
	}
	if len(got) != 2 || got[0] != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	want.Family, want.Addr, want.Stats = AFInet, v4, Stats{Conns: 9, InPkts: 8, InBytes: 1 << 33, OutBPS: 7}
	if got[1] != want {
		t.Errorf("old kernel: %+v\nwant %+v", got[1], want)
	}
	if !got[1].Addr.Is4() {
		t.Errorf("IPv4 destination decoded as %v, want a 4-byte address", got[1].Addr)
	}
}

func TestParseDestsBadAddress(t *testing.T) {
	m := destMessage(t, netip.MustParseAddr("10.0.0.21"), 99, true, false, false)
	if _, err := ParseDests([]genetlink.Message{m}, AFInet); err == nil || !strings.Contains(err.Error(), "family 99") {
		t.Fatalf("err = %v, want one naming the family", err)
	}
}

// The request carries what the kernel looks a service up by, laid out as
// the kernel's own replies (an IPv4 address padded to the 16-byte union).
func TestKeyRequest(t *testing.T) {
	for _, tc := range []struct {
		s    Key
		want map[uint16][]byte
	}{
		{Key{Family: AFInet, Protocol: 6, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}, map[uint16][]byte{
			SvcAttrAF: {2, 0}, SvcAttrProtocol: {6, 0}, SvcAttrPort: {0, 80},
			SvcAttrAddr: {10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		}},
		{Key{Family: AFInet6, FWMark: 7}, map[uint16][]byte{SvcAttrAF: {10, 0}, SvcAttrFWMark: {7, 0, 0, 0}}},
	} {
		b := keyRequest(&tc.s)
		got := map[uint16][]byte{}
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			t.Fatal(err)
		}
		for ad.Next() {
			if ad.Type() != CmdAttrService {
				t.Fatalf("top-level attribute %d", ad.Type())
			}
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					got[n.Type()] = n.Bytes()
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%+v: attributes %v, want %v", tc.s, got, tc.want)
		}
		for k, v := range tc.want {
			if string(got[k]) != string(v) {
				t.Errorf("%+v: attribute %d = %v, want %v", tc.s, k, got[k], v)
			}
		}
	}
}

func FuzzParseDests(f *testing.F) {
	f.Add(destMessage(f, netip.MustParseAddr("2001:db8::1"), AFInet6, true, true, true).Data)
	f.Add(destMessage(f, netip.MustParseAddr("10.0.0.21"), 0, false, true, false).Data)
	f.Add([]byte{})
	// Writes as director sends them, tunnel encapsulations included.
	for _, d := range []Dest{
		{FwdMethod: FwdTunnel, TunType: TunGUE, TunPort: 6080, TunFlags: TunFlagRemCsum},
		{FwdMethod: FwdTunnel, TunType: TunGRE, TunFlags: TunFlagCsum},
	} {
		d.Addr, d.Port = netip.MustParseAddr("10.0.0.21"), 80
		b, err := encodeWrite(&Write{Cmd: CmdNewDest, Service: Service{Key: Key{Family: AFInet, Protocol: 6, Addr: d.Addr, Port: 80}}, Dest: d})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := ParseDests([]genetlink.Message{{Data: b}}, AFInet)
		if err != nil {
			return
		}
		for _, d := range ds {
			if !d.Addr.IsValid() || (d.Family == AFInet) != d.Addr.Is4() {
				t.Fatalf("decoded %+v", d)
			}
			// What a write sends of it reads back the same.
			w := Write{Cmd: CmdSetDest, Service: Service{Key: Key{Family: AFInet, Protocol: 6, Addr: netip.IPv4Unspecified(), Port: 80}}, Dest: d}
			enc, err := encodeWrite(&w)
			if err != nil {
				t.Fatalf("encode %+v: %v", d, err)
			}
			back, err := ParseDests([]genetlink.Message{{Data: enc[4:]}}, AFInet)
			want := Dest{Family: d.Family, Addr: d.Addr, Port: d.Port, FwdMethod: d.FwdMethod, Weight: d.Weight, Upper: d.Upper, Lower: d.Lower}
			if d.FwdMethod == FwdTunnel {
				want.TunType, want.TunPort, want.TunFlags = d.TunType, d.TunPort, d.TunFlags
			}
			if err != nil || len(back) != 1 || back[0] != want {
				t.Fatalf("%+v re-encoded reads %+v, %v; want %+v", d, back, err, want)
			}
		}
	})
}
