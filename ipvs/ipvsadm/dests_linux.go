//go:build linux

package ipvsadm

import (
	"net/netip"

	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
)

// dumpDests lists the destinations of the service k through ipvsnl, whose
// socket reads without the library's peek (see that package).
func dumpDests(c *genetlink.Conn, family uint16, k svcKey) ([]Destination, error) {
	id := ipvsnl.Service{Family: uint16(k.fam), Protocol: uint16(k.proto), Port: k.port, FWMark: k.fwmark,
		Addr: netip.AddrFrom16(k.addr)}
	if k.fam == INet {
		id.Addr = netip.AddrFrom4([4]byte(k.addr[:4]))
	}
	ds, err := ipvsnl.Dests(c, family, id)
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(ds))
	for _, d := range ds {
		out = append(out, fromNL(d))
	}
	return out, nil
}

func fromNL(d ipvsnl.Dest) Destination {
	s := d.Stats
	return Destination{
		Family:         Family(d.Family),
		Address:        d.Addr,
		Port:           d.Port,
		Forward:        Forward(d.FwdMethod),
		Weight:         d.Weight,
		UpperThreshold: d.Upper,
		LowerThreshold: d.Lower,
		ActiveConns:    d.ActiveConns,
		InactiveConns:  d.InactiveConns,
		PersistConns:   d.PersistConns,
		TunnelType:     TunnelType(d.TunType),
		TunnelPort:     d.TunPort,
		TunnelFlags:    d.TunFlags,
		Stats: Stats{
			Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes,
			CPS: s.CPS, InPPS: s.InPPS, OutPPS: s.OutPPS, InBPS: s.InBPS, OutBPS: s.OutBPS,
		},
	}
}
