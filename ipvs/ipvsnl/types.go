// Package ipvsnl owns every message director exchanges with the kernel's
// IPVS over generic netlink: the family's numbers, the service key's
// encoding, batched table writes, the service and destination dumps, the
// sync daemon's start, stop and listing, and the version and timeouts.
// The reconciler (package ipvs), the sync daemon client (ipvs/syncd) and
// `director status` (ipvs/ipvsadm) all go through it.
//
// github.com/cloudflare/ipvs covers part of this, but it sends one request
// per system call and waits for each ack, and its socket peeks at every
// datagram before reading it: two recvmsg calls where one does. A full
// read makes one dump per service, so with 1,000 services the peek nearly
// doubled the reconciler's read and made `director status` 1.55x slower
// than ipvsadm in the lab. Conn reads into a fixed buffer (DumpBufferSize;
// the kernel never builds a dump datagram larger than 32 KiB) and sends
// many writes per sendmsg. See docs/design/ipvs-netlink.md.
package ipvsnl

import (
	"fmt"
	"net/netip"
)

// DumpBufferSize is the receive buffer a dumping socket needs.
const DumpBufferSize = 64 << 10

// Key names a service the way the kernel looks it up: by family and
// firewall mark, or by family, protocol, address and port.
type Key struct {
	Family   uint16 // AFInet or AFInet6
	Protocol uint16 // IPPROTO_*; unused with FWMark
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

func (k Key) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("af %d fwmark %d", k.Family, k.FWMark)
	}
	return fmt.Sprintf("af %d proto %d %s", k.Family, k.Protocol, netip.AddrPortFrom(k.Addr, k.Port))
}

// Service is a service as the kernel reports it, or as a create or update
// sends it (Key, Scheduler, PEName, Flags, Timeout and Netmask).
type Service struct {
	Key
	Scheduler string
	// PEName is the persistence engine ("sip"), empty for none. A create
	// or update without one leaves the service with none.
	PEName  string
	Flags   uint32 // IP_VS_SVC_F_*, FlagHashed included when read
	Timeout uint32 // persistence, in seconds
	// Netmask is the persistence granularity: for IPv4 the mask as a
	// number (255.255.255.0 is 0xffffff00), for IPv6 a prefix length.
	Netmask uint32
	// Stats are the 64-bit counters when the kernel sends them (4.1 on),
	// else the 32-bit ones, as ipvsadm prefers.
	Stats Stats
}

// MaskBits is the netmask as a prefix length; -1 for an IPv4 mask that is
// not contiguous.
func (s *Service) MaskBits() int {
	if s.Family == AFInet6 {
		return int(s.Netmask)
	}
	ones := 0
	for m := s.Netmask; m&(1<<31) != 0; m <<= 1 {
		ones++
	}
	if ones < 32 && s.Netmask<<ones != 0 {
		return -1
	}
	return ones
}

// Dest is a destination as the kernel reports it, or as a write sends it
// (Addr and Port; with creates and updates FwdMethod, Weight, Upper and
// Lower, and for a tunnel the TunType, TunPort and TunFlags that are not
// zero: the kernel takes a missing one as zero).
type Dest struct {
	Family                                   uint16
	Addr                                     netip.Addr
	Port                                     uint16
	FwdMethod                                uint32 // IP_VS_CONN_F_MASQ .. _BYPASS
	Weight                                   uint32
	Upper, Lower                             uint32
	ActiveConns, InactiveConns, PersistConns uint32
	TunType                                  uint8  // TunIPIP, TunGUE, TunGRE
	TunPort                                  uint16 // GUE's UDP port
	TunFlags                                 uint16 // TunFlagCsum, TunFlagRemCsum
	// Stats as with Service.
	Stats Stats
}

// Stats are counters and rate estimates.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// Daemon is a connection sync daemon: as the kernel lists it, or as a
// start sends it (zero values take the kernel's defaults: group
// 224.0.0.81, port 8848, TTL 1, max length from the MTU).
type Daemon struct {
	State     uint32 // IP_VS_STATE_MASTER (1) or IP_VS_STATE_BACKUP (2)
	Interface string
	SyncID    uint32
	MaxLen    uint16
	Group     netip.Addr
	Port      uint16
	TTL       uint8
}

// Info is the kernel's IPVS version and connection table size.
type Info struct {
	Version     uint32 // major<<16 | minor<<8 | patch
	ConnTabSize uint32
}

// Timeouts are the connection timeouts, in seconds (ipvsadm -L --timeout).
type Timeouts struct {
	TCP, TCPFin, UDP uint32
}

// Write is one table change, as Conn.Batch sends it. Cmd is CmdNewService,
// CmdSetService, CmdDelService, CmdNewDest, CmdSetDest or CmdDelDest.
// Service.Key names the service; service creates and updates also send its
// Scheduler, Flags, Timeout and Netmask (the kernel wants every one), and
// its PEName when set.
// Destination writes send Dest as Dest describes.
type Write struct {
	Cmd     uint8
	Service Service
	Dest    Dest
}
