//go:build linux

package ipvsadm

import (
	"github.com/director-lb/director/ipvs/ipvsnl/nltest"

	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Replies shaped as kernel 6.1 sends them for the two daemons of the
// "daemons" golden case; printing them must give ipvsadm's lines.
func TestDaemonsFromKernel(t *testing.T) {
	msgs := []genetlink.Message{
		nltest.Nested(t, ipvsnl.CmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(ipvsnl.DaemonAttrState, uint32(Master))
			ae.String(ipvsnl.DaemonAttrMcastIfn, "dummy1")
			ae.Uint32(ipvsnl.DaemonAttrSyncID, 7)
			ae.Uint16(ipvsnl.DaemonAttrSyncMaxLen, 1472)
			ae.Uint16(ipvsnl.DaemonAttrMcastPort, 8848)
			ae.Uint8(ipvsnl.DaemonAttrMcastTTL, 1)
			ae.Bytes(ipvsnl.DaemonAttrMcastGroup, []byte{224, 0, 0, 81})
		}),
		nltest.Nested(t, ipvsnl.CmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(ipvsnl.DaemonAttrState, uint32(Backup))
			ae.String(ipvsnl.DaemonAttrMcastIfn, "dummy1")
			ae.Uint32(ipvsnl.DaemonAttrSyncID, 9)
			ae.Uint16(ipvsnl.DaemonAttrSyncMaxLen, 1024)
			ae.Uint16(ipvsnl.DaemonAttrMcastPort, 9000)
			ae.Uint8(ipvsnl.DaemonAttrMcastTTL, 3)
			g := netip.MustParseAddr("ff02::1:2").As16()
			ae.Bytes(ipvsnl.DaemonAttrMcastGroup6, g[:])
		}),
		// ipvsadm keeps two daemons at most.
		nltest.Nested(t, ipvsnl.CmdAttrDaemon, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(ipvsnl.DaemonAttrState, uint32(Master))
		}),
	}
	nds, err := ipvsnl.ParseDaemons(msgs)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteDaemons(&buf, fromNLDaemons(nds)); err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=dummy1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
		"backup sync daemon (mcast=dummy1, syncid=9, maxlen=1024, group=ff02::1:2, port=9000, ttl=3)\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

// A GET_SERVICE reply as the kernel lays it out becomes the service
// ipvsadm prints: persistence engine, dotted IPv4 mask, 64-bit counters.
func TestServicesFromKernel(t *testing.T) {
	port := func(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }
	flags := func(f uint32) []byte {
		return binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, f), ^uint32(0))
	}
	v4 := [16]byte{10, 7, 0, 1}
	msgs := []genetlink.Message{
		nltest.Nested(t, ipvsnl.CmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(ipvsnl.SvcAttrAF, uint16(INet))
			ae.Uint16(ipvsnl.SvcAttrProtocol, uint16(UDP))
			ae.Bytes(ipvsnl.SvcAttrAddr, v4[:])
			ae.Bytes(ipvsnl.SvcAttrPort, port(5060))
			ae.String(ipvsnl.SvcAttrSchedName, "wlc")
			ae.Bytes(ipvsnl.SvcAttrFlags, flags(FlagPersistent|FlagHashed))
			ae.Uint32(ipvsnl.SvcAttrTimeout, 300)
			ae.Bytes(ipvsnl.SvcAttrNetmask, []byte{255, 255, 255, 0})
			ae.String(ipvsnl.SvcAttrPEName, "sip")
			ae.Nested(ipvsnl.SvcAttrStats, func(s *netlink.AttributeEncoder) error {
				s.Uint32(ipvsnl.StatsAttrConns, 5)
				return nil
			})
			ae.Nested(ipvsnl.SvcAttrStats64, func(s *netlink.AttributeEncoder) error {
				s.Uint64(ipvsnl.StatsAttrConns, 5)
				s.Uint64(ipvsnl.StatsAttrInBytes, 1<<40)
				return nil
			})
		}),
		nltest.Nested(t, ipvsnl.CmdAttrService, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(ipvsnl.SvcAttrAF, uint16(INet6))
			ae.Uint32(ipvsnl.SvcAttrFWMark, 42)
			ae.String(ipvsnl.SvcAttrSchedName, "rr")
			ae.Bytes(ipvsnl.SvcAttrFlags, flags(FlagHashed))
			ae.Uint32(ipvsnl.SvcAttrNetmask, 64)
			// Kernels before 4.1 send only 32-bit counters.
			ae.Nested(ipvsnl.SvcAttrStats, func(s *netlink.AttributeEncoder) error {
				s.Uint32(ipvsnl.StatsAttrConns, 9)
				return nil
			})
		}),
	}
	nss, err := ipvsnl.ParseServices(msgs)
	if err != nil || len(nss) != 2 {
		t.Fatalf("%+v, %v", nss, err)
	}
	svc := fromNLService(&nss[0])
	if svc.Netmask != "255.255.255.0" || svc.Flags != FlagPersistent|FlagHashed || svc.Stats.InBytes != 1<<40 ||
		svc.Family != INet || svc.Protocol != UDP || svc.Port != 5060 || svc.PE != "sip" || svc.Timeout != 300 ||
		svc.Address != netip.MustParseAddr("10.7.0.1") || svc.Scheduler != "wlc" {
		t.Errorf("service %+v", svc)
	}
	fw := fromNLService(&nss[1])
	if fw.Netmask != "64" || fw.Protocol != 0 || fw.Stats.Conns != 9 || fw.Address.IsValid() || fw.FWMark != 42 || fw.PE != "" {
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
