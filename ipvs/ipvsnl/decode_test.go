package ipvsnl

import (
	"github.com/director-lb/director/ipvs/ipvsnl/nltest"

	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// serviceMessage builds a GET_SERVICE reply as the kernel lays it out
// (ip_vs_genl_fill_service): the 16-byte address, the port in network
// order, flags with their mask, the netmask as a be32, both stats nests.
func serviceMessage(t testing.TB, k Key, pe string, mask []byte) genetlink.Message {
	return nltest.Nested(t, CmdAttrService, func(n *netlink.AttributeEncoder) {
		n.Uint16(SvcAttrAF, k.Family)
		if k.FWMark != 0 {
			n.Uint32(SvcAttrFWMark, k.FWMark)
		} else {
			n.Uint16(SvcAttrProtocol, k.Protocol)
			n.Bytes(SvcAttrAddr, union(k.Addr))
			n.Bytes(SvcAttrPort, binary.BigEndian.AppendUint16(nil, k.Port))
		}
		n.String(SvcAttrSchedName, "wlc")
		if pe != "" {
			n.String(SvcAttrPEName, pe)
		}
		fl := binary.NativeEndian.AppendUint32(nil, FlagPersistent|FlagHashed)
		n.Bytes(SvcAttrFlags, binary.NativeEndian.AppendUint32(fl, ^uint32(0)))
		n.Uint32(SvcAttrTimeout, 300)
		n.Bytes(SvcAttrNetmask, mask)
		n.Nested(SvcAttrStats, func(s *netlink.AttributeEncoder) error {
			s.Uint32(StatsAttrConns, 5)
			return nil
		})
		n.Nested(SvcAttrStats64, func(s *netlink.AttributeEncoder) error {
			s.Uint64(StatsAttrConns, 5)
			s.Uint64(StatsAttrInBytes, 1<<40)
			s.Bytes(11, nil) // IPVS_STATS_ATTR_PAD
			return nil
		})
	})
}

func TestParseServices(t *testing.T) {
	v4 := Key{Family: AFInet, Protocol: 17, Addr: netip.MustParseAddr("10.7.0.1"), Port: 5060}
	got, err := ParseServices([]genetlink.Message{
		serviceMessage(t, v4, "sip", []byte{255, 255, 255, 0}),
		serviceMessage(t, fwmark, "", binary.NativeEndian.AppendUint32(nil, 64)),
		serviceMessage(t, web6, "", binary.NativeEndian.AppendUint32(nil, 128)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d services", len(got))
	}
	want := Service{Key: v4, Scheduler: "wlc", PEName: "sip", Flags: FlagPersistent | FlagHashed, Timeout: 300,
		Netmask: 0xffffff00, Stats: Stats{Conns: 5, InBytes: 1 << 40}}
	if got[0] != want || !got[0].Addr.Is4() || got[0].MaskBits() != 24 {
		t.Errorf("got %+v\nwant %+v", got[0], want)
	}
	if got[1].Key != fwmark || got[1].Netmask != 64 || got[1].MaskBits() != 64 || got[1].PEName != "" {
		t.Errorf("fwmark service %+v", got[1])
	}
	if got[2].Key != web6 {
		t.Errorf("IPv6 key %+v, want %+v", got[2].Key, web6)
	}
	if _, err := ParseServices([]genetlink.Message{serviceMessage(t, Key{Family: 99, Port: 1}, "", nil)}); err == nil {
		t.Error("unknown family accepted")
	}
}

// The key round-trips through the request encoder and the reply decoder,
// for every shape of key.
func TestKeyCodecRoundTrip(t *testing.T) {
	for _, k := range []Key{web, web6, fwmark, {Family: AFInet, FWMark: 1 << 31}} {
		got, err := ParseServices([]genetlink.Message{{Data: keyRequest(&k)}})
		if err != nil || len(got) != 1 || got[0].Key != k {
			t.Errorf("%v: got %+v, %v", k, got, err)
		}
	}
}

func TestMaskBits(t *testing.T) {
	for _, c := range []struct {
		s    Service
		want int
	}{
		{Service{Key: web, Netmask: 0xffffffff}, 32},
		{Service{Key: web, Netmask: 0xffff0000}, 16},
		{Service{Key: web, Netmask: 0}, 0},
		{Service{Key: web, Netmask: 0xff00ff00}, -1},
		{Service{Key: web6, Netmask: 48}, 48},
	} {
		if got := c.s.MaskBits(); got != c.want {
			t.Errorf("%#x (af %d): %d bits, want %d", c.s.Netmask, c.s.Family, got, c.want)
		}
	}
}

// Replies shaped as kernel 6.1 sends them for a master (IPv4 group) and a
// backup (IPv6 group).
func daemonMessages(t testing.TB) []genetlink.Message {
	return []genetlink.Message{
		nltest.Nested(t, CmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(DaemonAttrState, 1)
			ae.String(DaemonAttrMcastIfn, "dummy1")
			ae.Uint32(DaemonAttrSyncID, 7)
			ae.Uint16(DaemonAttrSyncMaxLen, 1472)
			ae.Uint16(DaemonAttrMcastPort, 8848)
			ae.Uint8(DaemonAttrMcastTTL, 1)
			ae.Bytes(DaemonAttrMcastGroup, []byte{224, 0, 0, 81})
		}),
		nltest.Nested(t, CmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(DaemonAttrState, 2)
			ae.String(DaemonAttrMcastIfn, "dummy1")
			ae.Uint32(DaemonAttrSyncID, 9)
			ae.Uint16(DaemonAttrSyncMaxLen, 1024)
			ae.Uint16(DaemonAttrMcastPort, 9000)
			ae.Uint8(DaemonAttrMcastTTL, 3)
			g := netip.MustParseAddr("ff02::1:2").As16()
			ae.Bytes(DaemonAttrMcastGroup6, g[:])
		}),
	}
}

func TestParseDaemons(t *testing.T) {
	got, err := ParseDaemons(daemonMessages(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Daemon{
		{State: 1, Interface: "dummy1", SyncID: 7, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1},
		{State: 2, Interface: "dummy1", SyncID: 9, MaxLen: 1024, Group: netip.MustParseAddr("ff02::1:2"), Port: 9000, TTL: 3},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseDaemons([]genetlink.Message{{Data: []byte{1, 2, 3}}}); err == nil {
		t.Error("truncated attribute accepted")
	}
}

// The start request decodes to what was asked; a stop carries the state only.
func TestDaemonCodecRoundTrip(t *testing.T) {
	for _, d := range []Daemon{
		{State: 2, Interface: "eth0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1},
		{State: 1, Interface: "eth1", SyncID: 200, Group: netip.MustParseAddr("ff02::81")},
	} {
		got, err := ParseDaemons([]genetlink.Message{{Data: encodeDaemon(&d, true)}})
		if err != nil || len(got) != 1 || got[0] != d {
			t.Errorf("round trip of %+v: %+v, %v", d, got, err)
		}
	}
	got, _ := ParseDaemons([]genetlink.Message{{Data: encodeDaemon(&Daemon{State: 1, Interface: "eth0"}, false)}})
	if len(got) != 1 || got[0] != (Daemon{State: 1}) {
		t.Errorf("stop attrs decode to %+v", got)
	}
}

func infoMessages(t testing.TB) (info, config genetlink.Message) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(InfoAttrVersion, 1<<16|2<<8|1)
	ae.Uint32(InfoAttrConnTabSize, 4096)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ae = netlink.NewAttributeEncoder()
	ae.Uint32(CmdAttrTimeoutTCP, 900)
	ae.Uint32(CmdAttrTimeoutTCPFin, 120)
	ae.Uint32(CmdAttrTimeoutUDP, 300)
	c, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return genetlink.Message{Data: b}, genetlink.Message{Data: c}
}

func TestParseInfoAndTimeouts(t *testing.T) {
	im, cm := infoMessages(t)
	in, err := ParseInfo([]genetlink.Message{im})
	if err != nil || in != (Info{Version: 0x010201, ConnTabSize: 4096}) {
		t.Errorf("info %+v, %v", in, err)
	}
	to, err := ParseTimeouts([]genetlink.Message{cm})
	if err != nil || to != (Timeouts{TCP: 900, TCPFin: 120, UDP: 300}) {
		t.Errorf("timeouts %+v, %v", to, err)
	}
	if _, err := ParseInfo([]genetlink.Message{{Data: []byte{8, 0, 1}}}); err == nil {
		t.Error("truncated info accepted")
	}
}

func FuzzParseServices(f *testing.F) {
	f.Add(serviceMessage(f, web, "sip", []byte{255, 255, 255, 0}).Data)
	f.Add(serviceMessage(f, fwmark, "", []byte{64, 0, 0, 0}).Data)
	f.Add(keyRequest(&web6))
	sip := Service{Key: Key{Family: AFInet, Protocol: 17, Addr: web.Addr, Port: 5060}, Scheduler: "rr", PEName: "sip",
		Flags: FlagPersistent | FlagOnePacket, Timeout: 60, Netmask: ^uint32(0)}
	if b, err := encodeWrite(&Write{Cmd: CmdNewService, Service: sip}); err == nil {
		f.Add(b[4:]) // a write as director sends it
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		svcs, err := ParseServices([]genetlink.Message{{Data: b}})
		if err != nil {
			return
		}
		for _, s := range svcs {
			if s.FWMark == 0 && (!s.Addr.IsValid() || (s.Family == AFInet) != s.Addr.Is4()) {
				t.Fatalf("decoded %+v", s)
			}
		}
	})
}

func FuzzParseDaemons(f *testing.F) {
	for _, m := range daemonMessages(f) {
		f.Add(m.Data)
	}
	f.Add(encodeDaemon(&Daemon{State: 1}, false))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := ParseDaemons([]genetlink.Message{{Data: b}})
		if err != nil {
			return
		}
		for _, d := range ds {
			if d.Group.IsValid() && !d.Group.Is4() && !d.Group.Is6() {
				t.Fatalf("decoded %+v", d)
			}
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	im, cm := infoMessages(f)
	f.Add(im.Data)
	f.Add(cm.Data)
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInfo([]genetlink.Message{{Data: b}})
		if err != nil {
			return
		}
		// What was decoded decodes the same once encoded again.
		ae := netlink.NewAttributeEncoder()
		ae.Uint32(InfoAttrVersion, in.Version)
		ae.Uint32(InfoAttrConnTabSize, in.ConnTabSize)
		again, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if in2, err := ParseInfo([]genetlink.Message{{Data: again}}); err != nil || in2 != in {
			t.Fatalf("%+v re-decoded as %+v, %v", in, in2, err)
		}
		_, _ = ParseTimeouts([]genetlink.Message{{Data: b}}) // must not panic
	})
}
