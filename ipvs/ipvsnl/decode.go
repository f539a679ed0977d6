package ipvsnl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// eachNested calls fn with a decoder for every top-level attribute of type
// typ in msgs, the replies of one request.
func eachNested(msgs []genetlink.Message, typ uint16, what string, fn func(*netlink.AttributeDecoder)) error {
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return fmt.Errorf("decode IPVS %s: %w", what, err)
		}
		for ad.Next() {
			if ad.Type() == typ {
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					fn(nad)
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return fmt.Errorf("decode IPVS %s: %w", what, err)
		}
	}
	return nil
}

// ParseServices decodes GET_SERVICE replies, one service each.
func ParseServices(msgs []genetlink.Message) ([]Service, error) {
	out := make([]Service, 0, len(msgs))
	var bad error
	err := eachNested(msgs, CmdAttrService, "service", func(ad *netlink.AttributeDecoder) {
		s, err := decodeService(ad)
		if err != nil && bad == nil {
			bad = err
		}
		out = append(out, s)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeService reads the attributes nested in CMD_ATTR_SERVICE, the key
// as encoder.key writes it among them.
func decodeService(ad *netlink.AttributeDecoder) (Service, error) {
	var s Service
	var raw, mask []byte
	var s32, s64 Stats
	for ad.Next() {
		switch ad.Type() {
		case SvcAttrAF:
			s.Family = ad.Uint16()
		case SvcAttrProtocol:
			s.Protocol = ad.Uint16()
		case SvcAttrAddr:
			raw = ad.Bytes()
		case SvcAttrPort:
			s.Port = beUint16(ad.Bytes())
		case SvcAttrFWMark:
			s.FWMark = ad.Uint32()
		case SvcAttrSchedName:
			s.Scheduler = ad.String()
		case SvcAttrPEName:
			s.PEName = ad.String()
		case SvcAttrFlags:
			// struct ip_vs_flags: the flags, then a mask.
			if b := ad.Bytes(); len(b) == 8 {
				s.Flags = binary.NativeEndian.Uint32(b)
			}
		case SvcAttrTimeout:
			s.Timeout = ad.Uint32()
		case SvcAttrNetmask:
			mask = ad.Bytes()
		case SvcAttrStats:
			ad.Nested(func(sd *netlink.AttributeDecoder) error { s32 = decodeStats(sd, false); return nil })
		case SvcAttrStats64:
			ad.Nested(func(sd *netlink.AttributeDecoder) error { s64 = decodeStats(sd, true); return nil })
		}
	}
	if err := ad.Err(); err != nil {
		return s, fmt.Errorf("decode IPVS service: %w", err)
	}
	s.Stats = pickStats(s32, s64)
	if len(mask) == 4 {
		if s.Family == AFInet6 {
			s.Netmask = binary.NativeEndian.Uint32(mask)
		} else {
			s.Netmask = binary.BigEndian.Uint32(mask)
		}
	}
	if s.FWMark != 0 {
		s.Protocol, s.Port = 0, 0
		return s, nil
	}
	addr, ok := addrOf(s.Family, raw)
	if !ok {
		return s, fmt.Errorf("decode IPVS service: %d-byte address for family %d", len(raw), s.Family)
	}
	s.Addr = addr
	return s, nil
}

// ParseDests decodes a GET_DEST dump. family is the service's, which
// kernels without the ADDR_FAMILY attribute imply for every destination.
func ParseDests(msgs []genetlink.Message, family uint16) ([]Dest, error) {
	out := make([]Dest, 0, len(msgs))
	var bad error
	err := eachNested(msgs, CmdAttrDest, "destination", func(ad *netlink.AttributeDecoder) {
		d, err := decodeDest(ad, family)
		if err != nil && bad == nil {
			bad = err
		}
		out = append(out, d)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeDest(ad *netlink.AttributeDecoder, family uint16) (Dest, error) {
	d := Dest{Family: family}
	var raw []byte
	var s32, s64 Stats
	for ad.Next() {
		switch ad.Type() {
		case DestAttrAddr:
			raw = ad.Bytes()
		case DestAttrPort:
			d.Port = beUint16(ad.Bytes())
		case DestAttrFwdMethod:
			d.FwdMethod = ad.Uint32() & FwdMask
		case DestAttrWeight:
			d.Weight = ad.Uint32()
		case DestAttrUThresh:
			d.Upper = ad.Uint32()
		case DestAttrLThresh:
			d.Lower = ad.Uint32()
		case DestAttrActiveConns:
			d.ActiveConns = ad.Uint32()
		case DestAttrInactConns:
			d.InactiveConns = ad.Uint32()
		case DestAttrPersistConns:
			d.PersistConns = ad.Uint32()
		case DestAttrAddrFamily:
			d.Family = ad.Uint16()
		case DestAttrTunType:
			d.TunType = ad.Uint8()
		case DestAttrTunPort:
			d.TunPort = beUint16(ad.Bytes())
		case DestAttrTunFlags:
			d.TunFlags = ad.Uint16()
		case DestAttrStats:
			ad.Nested(func(sd *netlink.AttributeDecoder) error { s32 = decodeStats(sd, false); return nil })
		case DestAttrStats64:
			ad.Nested(func(sd *netlink.AttributeDecoder) error { s64 = decodeStats(sd, true); return nil })
		}
	}
	if err := ad.Err(); err != nil {
		return d, fmt.Errorf("decode IPVS destination: %w", err)
	}
	addr, ok := addrOf(d.Family, raw)
	if !ok {
		return d, fmt.Errorf("decode IPVS destination: %d-byte address for family %d", len(raw), d.Family)
	}
	d.Addr = addr
	d.Stats = pickStats(s32, s64)
	return d, nil
}

// pickStats prefers the 64-bit counters, as ipvsadm does; kernels before
// 4.1 send only the 32-bit ones.
func pickStats(s32, s64 Stats) Stats {
	if s64 == (Stats{}) {
		return s32
	}
	return s64
}

// decodeStats reads a stats attribute: in the 32-bit one only the byte
// counters are 64 bits wide. Other attributes (the kernel's zero-length
// alignment padding, newer counters) are skipped.
func decodeStats(ad *netlink.AttributeDecoder, wide bool) Stats {
	var s Stats
	for ad.Next() {
		var p *uint64
		switch ad.Type() {
		case StatsAttrConns:
			p = &s.Conns
		case StatsAttrInPkts:
			p = &s.InPkts
		case StatsAttrOutPkts:
			p = &s.OutPkts
		case StatsAttrInBytes:
			p = &s.InBytes
		case StatsAttrOutBytes:
			p = &s.OutBytes
		case StatsAttrCPS:
			p = &s.CPS
		case StatsAttrInPPS:
			p = &s.InPPS
		case StatsAttrOutPPS:
			p = &s.OutPPS
		case StatsAttrInBPS:
			p = &s.InBPS
		case StatsAttrOutBPS:
			p = &s.OutBPS
		default:
			continue
		}
		if wide || ad.Type() == StatsAttrInBytes || ad.Type() == StatsAttrOutBytes {
			*p = ad.Uint64()
		} else {
			*p = uint64(ad.Uint32())
		}
	}
	return s
}

// ParseDaemons decodes GET_DAEMON replies, one daemon each.
func ParseDaemons(msgs []genetlink.Message) ([]Daemon, error) {
	var out []Daemon
	err := eachNested(msgs, CmdAttrDaemon, "sync daemon", func(ad *netlink.AttributeDecoder) {
		out = append(out, decodeDaemon(ad))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeDaemon reads the attributes nested in CMD_ATTR_DAEMON. The kernel
// sends one multicast group, of the daemon's family; should both come,
// the IPv4 one wins, as with ipvsadm.
func decodeDaemon(ad *netlink.AttributeDecoder) Daemon {
	var d Daemon
	for ad.Next() {
		switch ad.Type() {
		case DaemonAttrState:
			d.State = ad.Uint32()
		case DaemonAttrMcastIfn:
			d.Interface = ad.String()
		case DaemonAttrSyncID:
			d.SyncID = ad.Uint32()
		case DaemonAttrSyncMaxLen:
			d.MaxLen = ad.Uint16()
		case DaemonAttrMcastGroup:
			if b := ad.Bytes(); len(b) == 4 {
				d.Group = netip.AddrFrom4([4]byte(b))
			}
		case DaemonAttrMcastGroup6:
			if b := ad.Bytes(); len(b) == 16 && !d.Group.Is4() {
				d.Group = netip.AddrFrom16([16]byte(b))
			}
		case DaemonAttrMcastPort:
			d.Port = ad.Uint16()
		case DaemonAttrMcastTTL:
			d.TTL = ad.Uint8()
		}
	}
	return d
}

// encodeDaemon builds the attributes that start d (full) or stop the
// daemon in d.State.
func encodeDaemon(d *Daemon, full bool) []byte {
	e := encoder{buf: make([]byte, 0, 96)}
	at := e.begin(CmdAttrDaemon)
	e.u32(DaemonAttrState, d.State)
	if full {
		e.str(DaemonAttrMcastIfn, d.Interface)
		e.u32(DaemonAttrSyncID, d.SyncID)
		if d.MaxLen != 0 {
			e.u16(DaemonAttrSyncMaxLen, d.MaxLen)
		}
		switch {
		case d.Group.Is4():
			v4 := d.Group.As4()
			e.bytes(DaemonAttrMcastGroup, v4[:])
		case d.Group.IsValid():
			v6 := d.Group.As16()
			e.bytes(DaemonAttrMcastGroup6, v6[:])
		}
		if d.Port != 0 {
			e.u16(DaemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			e.u8(DaemonAttrMcastTTL, d.TTL)
		}
	}
	e.end(at)
	return e.buf
}

// ParseInfo decodes a GET_INFO reply.
func ParseInfo(msgs []genetlink.Message) (Info, error) {
	var in Info
	err := eachTop(msgs, "info", func(ad *netlink.AttributeDecoder) {
		switch ad.Type() {
		case InfoAttrVersion:
			in.Version = ad.Uint32()
		case InfoAttrConnTabSize:
			in.ConnTabSize = ad.Uint32()
		}
	})
	return in, err
}

// ParseTimeouts decodes a GET_CONFIG reply.
func ParseTimeouts(msgs []genetlink.Message) (Timeouts, error) {
	var t Timeouts
	err := eachTop(msgs, "timeouts", func(ad *netlink.AttributeDecoder) {
		switch ad.Type() {
		case CmdAttrTimeoutTCP:
			t.TCP = ad.Uint32()
		case CmdAttrTimeoutTCPFin:
			t.TCPFin = ad.Uint32()
		case CmdAttrTimeoutUDP:
			t.UDP = ad.Uint32()
		}
	})
	return t, err
}

// eachTop calls fn at every top-level attribute of msgs.
func eachTop(msgs []genetlink.Message, what string, fn func(*netlink.AttributeDecoder)) error {
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return fmt.Errorf("decode IPVS %s: %w", what, err)
		}
		for ad.Next() {
			fn(ad)
		}
		if err := ad.Err(); err != nil {
			return fmt.Errorf("decode IPVS %s: %w", what, err)
		}
	}
	return nil
}

// addrOf reads an address attribute: the kernel sends a 16-byte union
// whose first 4 bytes hold an IPv4 address.
func addrOf(family uint16, b []byte) (netip.Addr, bool) {
	switch {
	case family == AFInet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), true
	case family == AFInet6 && len(b) >= 16:
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
