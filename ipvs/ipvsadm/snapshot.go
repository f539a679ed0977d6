package ipvsadm

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Snapshot is the kernel IPVS state that every listing is printed from.
// Reading it and formatting it are separate steps so that golden tests can
// format a snapshot captured on a real IPVS kernel. Its JSON form is what
// --snapshot prints; --json prints parts of it (see doc.go).
type Snapshot struct {
	// Version is the kernel's IPVS version, e.g. "1.2.1".
	Version string `json:"version,omitempty"`
	// ConnTableSize is the size of the kernel's connection hash table.
	ConnTableSize uint32 `json:"conn_table_size,omitempty"`
	// Services are in the order the kernel dumped them; formatting sorts.
	Services []Service `json:"services,omitempty"`
	// Timeouts are the tcp, tcpfin and udp connection timeouts.
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// Daemons are the running connection sync daemons (at most two).
	Daemons []Daemon `json:"daemons,omitempty"`
	// ConnTable is the raw text of /proc/net/ip_vs_conn. Kept raw because
	// ipvsadm's output depends on quirks of how it reads that file.
	ConnTable string `json:"conn_table,omitempty"`
}

// Service is one IPVS virtual service with its destinations.
type Service struct {
	Family   Family     `json:"family"`
	Protocol Protocol   `json:"protocol,omitempty"` // zero for fwmark services
	Address  netip.Addr `json:"address,omitzero"`   // zero for fwmark services
	Port     uint16     `json:"port,omitempty"`
	FWMark   uint32     `json:"fwmark,omitempty"`
	// Scheduler is the scheduler's name, e.g. "wlc".
	Scheduler string `json:"scheduler"`
	// Flags are the raw IP_VS_SVC_F_* bits: 0x1 persistent, 0x2 hashed,
	// 0x4 one-packet, 0x8/0x10/0x20 scheduler flags 1-3.
	Flags uint32 `json:"flags"`
	// Timeout is the persistence timeout in seconds.
	Timeout uint32 `json:"timeout"`
	// Netmask is the persistence granularity: a dotted-quad mask for IPv4
	// services and a prefix length ("64") for IPv6 services.
	Netmask string `json:"netmask"`
	// PE is the persistence engine's name, e.g. "sip"; empty when none.
	PE           string        `json:"pe,omitempty"`
	Stats        Stats         `json:"stats"`
	Destinations []Destination `json:"destinations"`
}

// Destination is one real server of a service.
type Destination struct {
	Family         Family     `json:"family"`
	Address        netip.Addr `json:"address"`
	Port           uint16     `json:"port"`
	Forward        Forward    `json:"forward"`
	Weight         uint32     `json:"weight"`
	UpperThreshold uint32     `json:"upper_threshold"`
	LowerThreshold uint32     `json:"lower_threshold"`
	ActiveConns    uint32     `json:"active_conns"`
	InactiveConns  uint32     `json:"inactive_conns"`
	PersistConns   uint32     `json:"persist_conns"`
	TunnelType     TunnelType `json:"tunnel_type,omitempty"`
	TunnelPort     uint16     `json:"tunnel_port,omitempty"`
	// TunnelFlags: 0 no checksum, 1 checksum, 2 remote checksum.
	TunnelFlags uint16 `json:"tunnel_flags,omitempty"`
	Stats       Stats  `json:"stats"`
}

// Stats are the kernel's 64-bit counters and rate estimates.
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"in_pps"`
	OutPPS   uint64 `json:"out_pps"`
	InBPS    uint64 `json:"in_bps"`
	OutBPS   uint64 `json:"out_bps"`
}

// Timeouts are IPVS connection timeouts in seconds.
type Timeouts struct {
	TCP    uint32 `json:"tcp"`
	TCPFin uint32 `json:"tcp_fin"`
	UDP    uint32 `json:"udp"`
}

// Daemon is a running connection synchronisation daemon.
type Daemon struct {
	State     DaemonState `json:"state"`
	Interface string      `json:"interface"`
	SyncID    uint32      `json:"sync_id"`
	MaxLen    uint16      `json:"max_len,omitempty"`
	Group     netip.Addr  `json:"group,omitzero"`
	Port      uint16      `json:"port,omitempty"`
	TTL       uint8       `json:"ttl,omitempty"`
}

// Conn is one entry of /proc/net/ip_vs_conn, as --json -c prints it.
type Conn struct {
	Protocol    string         `json:"protocol"`
	Client      netip.AddrPort `json:"client"`
	Virtual     netip.AddrPort `json:"virtual"`
	Destination netip.AddrPort `json:"destination"`
	State       string         `json:"state"`
	Expires     uint32         `json:"expires"` // seconds
	PEName      string         `json:"pe_name,omitempty"`
	PEData      string         `json:"pe_data,omitempty"`
}

// Service flag bits (IP_VS_SVC_F_*).
const (
	FlagPersistent = 0x0001
	FlagHashed     = 0x0002
	FlagOnePacket  = 0x0004
	FlagSched1     = 0x0008 // sh-fallback, mh-fallback
	FlagSched2     = 0x0010 // sh-port, mh-port
	FlagSched3     = 0x0020
	flagSchedAny   = FlagSched1 | FlagSched2 | FlagSched3
)

// Family is an address family. It reads and writes as "inet" or "inet6".
type Family uint16

// Address families as the kernel numbers them.
const (
	INet  Family = 2
	INet6 Family = 10
)

// Protocol is an IP protocol number; "tcp", "udp", "sctp" in JSON.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// Forward is a destination's forwarding method (IP_VS_CONN_F_FWD_MASK bits).
type Forward uint32

// Forwarding methods.
const (
	Masq   Forward = 0
	Local  Forward = 1
	Tunnel Forward = 2
	Route  Forward = 3
	Bypass Forward = 4
)

// TunnelType is the encapsulation of a tunnel destination.
type TunnelType uint8

// Tunnel types.
const (
	IPIP TunnelType = 0
	GUE  TunnelType = 1
	GRE  TunnelType = 2
)

// DaemonState is IP_VS_STATE_MASTER or IP_VS_STATE_BACKUP.
type DaemonState uint32

// Sync daemon states.
const (
	Master DaemonState = 1
	Backup DaemonState = 2
)

// enum maps the known values of a small integer type to JSON names; other
// values are written as decimal numbers so nothing is lost.
type enum[T ~uint8 | ~uint16 | ~uint32] map[T]string

func (e enum[T]) marshal(v T) []byte {
	if s, ok := e[v]; ok {
		return []byte(s)
	}
	return strconv.AppendUint(nil, uint64(v), 10)
}

func (e enum[T]) unmarshal(b []byte, bits int) (T, error) {
	for v, s := range e {
		if s == string(b) {
			return v, nil
		}
	}
	n, err := strconv.ParseUint(string(b), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("unknown value %q", b)
	}
	return T(n), nil
}

var (
	familyNames   = enum[Family]{INet: "inet", INet6: "inet6"}
	protocolNames = enum[Protocol]{TCP: "tcp", UDP: "udp", SCTP: "sctp"}
	forwardNames  = enum[Forward]{Masq: "masq", Local: "local", Tunnel: "tunnel", Route: "route", Bypass: "bypass"}
	tunnelNames   = enum[TunnelType]{IPIP: "ipip", GUE: "gue", GRE: "gre"}
	stateNames    = enum[DaemonState]{Master: "master", Backup: "backup"}
)

// MarshalText implements encoding.TextMarshaler.
func (f Family) MarshalText() ([]byte, error) { return familyNames.marshal(f), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Family) UnmarshalText(b []byte) (err error) { *f, err = familyNames.unmarshal(b, 16); return }

// MarshalText implements encoding.TextMarshaler.
func (p Protocol) MarshalText() ([]byte, error) { return protocolNames.marshal(p), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Protocol) UnmarshalText(b []byte) (err error) {
	*p, err = protocolNames.unmarshal(b, 16)
	return
}

// MarshalText implements encoding.TextMarshaler.
func (f Forward) MarshalText() ([]byte, error) { return forwardNames.marshal(f), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Forward) UnmarshalText(b []byte) (err error) {
	*f, err = forwardNames.unmarshal(b, 32)
	return
}

// MarshalText implements encoding.TextMarshaler.
func (t TunnelType) MarshalText() ([]byte, error) { return tunnelNames.marshal(t), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *TunnelType) UnmarshalText(b []byte) (err error) {
	*t, err = tunnelNames.unmarshal(b, 8)
	return
}

// MarshalText implements encoding.TextMarshaler.
func (s DaemonState) MarshalText() ([]byte, error) { return stateNames.marshal(s), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *DaemonState) UnmarshalText(b []byte) (err error) {
	*s, err = stateNames.unmarshal(b, 32)
	return
}
