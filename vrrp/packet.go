package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire format (RFC 5798 5.1, RFC 3768 5.1), one row per 32-bit word:
//
//	v3: Version|Type  VRID  Priority  Count | rsvd(4) MaxAdverInt(12)  Checksum | addresses...
//	v2: Version|Type  VRID  Priority  Count | AuthType  AdverInt  Checksum      | IPv4 addresses... | AuthData(8)
//
// Decisions this codec makes where the RFCs or implementations leave room,
// checked against keepalived 2.2.7 (Debian 12) captures:
//
//   - v2 always carries the 8 bytes of authentication data, also with auth
//     type 0; keepalived sends them and its receive path requires them for
//     IPv4. It omits them only for its non-standard v2-over-IPv6, which this
//     codec refuses anyway (DropFamily), so a v2 packet without them is short.
//   - No trailing bytes are tolerated: keepalived sends none and itself drops
//     a packet whose length differs from what the count implies. The kernel
//     strips Ethernet padding before a raw socket sees the payload.
//   - Count 0 is allowed for v2 (RFC 3768 sets no minimum; keepalived sends it
//     for an instance without VIPs) and refused for v3 (RFC 5798 5.2.5: "the
//     minimum value is 1"; keepalived refuses such a v3 config).
//   - The 4 reserved bits before the v3 interval are ignored on receipt and
//     sent as zero (RFC 5798 5.2.6).
//   - Parse refuses whatever Marshal refuses (VRID 0, interval 0, v2 auth
//     type above 1), so that every parsed packet can be sent back unchanged.
//   - IPv4-mapped src/dst are unmapped: receive paths built on 16-byte
//     net.IP values produce them for IPv4 packets.

const (
	pktHeaderLen  = 8
	pktAuthLen    = 8 // v2 Authentication Data
	pktTypeAdvert = 1
	pktProtoVRRP  = 112 // IP protocol / IPv6 next header number
	pktMaxCount   = 255
	pktV3Tick     = 10 * time.Millisecond // v3 interval unit: centiseconds
	pktV3MaxTicks = 0x0fff
	pktV2Tick     = time.Second
	pktV2MaxTicks = 0xff
	pktAuthPass   = 1 // RFC 2338 simple text password
)

// Packet is one VRRP advertisement.
type Packet struct {
	Version  Version
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: v3 Max Adver Int (12 bits, centiseconds,
	// so 10ms..40.95s in 10ms steps); v2 Adver Int (8 bits, whole seconds, 1..255).
	Interval  time.Duration
	AuthType  uint8        // v2 only: 0 none, 1 simple text password (RFC 2338)
	AuthData  [8]byte      // v2 only; sent and returned as is, even with AuthType 0
	Addresses []netip.Addr // all IPv4 or all IPv6 (IPv6 only in v3)
}

// DropReason names why a received packet was discarded; the daemon counts drops by it.
type DropReason string

// Parse produces DropShort, DropVersion, DropType, DropChecksum, DropLength,
// DropFamily, and for field values Marshal would refuse DropInterval (interval
// 0), DropVRID (VRID 0) and DropAuth (v2 auth type other than 0 or 1).
const (
	DropShort    DropReason = "short"    // shorter than the header or than its address list claims
	DropVersion  DropReason = "version"  // version field not 2 or 3, or not the expected one
	DropType     DropReason = "type"     // type is not 1 (advertisement)
	DropChecksum DropReason = "checksum" // checksum does not verify
	DropLength   DropReason = "length"   // length inconsistent with count/family, trailing junk beyond tolerance
	DropFamily   DropReason = "family"   // v2 with IPv6, or src/dst family mismatch
	// The daemon (not the codec) also uses these; define them here so there is one list:
	DropTTL      DropReason = "ttl"      // TTL/hop limit not 255 (unicast from routed peers excepted)
	DropDest     DropReason = "dest"     // unicast packet not addressed to our own source address
	DropKernel   DropReason = "kernel"   // dropped by the kernel: the socket's receive buffer was full
	DropStranger DropReason = "stranger" // unicast packet from an address that is not a listed peer
	DropVRID     DropReason = "vrid"     // no local instance has this VRID
	DropAuth     DropReason = "auth"     // v2 authentication mismatch
	DropInterval DropReason = "interval" // v2 advert interval differs from ours (RFC 3768 6.4.3)
	DropOwn      DropReason = "own"      // our own packet looped back
	DropOverflow DropReason = "overflow" // receive queue full (flood)
)

// ParseError is returned by Parse; Reason says which counter to bump, the message says
// what was wrong in words an operator can act on ("checksum 0x1234, want 0xabcd").
type ParseError struct {
	Reason DropReason
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("vrrp packet dropped (%s): %s", e.Reason, e.Msg)
}

func pktDrop(r DropReason, format string, args ...any) *ParseError {
	return &ParseError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// Marshal encodes p with a correct checksum. src and dst are the IP source and
// destination the packet will be sent with; v3 needs them for the pseudo-header
// (RFC 5798 5.2.8), v2 ignores them (RFC 3768 5.3.8: the checksum covers only
// the VRRP message). It refuses what the RFCs do not allow: a version other
// than 2 or 3, VRID 0, more than 255 addresses, no address in v3, mixed
// families, IPv6 in v2, src/dst of another family than the addresses (v3),
// an interval out of range or not a whole number of units for the version,
// v2 auth type above 1, and auth fields set in v3. IPv6 zones are not sent.
func (p *Packet) Marshal(src, dst netip.Addr) ([]byte, error) {
	return p.AppendMarshal(make([]byte, 0, p.wireLen()), src, dst)
}

// AppendMarshal is Marshal appending into b (for allocation-free sends). On
// error b is returned unchanged.
func (p *Packet) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	alen, err := p.check(src.Unmap(), dst.Unmap())
	if err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, byte(p.Version)<<4|pktTypeAdvert, p.VRID, p.Priority, byte(len(p.Addresses)))
	if p.Version == V3 {
		b = binary.BigEndian.AppendUint16(b, uint16(p.Interval/pktV3Tick))
		b = append(b, 0, 0)
	} else {
		b = append(b, p.AuthType, byte(p.Interval/pktV2Tick), 0, 0)
	}
	for _, a := range p.Addresses {
		if alen == 4 {
			a4 := a.As4()
			b = append(b, a4[:]...)
		} else {
			a16 := a.As16()
			b = append(b, a16[:]...)
		}
	}
	if p.Version == V2 {
		b = append(b, p.AuthData[:]...)
	}
	msg := b[start:]
	sum := pktSum(0, msg)
	if p.Version == V3 {
		sum = pktPseudoSum(sum, src.Unmap(), dst.Unmap(), len(msg))
	}
	binary.BigEndian.PutUint16(msg[6:8], ^pktFold(sum))
	return b, nil
}

// wireLen is the encoded size of p, assuming it is valid.
func (p *Packet) wireLen() int {
	n := pktHeaderLen
	if p.Version == V2 {
		n += pktAuthLen
	}
	if len(p.Addresses) > 0 && p.Addresses[0].Is6() {
		return n + 16*len(p.Addresses)
	}
	return n + 4*len(p.Addresses)
}

// check validates p for sending from src to dst and returns the address
// length in bytes (4 or 16). src and dst must already be unmapped.
func (p *Packet) check(src, dst netip.Addr) (int, error) {
	if p.Version != V2 && p.Version != V3 {
		return 0, fmt.Errorf("vrrp marshal: unsupported %v", p.Version)
	}
	if p.VRID == 0 {
		return 0, errors.New("vrrp marshal: VRID 0 is not valid (1..255)")
	}
	if n := len(p.Addresses); n > pktMaxCount {
		return 0, fmt.Errorf("vrrp marshal: %d addresses, at most %d fit in one packet", n, pktMaxCount)
	}
	if err := p.checkInterval(); err != nil {
		return 0, err
	}
	if p.Version == V2 {
		if p.AuthType > pktAuthPass {
			return 0, fmt.Errorf("vrrp marshal: v2 auth type %d not supported (0 none, 1 password)", p.AuthType)
		}
		for _, a := range p.Addresses {
			if !a.Is4() {
				return 0, fmt.Errorf("vrrp marshal: address %v in a v2 packet: v2 is IPv4 only", a)
			}
		}
		return 4, nil
	}
	if p.AuthType != 0 || p.AuthData != [pktAuthLen]byte{} {
		return 0, errors.New("vrrp marshal: v3 has no authentication; AuthType and AuthData must be zero")
	}
	if len(p.Addresses) == 0 {
		return 0, errors.New("vrrp marshal: v3 needs at least one address (RFC 5798 5.2.5)")
	}
	is4 := p.Addresses[0].Is4()
	for _, a := range p.Addresses {
		if !a.IsValid() || a.Is4() != is4 {
			return 0, fmt.Errorf("vrrp marshal: address %v: addresses must all be IPv4 or all IPv6", a)
		}
	}
	if !src.IsValid() || !dst.IsValid() || src.Is4() != is4 || dst.Is4() != is4 {
		return 0, fmt.Errorf("vrrp marshal: src %v and dst %v must be of the addresses' family", src, dst)
	}
	if is4 {
		return 4, nil
	}
	return 16, nil
}

func (p *Packet) checkInterval() error {
	tick, maxTicks := pktV3Tick, time.Duration(pktV3MaxTicks)
	if p.Version == V2 {
		tick, maxTicks = pktV2Tick, pktV2MaxTicks
	}
	if p.Interval < tick || p.Interval > maxTicks*tick || p.Interval%tick != 0 {
		return fmt.Errorf("vrrp marshal: %v interval %v: want a multiple of %v from %v to %v",
			p.Version, p.Interval, tick, tick, maxTicks*tick)
	}
	return nil
}

// Parse decodes one VRRP message (the IP payload; for IPv4 the caller has stripped the IP
// header) received from src to dst. The address family of the address list follows src's
// family. All validation failures return *ParseError. Never panics, never allocates more
// than proportional to len(b).
func Parse(b []byte, src, dst netip.Addr) (*Packet, error) {
	if len(b) < pktHeaderLen {
		return nil, pktDrop(DropShort, "%d bytes, shorter than the %d-byte header", len(b), pktHeaderLen)
	}
	ver := Version(b[0] >> 4)
	if ver != V2 && ver != V3 {
		return nil, pktDrop(DropVersion, "version %d, want 2 or 3", b[0]>>4)
	}
	if typ := b[0] & 0x0f; typ != pktTypeAdvert {
		return nil, pktDrop(DropType, "type %d, want %d (advertisement)", typ, pktTypeAdvert)
	}
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return nil, pktDrop(DropFamily, "source %v and destination %v are not of one address family", src, dst)
	}
	alen := 4
	if src.Is6() {
		if ver == V2 {
			return nil, pktDrop(DropFamily, "v2 packet over IPv6 from %v: v2 is IPv4 only", src)
		}
		alen = 16
	}
	count := int(b[3])
	if ver == V3 && count == 0 {
		return nil, pktDrop(DropLength, "v3 packet with address count 0, want at least 1")
	}
	need := pktHeaderLen + count*alen
	if ver == V2 {
		need += pktAuthLen
	}
	if len(b) < need {
		return nil, pktDrop(DropShort, "%d bytes, but %v with %d %d-byte addresses needs %d",
			len(b), ver, count, alen, need)
	}
	if len(b) > need {
		return nil, pktDrop(DropLength, "%d trailing bytes after %v packet with %d addresses (%d bytes)",
			len(b)-need, ver, count, need)
	}

	// Verify over the message with the checksum field taken as zero, so the
	// error can say which value was expected.
	sum := pktSum(pktSum(0, b[:6]), b[8:])
	if ver == V3 {
		sum = pktPseudoSum(sum, src, dst, len(b))
	}
	got := binary.BigEndian.Uint16(b[6:8])
	// 0x0000 and 0xffff are the same one's-complement value, hence the
	// comparison on the folded total rather than on got == want.
	if pktFold(sum+uint32(got)) != 0xffff {
		return nil, pktDrop(DropChecksum, "checksum 0x%04x, want 0x%04x (%v from %v to %v)",
			got, ^pktFold(sum), ver, src, dst)
	}

	p := &Packet{Version: ver, VRID: b[1], Priority: b[2]}
	if p.VRID == 0 {
		return nil, pktDrop(DropVRID, "VRID 0 is not valid (1..255)")
	}
	if ver == V3 {
		p.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&pktV3MaxTicks) * pktV3Tick
	} else {
		p.AuthType = b[4]
		p.Interval = time.Duration(b[5]) * pktV2Tick
		copy(p.AuthData[:], b[need-pktAuthLen:])
		if p.AuthType > pktAuthPass {
			return nil, pktDrop(DropAuth, "v2 auth type %d not supported (0 none, 1 password)", p.AuthType)
		}
	}
	if p.Interval == 0 {
		return nil, pktDrop(DropInterval, "%v advertisement interval 0", ver)
	}
	if count > 0 {
		p.Addresses = make([]netip.Addr, count)
		for i := range p.Addresses {
			raw := b[pktHeaderLen+i*alen : pktHeaderLen+(i+1)*alen]
			if alen == 4 {
				p.Addresses[i] = netip.AddrFrom4([4]byte(raw))
			} else {
				p.Addresses[i] = netip.AddrFrom16([16]byte(raw))
			}
		}
	}
	return p, nil
}

// pktSum adds b as big-endian 16-bit words to the one's-complement
// accumulator acc, padding an odd tail with zero (RFC 1071).
func pktSum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// pktPseudoSum adds the IP pseudo-header for a VRRP message of n bytes:
// RFC 768 layout for IPv4 (src, dst, zero, protocol, 16-bit length) and
// RFC 2460 8.1 for IPv6 (src, dst, 32-bit length, zeros, next header). Both
// reduce to the same words since n < 65536.
func pktPseudoSum(acc uint32, src, dst netip.Addr, n int) uint32 {
	for _, a := range [2]netip.Addr{src, dst} {
		if a.Is4() {
			a4 := a.As4()
			acc = pktSum(acc, a4[:])
		} else {
			a16 := a.As16()
			acc = pktSum(acc, a16[:])
		}
	}
	return acc + pktProtoVRRP + uint32(n)
}

// pktFold folds the carries of a one's-complement accumulator into 16 bits.
func pktFold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
