//go:build linux

package ipvsadm

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Destinations are dumped here rather than through github.com/cloudflare/ipvs
// because that library's socket peeks at every datagram before reading it
// (two recvmsg calls where one does), and a listing makes one dump per
// service: with 1,000 services that made `director status` 1.55x slower than
// ipvsadm in the lab. The socket readGenetlink dials reads into a fixed
// buffer instead (netlink.Config.MessageBufferSize); the kernel never builds
// a dump datagram larger than 32 KiB.
const dumpBufferSize = 64 << 10

// Numbers from linux/ip_vs.h.
const (
	cmdGetDest  = 8
	cmdAttrDest = 2

	destAttrAddr         = 1
	destAttrPort         = 2
	destAttrFwdMethod    = 3
	destAttrWeight       = 4
	destAttrUThresh      = 5
	destAttrLThresh      = 6
	destAttrActiveConns  = 7
	destAttrInactConns   = 8
	destAttrPersistConns = 9
	destAttrStats        = 10
	destAttrAddrFamily   = 11
	destAttrStats64      = 12
	destAttrTunType      = 13
	destAttrTunPort      = 14
	destAttrTunFlags     = 15

	statsAttrConns    = 1
	statsAttrInPkts   = 2
	statsAttrOutPkts  = 3
	statsAttrInBytes  = 4
	statsAttrOutBytes = 5
	statsAttrCPS      = 6
	statsAttrInPPS    = 7
	statsAttrOutPPS   = 8
	statsAttrInBPS    = 9
	statsAttrOutBPS   = 10

	fwdMask = 0x7 // IP_VS_CONN_F_FWD_MASK
)

// encodeServiceKey is the service attribute that names k in a request.
func encodeServiceKey(k svcKey) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrService, func(nae *netlink.AttributeEncoder) error {
		nae.Uint16(svcAttrAF, uint16(k.fam))
		if k.fwmark != 0 {
			nae.Uint32(svcAttrFWMark, k.fwmark)
			return nil
		}
		nae.Uint16(svcAttrProtocol, uint16(k.proto))
		nae.Bytes(svcAttrAddr, k.addr[:])
		port := make([]byte, 2)
		binary.BigEndian.PutUint16(port, k.port) // network byte order
		nae.Bytes(svcAttrPort, port)
		return nil
	})
	return ae.Encode()
}

// dumpDests lists the destinations of the service k.
func dumpDests(c *genetlink.Conn, family uint16, k svcKey) ([]Destination, error) {
	attrs, err := encodeServiceKey(k)
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmdGetDest, Version: genlVersion},
		Data:   attrs,
	}, family, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, err
	}
	return parseDests(msgs, k.fam)
}

// parseDests decodes a GET_DEST dump. fam is the service's family, which
// kernels before 4.x (no ADDR_FAMILY attribute) imply for every destination.
func parseDests(msgs []genetlink.Message, fam Family) ([]Destination, error) {
	out := make([]Destination, 0, len(msgs))
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("decode IPVS destination: %w", err)
		}
		for ad.Next() {
			if ad.Type() != cmdAttrDest {
				continue
			}
			d := Destination{Family: fam}
			var raw []byte
			var s32, s64 Stats
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case destAttrAddr:
						raw = nad.Bytes()
					case destAttrPort:
						d.Port = beUint16(nad.Bytes())
					case destAttrFwdMethod:
						d.Forward = Forward(nad.Uint32() & fwdMask)
					case destAttrWeight:
						d.Weight = nad.Uint32()
					case destAttrUThresh:
						d.UpperThreshold = nad.Uint32()
					case destAttrLThresh:
						d.LowerThreshold = nad.Uint32()
					case destAttrActiveConns:
						d.ActiveConns = nad.Uint32()
					case destAttrInactConns:
						d.InactiveConns = nad.Uint32()
					case destAttrPersistConns:
						d.PersistConns = nad.Uint32()
					case destAttrAddrFamily:
						d.Family = Family(nad.Uint16())
					case destAttrTunType:
						d.TunnelType = TunnelType(nad.Uint8())
					case destAttrTunPort:
						d.TunnelPort = beUint16(nad.Bytes())
					case destAttrTunFlags:
						d.TunnelFlags = nad.Uint16()
					case destAttrStats:
						nad.Nested(func(sd *netlink.AttributeDecoder) error { s32 = decodeStats(sd, false); return nil })
					case destAttrStats64:
						nad.Nested(func(sd *netlink.AttributeDecoder) error { s64 = decodeStats(sd, true); return nil })
					}
				}
				return nil
			})
			if err := ad.Err(); err != nil {
				return nil, fmt.Errorf("decode IPVS destination: %w", err)
			}
			addr, ok := addrOf(d.Family, raw)
			if !ok {
				return nil, fmt.Errorf("decode IPVS destination: %d-byte address for family %d", len(raw), d.Family)
			}
			d.Address = addr
			// The 64-bit counters when the kernel sends them (4.1 on), as
			// ipvsadm prefers them.
			d.Stats = s64
			if s64 == (Stats{}) {
				d.Stats = s32
			}
			out = append(out, d)
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode IPVS destination: %w", err)
		}
	}
	return out, nil
}

// decodeStats reads a stats attribute: in the 32-bit one only the byte
// counters are 64 bits wide. Other attributes (the kernel's zero-length
// alignment padding, newer counters) are skipped.
func decodeStats(ad *netlink.AttributeDecoder, wide bool) Stats {
	var s Stats
	fields := map[uint16]*uint64{
		statsAttrConns: &s.Conns, statsAttrInPkts: &s.InPkts, statsAttrOutPkts: &s.OutPkts,
		statsAttrInBytes: &s.InBytes, statsAttrOutBytes: &s.OutBytes, statsAttrCPS: &s.CPS,
		statsAttrInPPS: &s.InPPS, statsAttrOutPPS: &s.OutPPS, statsAttrInBPS: &s.InBPS, statsAttrOutBPS: &s.OutBPS,
	}
	for ad.Next() {
		p, ok := fields[ad.Type()]
		switch {
		case !ok:
		case wide || ad.Type() == statsAttrInBytes || ad.Type() == statsAttrOutBytes:
			*p = ad.Uint64()
		default:
			*p = uint64(ad.Uint32())
		}
	}
	return s
}

// addrOf reads an address attribute: the kernel sends a 16-byte union
// whose first 4 bytes hold an IPv4 address.
func addrOf(fam Family, b []byte) (netip.Addr, bool) {
	switch {
	case fam == INet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), true
	case fam == INet6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), true
	}
	return netip.Addr{}, false
}

func beUint16(b []byte) uint16 {
	if len(b) != 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}
