package ipvsnl

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// encoder appends netlink attributes to one buffer; no attribute
// allocates on its own, so a write costs one allocation (its buffer).
type encoder struct{ buf []byte }

// attrHeader appends an attribute header for a payload of n bytes.
func (e *encoder) attrHeader(typ uint16, n int) {
	e.buf = binary.NativeEndian.AppendUint16(e.buf, uint16(4+n))
	e.buf = binary.NativeEndian.AppendUint16(e.buf, typ)
}

// pad aligns the buffer to 4 bytes, as every attribute must be.
func (e *encoder) pad() {
	for len(e.buf)%4 != 0 {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) bytes(typ uint16, v []byte) {
	e.attrHeader(typ, len(v))
	e.buf = append(e.buf, v...)
	e.pad()
}

// str appends a NUL-terminated string (NLA_NUL_STRING).
func (e *encoder) str(typ uint16, s string) {
	e.attrHeader(typ, len(s)+1)
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, 0)
	e.pad()
}

func (e *encoder) u8(typ uint16, v uint8) {
	e.attrHeader(typ, 1)
	e.buf = append(e.buf, v)
	e.pad()
}

func (e *encoder) u16(typ, v uint16) {
	e.attrHeader(typ, 2)
	e.buf = binary.NativeEndian.AppendUint16(e.buf, v)
	e.pad()
}

// be16 appends a port: ports travel in network byte order.
func (e *encoder) be16(typ, v uint16) {
	e.attrHeader(typ, 2)
	e.buf = binary.BigEndian.AppendUint16(e.buf, v)
	e.pad()
}

func (e *encoder) u32(typ uint16, v uint32) {
	e.attrHeader(typ, 4)
	e.buf = binary.NativeEndian.AppendUint32(e.buf, v)
}

func (e *encoder) be32(typ uint16, v uint32) {
	e.attrHeader(typ, 4)
	e.buf = binary.BigEndian.AppendUint32(e.buf, v)
}

// addr appends an address as the kernel's union nf_inet_addr: 16 bytes,
// an IPv4 address in the first 4 and zeros after. The kernel sends
// addresses so, and ipvsadm sends them so; a shorter attribute would be
// accepted too, but one layout both ways keeps one decoder.
func (e *encoder) addr(typ uint16, a netip.Addr) {
	e.attrHeader(typ, 16)
	var raw [16]byte
	if a.Is4() {
		v4 := a.As4()
		copy(raw[:], v4[:])
	} else if a.IsValid() {
		raw = a.As16()
	}
	e.buf = append(e.buf, raw[:]...)
}

// begin opens a nested attribute; end closes it by fixing its length.
func (e *encoder) begin(typ uint16) int {
	at := len(e.buf)
	e.attrHeader(typ, 0)
	return at
}

func (e *encoder) end(at int) {
	binary.NativeEndian.PutUint16(e.buf[at:], uint16(len(e.buf)-at))
}

// key appends the attributes that name a service: family and firewall
// mark, or family, protocol, address and port.
func (e *encoder) key(k *Key) {
	e.u16(SvcAttrAF, k.Family)
	if k.FWMark != 0 {
		e.u32(SvcAttrFWMark, k.FWMark)
		return
	}
	e.u16(SvcAttrProtocol, k.Protocol)
	e.addr(SvcAttrAddr, k.Addr)
	e.be16(SvcAttrPort, k.Port)
}

// serviceConfig appends what a service create or update must carry; the
// kernel refuses one without any of these (EINVAL).
func (e *encoder) serviceConfig(s *Service) {
	e.str(SvcAttrSchedName, s.Scheduler)
	if s.PEName != "" {
		e.str(SvcAttrPEName, s.PEName)
	}
	// struct ip_vs_flags: the flags, then which of them to set (all).
	e.attrHeader(SvcAttrFlags, 8)
	e.buf = binary.NativeEndian.AppendUint32(e.buf, s.Flags)
	e.buf = binary.NativeEndian.AppendUint32(e.buf, ^uint32(0))
	e.u32(SvcAttrTimeout, s.Timeout)
	if s.Family == AFInet6 {
		e.u32(SvcAttrNetmask, s.Netmask) // a prefix length, in host order
	} else {
		e.be32(SvcAttrNetmask, s.Netmask) // the mask, in network order
	}
}

// encodeWrite builds the generic netlink payload (header and
// attributes) of one write.
func encodeWrite(w *Write) ([]byte, error) {
	fullSvc, dest, fullDest := false, false, false
	switch w.Cmd {
	case CmdNewService, CmdSetService:
		fullSvc = true
	case CmdDelService:
	case CmdNewDest, CmdSetDest:
		dest, fullDest = true, true
	case CmdDelDest:
		dest = true
	default:
		return nil, fmt.Errorf("ipvs netlink: command %d is not a write", w.Cmd)
	}
	k := &w.Service.Key
	if k.Family != AFInet && k.Family != AFInet6 {
		return nil, fmt.Errorf("ipvs netlink: service %v: address family %d", k, k.Family)
	}
	if fullSvc && (len(w.Service.PEName) >= PENameMax || strings.IndexByte(w.Service.PEName, 0) >= 0) {
		return nil, fmt.Errorf("ipvs netlink: service %v: persistence engine name %q is not a name of at most %d bytes", k, w.Service.PEName, PENameMax-1)
	}
	e := encoder{buf: make([]byte, 0, 192)}
	e.buf = append(e.buf, w.Cmd, GenlVersion, 0, 0)

	svc := e.begin(CmdAttrService)
	e.key(k)
	if fullSvc {
		e.serviceConfig(&w.Service)
	}
	e.end(svc)

	if dest {
		d := &w.Dest
		if !d.Addr.IsValid() {
			return nil, fmt.Errorf("ipvs netlink: destination without an address in %v", k)
		}
		nd := e.begin(CmdAttrDest)
		e.u16(DestAttrAddrFamily, familyOf(d.Addr))
		e.addr(DestAttrAddr, d.Addr)
		e.be16(DestAttrPort, d.Port)
		if fullDest {
			e.u32(DestAttrFwdMethod, d.FwdMethod)
			e.u32(DestAttrWeight, d.Weight)
			e.u32(DestAttrUThresh, d.Upper)
			e.u32(DestAttrLThresh, d.Lower)
			if d.FwdMethod&FwdMask == FwdTunnel {
				e.tunnel(d)
			}
		}
		e.end(nd)
	}
	return e.buf, nil
}

// tunnel appends a tunnel destination's encapsulation. Only what is not
// zero goes: the kernel takes a missing attribute as zero (IPIP, no port,
// no checksum), and a plain IPIP write stays what kernels before 5.3,
// which know none of these, were always sent.
func (e *encoder) tunnel(d *Dest) {
	if d.TunType != TunIPIP {
		e.u8(DestAttrTunType, d.TunType)
	}
	if d.TunPort != 0 {
		e.be16(DestAttrTunPort, d.TunPort)
	}
	if d.TunFlags != 0 {
		e.u16(DestAttrTunFlags, d.TunFlags)
	}
}

// familyOf is the address family of a.
func familyOf(a netip.Addr) uint16 {
	if a.Is4() {
		return AFInet
	}
	return AFInet6
}
