//go:build linux

package ipvsadm

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

func genlMessage(t *testing.T, typ uint16, fill func(ae *netlink.AttributeEncoder)) genetlink.Message {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Nested(typ, func(nae *netlink.AttributeEncoder) error {
		fill(nae)
		return nil
	})
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return genetlink.Message{Data: b}
}

// Replies shaped as kernel 6.1 sends them for the two daemons of the
// "daemons" golden case; printing them must give ipvsadm's lines.
func TestParseDaemons(t *testing.T) {
	msgs := []genetlink.Message{
		genlMessage(t, cmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(daemonAttrState, uint32(Master))
			ae.String(daemonAttrMcastIfn, "dummy1")
			ae.Uint32(daemonAttrSyncID, 7)
			ae.Uint16(daemonAttrSyncMaxLen, 1472)
			ae.Uint16(daemonAttrPort, 8848)
			ae.Uint8(daemonAttrTTL, 1)
			ae.Bytes(daemonAttrGroup, []byte{224, 0, 0, 81})
		}),
		genlMessage(t, cmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(daemonAttrState, uint32(Backup))
			ae.String(daemonAttrMcastIfn, "dummy1")
			ae.Uint32(daemonAttrSyncID, 9)
			ae.Uint16(daemonAttrSyncMaxLen, 1024)
			ae.Uint16(daemonAttrPort, 9000)
			ae.Uint8(daemonAttrTTL, 3)
			g := netip.MustParseAddr("ff02::1:2").As16()
			ae.Bytes(daemonAttrGroup6, g[:])
		}),
	}
	ds, err := parseDaemons(msgs)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteDaemons(&buf, ds); err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=dummy1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
		"backup sync daemon (mcast=dummy1, syncid=9, maxlen=1024, group=ff02::1:2, port=9000, ttl=3)\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}

	if _, err := parseDaemons([]genetlink.Message{{Data: []byte{1, 2, 3}}}); err == nil {
		t.Error("truncated attribute accepted")
	}
}

func TestParsePENames(t *testing.T) {
	port := func(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }
	v4 := [16]byte{10, 7, 0, 1}
	msgs := []genetlink.Message{
		genlMessage(t, cmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(svcAttrAF, uint16(INet))
			ae.Uint16(svcAttrProtocol, uint16(UDP))
			ae.Bytes(svcAttrAddr, v4[:])
			ae.Bytes(svcAttrPort, port(5060))
			ae.String(svcAttrPEName, "sip")
		}),
		genlMessage(t, cmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(svcAttrAF, uint16(INet6))
			ae.Uint32(svcAttrFWMark, 42)
			ae.String(svcAttrPEName, "sip")
		}),
		genlMessage(t, cmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(svcAttrAF, uint16(INet))
			ae.Uint16(svcAttrProtocol, uint16(TCP))
			ae.Bytes(svcAttrAddr, v4[:])
			ae.Bytes(svcAttrPort, port(80))
		}),
	}
	pes, err := parsePENames(msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		svc  Service
		want string
	}{
		{Service{Family: INet, Protocol: UDP, Address: netip.MustParseAddr("10.7.0.1"), Port: 5060}, "sip"},
		{Service{Family: INet6, FWMark: 42}, "sip"},
		{Service{Family: INet, FWMark: 42}, ""},
		{Service{Family: INet, Protocol: TCP, Address: netip.MustParseAddr("10.7.0.1"), Port: 80}, ""},
		{Service{Family: INet, Protocol: TCP, Address: netip.MustParseAddr("10.7.0.1"), Port: 5060}, ""},
	} {
		if got := pes[keyOf(&tc.svc)]; got != tc.want {
			t.Errorf("%+v: pe %q, want %q", tc.svc, got, tc.want)
		}
	}
}

func TestFromLibrary(t *testing.T) {
	s64 := ipvs.Stats{Connections: 5, IncomingBytes: 1 << 40}
	svc := fromLibService(ipvs.ServiceExtended{
		Service: ipvs.Service{
			Address: netip.MustParseAddr("10.0.0.1"), Netmask: netmask.MaskFrom(24, 32), Scheduler: "wlc",
			Timeout: 300, Flags: ipvs.ServicePersistent | ipvs.ServiceHashed, Port: 443,
			Family: ipvs.INET, Protocol: ipvs.TCP,
		},
		Stats:   ipvs.Stats{Connections: 5},
		Stats64: s64,
	})
	if svc.Netmask != "255.255.255.0" || svc.Flags != FlagPersistent|FlagHashed || svc.Stats.InBytes != 1<<40 ||
		svc.Family != INet || svc.Protocol != TCP || svc.Port != 443 {
		t.Errorf("service %+v", svc)
	}
	fw := fromLibService(ipvs.ServiceExtended{
		Service: ipvs.Service{FWMark: 7, Family: ipvs.INET6, Netmask: netmask.MaskFrom(64, 128), Protocol: ipvs.TCP},
		// Kernels before 4.1 send only 32-bit counters.
		Stats: ipvs.Stats{Connections: 9},
	})
	if fw.Netmask != "64" || fw.Protocol != 0 || fw.Stats.Conns != 9 || fw.Address.IsValid() {
		t.Errorf("fwmark service %+v", fw)
	}
}

func TestFromNL(t *testing.T) {
	got := fromNL(ipvsnl.Dest{
		Family: 10, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, FwdMethod: 2, Weight: 3, Upper: 10, Lower: 2,
		ActiveConns: 1, InactiveConns: 2, PersistConns: 3, TunType: 1, TunPort: 6080, TunFlags: 1,
		Stats: ipvsnl.Stats{Conns: 5, InPkts: 6, OutPkts: 7, InBytes: 1 << 40, OutBytes: 8, CPS: 9, InPPS: 10, OutPPS: 11, InBPS: 12, OutBPS: 13},
	})
	want := Destination{
		Family: INet6, Address: netip.MustParseAddr("2001:db8::1"), Port: 80, Forward: Tunnel, Weight: 3,
		UpperThreshold: 10, LowerThreshold: 2, ActiveConns: 1, InactiveConns: 2, PersistConns: 3,
		TunnelType: GUE, TunnelPort: 6080, TunnelFlags: 1,
		Stats: Stats{Conns: 5, InPkts: 6, OutPkts: 7, InBytes: 1 << 40, OutBytes: 8, CPS: 9, InPPS: 10, OutPPS: 11, InBPS: 12, OutBPS: 13},
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
