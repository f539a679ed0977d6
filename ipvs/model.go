package ipvs

import (
	"github.com/director-lb/director/ipvs/ipvsnl"

	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Protocol is a virtual service's transport protocol; values are IPPROTO_*.
type Protocol uint8

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "none"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// Forward is how IPVS hands packets to a destination. The values are the
// kernel's IP_VS_CONN_F_* forwarding values, so the zero value is Masq: a
// direct-server-return setup must ask for Route explicitly (the
// configuration layer defaults to Route).
type Forward uint8

// Forwarding methods. Local and Bypass are kernel-internal and not accepted
// in a desired state.
const (
	Masq   Forward = 0 // NAT
	Local  Forward = 1
	Tunnel Forward = 2 // IP-in-IP
	Route  Forward = 3 // direct routing (DSR)
)

func (f Forward) String() string {
	switch f {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return "fwd-" + strconv.Itoa(int(f))
}

// Service flags a desired Service may set in Flags (kernel uapi ip_vs.h).
// Persistence has its own field, and the kernel's "hashed" bit is internal.
const (
	// FlagOnePacket is one-packet scheduling ("ops"): every UDP datagram
	// is scheduled on its own and leaves no connection entry behind, so
	// a client that keeps its source port still spreads over the real
	// servers and is not held on one that went to weight 0. Only for
	// UDP and firewall-mark services, as ipvsadm has it.
	FlagOnePacket = ipvsnl.FlagOnePacket
	// FlagSchedFallback is sh-fallback for sh and mh-fallback for mh.
	FlagSchedFallback = ipvsnl.FlagSched1
	// FlagSchedPort is sh-port for sh and mh-port for mh.
	FlagSchedPort = ipvsnl.FlagSched2
	FlagSched3    = ipvsnl.FlagSched3

	flagPersistent = ipvsnl.FlagPersistent // the Persistent field's
	allowedFlags   = FlagOnePacket | FlagSchedFallback | FlagSchedPort | FlagSched3
)

// DefaultPersistTimeout is what ipvsadm uses for -p without a value; a
// persistent Service with a zero Timeout gets it.
const DefaultPersistTimeout = 300 * time.Second

// MaxWeight is the largest weight ipvsadm accepts.
const MaxWeight = 65535

// schedulers the kernel ships (ip_vs_<name>.ko; Linux 6.1 builds them all
// as modules).
var schedulers = [...]string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// Schedulers lists the names a Service's Scheduler may take: the kernel's
// IPVS schedulers. The configuration is checked against the same list.
func Schedulers() []string { return slices.Clone(schedulers[:]) }

// PersistenceEngines are the names a Service's PE may take: the kernel's
// persistence engines (ip_vs_pe_<name>.ko; Linux has only sip, which
// keeps a SIP call on one real server by its Call-ID).
var persistenceEngines = [...]string{"sip"}

// PersistenceEngines lists the persistence engines a Service's PE may name.
func PersistenceEngines() []string { return slices.Clone(persistenceEngines[:]) }

// TunnelType is a Tunnel destination's encapsulation; the values are the
// kernel's IP_VS_CONN_F_TUNNEL_TYPE_*. GUE and GRE need Linux 5.3 and
// 5.4: older kernels ignore them, tunnel with IPIP, and report IPIP back,
// so the reconciler keeps rewriting such a destination and logs it.
type TunnelType uint8

// Tunnel encapsulations.
const (
	TunnelIPIP TunnelType = ipvsnl.TunIPIP // IP in IP (the default)
	TunnelGUE  TunnelType = ipvsnl.TunGUE  // generic UDP encapsulation, to Tunnel.Port
	TunnelGRE  TunnelType = ipvsnl.TunGRE
)

func (t TunnelType) String() string {
	switch t {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue"
	case TunnelGRE:
		return "gre"
	}
	return "tun-" + strconv.Itoa(int(t))
}

// TunnelChecksum is a GUE or GRE tunnel's checksum option; the values are
// the kernel's IP_VS_TUNNEL_ENCAP_FLAG_* bits.
type TunnelChecksum uint16

// Tunnel checksum options (ipvsadm's --tun-nocsum, --tun-csum, --tun-remcsum).
const (
	TunnelNoChecksum     TunnelChecksum = 0
	TunnelChecksumOn     TunnelChecksum = ipvsnl.TunFlagCsum
	TunnelRemoteChecksum TunnelChecksum = ipvsnl.TunFlagRemCsum // GUE only
)

func (c TunnelChecksum) String() string {
	switch c {
	case TunnelNoChecksum:
		return "nocsum"
	case TunnelChecksumOn:
		return "csum"
	case TunnelRemoteChecksum:
		return "remcsum"
	}
	return "csum-flags-" + strconv.Itoa(int(c))
}

// Encap is how a Tunnel destination encapsulates; the zero value is
// plain IPIP, what every kernel does.
type Encap struct {
	Type TunnelType
	// Port is GUE's destination UDP port, required with GUE and only there.
	Port     uint16
	Checksum TunnelChecksum // GUE and GRE only
}

func (t Encap) validate() error {
	switch t.Type {
	case TunnelIPIP, TunnelGRE:
		if t.Port != 0 {
			return fmt.Errorf("tunnel port %d: only GUE tunnels have a port", t.Port)
		}
	case TunnelGUE:
		if t.Port == 0 {
			return errors.New("a GUE tunnel needs a port")
		}
	default:
		return fmt.Errorf("tunnel type %s is not ipip, gue or gre", t.Type)
	}
	switch {
	case t.Checksum != TunnelNoChecksum && t.Checksum != TunnelChecksumOn && t.Checksum != TunnelRemoteChecksum:
		return fmt.Errorf("tunnel checksum option %s is not nocsum, csum or remcsum", t.Checksum)
	case t.Type == TunnelIPIP && t.Checksum != TunnelNoChecksum:
		return fmt.Errorf("an IPIP tunnel has no checksum option (%s)", t.Checksum)
	case t.Type == TunnelGRE && t.Checksum == TunnelRemoteChecksum:
		return errors.New("remote checksum offload is for GUE tunnels only")
	}
	return nil
}

// ServiceKey identifies a virtual service. A firewall-mark service has
// FWMark != 0 and a zero Protocol, Addr and Port.
type ServiceKey struct {
	Family   int // 4 or 6
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// String names the service the way ipvsadm lists it: "TCP 10.0.0.100:80",
// "UDP [2001:db8::1]:53", "FWM 7", "FWM 7 IPv6".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		if k.Family == 6 {
			return fmt.Sprintf("FWM %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return k.Protocol.String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Compare orders keys: by family, then address services before firewall
// marks, then by mark, address, protocol and port.
func (k ServiceKey) Compare(o ServiceKey) int {
	return cmp.Or(
		cmp.Compare(k.Family, o.Family),
		cmp.Compare(k.FWMark, o.FWMark),
		k.Addr.Compare(o.Addr),
		cmp.Compare(k.Protocol, o.Protocol),
		cmp.Compare(k.Port, o.Port),
	)
}

func (k ServiceKey) validate() error {
	if k.Family != 4 && k.Family != 6 {
		return fmt.Errorf("family must be 4 or 6, got %d", k.Family)
	}
	if k.FWMark != 0 {
		if k.Addr.IsValid() || k.Port != 0 || k.Protocol != 0 {
			return errors.New("a firewall-mark service has no address, port or protocol")
		}
		return nil
	}
	if !k.Addr.IsValid() {
		return errors.New("address missing")
	}
	if familyOf(k.Addr) != k.Family {
		return fmt.Errorf("address %s is not IPv%d", k.Addr, k.Family)
	}
	if k.Addr.Zone() != "" {
		return fmt.Errorf("address %s has a zone", k.Addr)
	}
	switch k.Protocol {
	case TCP, UDP, SCTP:
	default:
		return fmt.Errorf("protocol %s is not TCP, UDP or SCTP", k.Protocol)
	}
	return nil
}

// Service is one desired (or observed) virtual service.
type Service struct {
	Key ServiceKey
	// Scheduler is a kernel scheduler name: rr wrr lc wlc lblc lblcr dh sh
	// sed nq fo ovf mh twos. Empty means wlc, as with ipvsadm.
	Scheduler string
	// Flags holds FlagOnePacket and the scheduler flags (FlagSchedFallback,
	// FlagSchedPort, FlagSched3).
	Flags uint32
	// Persistence: clients from the same Netmask-bits network stick to one
	// destination for Timeout (whole seconds; 0 means 300 s). Netmask is a
	// prefix length; 0 means a single address (32 or 128). Both must be zero
	// when Persistent is false.
	Persistent bool
	Timeout    time.Duration
	Netmask    int
	// PE is a persistence engine (see PersistenceEngines), "" for none:
	// "sip" makes persistence follow the SIP Call-ID instead of the
	// client's address. Needs Persistent, and a UDP or firewall-mark
	// service (the kernel's sip engine reads UDP datagrams only). The
	// kernel loads ip_vs_pe_sip on first use; without it the write fails.
	PE string
	// Destinations are the real servers.
	Destinations []Destination
	// Sorry, if set, is programmed only while no destination has a weight
	// above zero (see Effective). A zero weight counts as 1.
	Sorry *Destination
}

// Destination is one real server of a Service.
type Destination struct {
	Addr netip.Addr
	// Port 0 means the service's port (for a firewall-mark service it stays 0).
	Port    uint16
	Weight  int32 // 0..MaxWeight; 0 sends no new connections
	Forward Forward
	// Upper and Lower are connection thresholds (0 = none); Lower <= Upper.
	Upper, Lower uint32
	// Encap is the encapsulation of a Tunnel destination; it must be the
	// zero value with any other forwarding.
	Encap Encap

	// Counters reported by the kernel when read back; ignored in a desired state.
	ActiveConns, InactiveConns uint32
}

// AddrPort is the destination's identity within its service.
func (d Destination) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Effective returns the destinations the kernel should hold for s: its
// Destinations, plus the sorry server when none of them has a weight above
// zero. It does not normalize or validate.
func (s Service) Effective() []Destination {
	out := slices.Clone(s.Destinations)
	if s.Sorry == nil || slices.ContainsFunc(out, func(d Destination) bool { return d.Weight > 0 }) {
		return out
	}
	sorry := *s.Sorry
	if sorry.Weight == 0 {
		sorry.Weight = 1
	}
	return append(out, sorry)
}

// sameConfig reports whether two services of the same key are configured
// alike in every field the kernel stores for them.
func (s *Service) sameConfig(o *Service) bool {
	if s.Scheduler != o.Scheduler || s.Flags != o.Flags || s.Persistent != o.Persistent || s.PE != o.PE {
		return false
	}
	// Timeout and netmask only matter for persistence; the kernel keeps
	// whatever it was given otherwise.
	return !s.Persistent || (s.Timeout == o.Timeout && s.Netmask == o.Netmask)
}

// sameConfig compares what the kernel stores for a destination, not its counters.
func (d *Destination) sameConfig(o *Destination) bool {
	return d.Weight == o.Weight && d.Forward == o.Forward && d.Upper == o.Upper && d.Lower == o.Lower && d.Encap == o.Encap
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// normalize validates s and returns a copy in canonical form: defaults
// filled in, addresses unmapped, the sorry server folded into Destinations
// (see Effective) and destinations sorted. Sorry is cleared in the copy.
func normalize(s Service) (Service, error) {
	k := &s.Key
	if k.Family == 4 {
		k.Addr = k.Addr.Unmap()
	}
	if err := k.validate(); err != nil {
		return s, err
	}
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if !slices.Contains(schedulers[:], s.Scheduler) {
		return s, fmt.Errorf("unknown scheduler %q", s.Scheduler)
	}
	if s.Flags&^allowedFlags != 0 {
		return s, fmt.Errorf("flags %#x: only one-packet and scheduler flags (%#x) may be set", s.Flags, allowedFlags)
	}
	udpOrMark := k.FWMark != 0 || k.Protocol == UDP
	if s.Flags&FlagOnePacket != 0 && !udpOrMark {
		return s, errors.New("one-packet scheduling is for UDP and firewall-mark services only")
	}
	if s.PE != "" {
		switch {
		case !slices.Contains(persistenceEngines[:], s.PE):
			return s, fmt.Errorf("unknown persistence engine %q", s.PE)
		case !s.Persistent:
			return s, fmt.Errorf("persistence engine %s needs a persistent service", s.PE)
		case !udpOrMark:
			return s, fmt.Errorf("persistence engine %s is for UDP and firewall-mark services only", s.PE)
		}
	}
	bits := 32
	if k.Family == 6 {
		bits = 128
	}
	if s.Persistent {
		if s.Timeout == 0 {
			s.Timeout = DefaultPersistTimeout
		}
		if s.Timeout < time.Second || s.Timeout%time.Second != 0 {
			return s, fmt.Errorf("persistence timeout must be whole seconds, got %s", s.Timeout)
		}
		if s.Netmask == 0 {
			s.Netmask = bits
		}
		if s.Netmask < 1 || s.Netmask > bits {
			return s, fmt.Errorf("persistence netmask must be 1-%d bits, got %d", bits, s.Netmask)
		}
	} else {
		if s.Timeout != 0 || s.Netmask != 0 {
			return s, errors.New("persistence timeout or netmask set on a service that is not persistent")
		}
		if k.FWMark == 0 && k.Port == 0 {
			return s, errors.New("port 0 needs a persistent service")
		}
	}

	if s.Sorry != nil {
		sorry := destID(k, s.Sorry)
		for i := range s.Destinations {
			if destID(k, &s.Destinations[i]) == sorry {
				return s, fmt.Errorf("sorry server %s is also a destination", sorry)
			}
		}
		if err := checkDest(k, s.Sorry); err != nil {
			return s, fmt.Errorf("sorry server: %w", err)
		}
	}
	dests := s.Effective()
	s.Sorry = nil
	seen := make(map[netip.AddrPort]bool, len(dests))
	for i := range dests {
		d := &dests[i]
		d.Addr = d.Addr.Unmap()
		if d.Port == 0 {
			d.Port = k.Port
		}
		d.ActiveConns, d.InactiveConns = 0, 0
		if err := checkDest(k, d); err != nil {
			return s, fmt.Errorf("destination %s: %w", d.AddrPort(), err)
		}
		if seen[d.AddrPort()] {
			return s, fmt.Errorf("destination %s listed twice", d.AddrPort())
		}
		seen[d.AddrPort()] = true
	}
	slices.SortFunc(dests, func(a, b Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
	s.Destinations = dests
	return s, nil
}

// destID is a destination's normalized identity within the service k.
func destID(k *ServiceKey, d *Destination) netip.AddrPort {
	return netip.AddrPortFrom(d.Addr.Unmap(), cmp.Or(d.Port, k.Port))
}

func checkDest(k *ServiceKey, d *Destination) error {
	a := d.Addr.Unmap()
	if !a.IsValid() || a.IsUnspecified() {
		return errors.New("address missing")
	}
	if a.Zone() != "" {
		return errors.New("address has a zone")
	}
	if familyOf(a) != k.Family && d.Forward != Tunnel {
		// The kernel only allows a family change when tunnelling.
		return fmt.Errorf("an IPv%d service needs IPv%d destinations unless forwarding is Tunnel", k.Family, k.Family)
	}
	switch d.Forward {
	case Route, Masq, Tunnel:
	default:
		return fmt.Errorf("forwarding %s is not Route, Masq or Tunnel", d.Forward)
	}
	if d.Forward != Tunnel && d.Encap != (Encap{}) {
		return fmt.Errorf("tunnel options (%s) with %s forwarding", d.Encap.Type, d.Forward)
	}
	if err := d.Encap.validate(); err != nil {
		return err
	}
	if d.Weight < 0 || d.Weight > MaxWeight {
		return fmt.Errorf("weight %d out of range 0-%d", d.Weight, MaxWeight)
	}
	if d.Lower > d.Upper {
		return fmt.Errorf("lower threshold %d above upper threshold %d", d.Lower, d.Upper)
	}
	return nil
}

// normalizeAll validates a whole desired state and returns it normalized
// and sorted by key. Every problem is reported, not only the first.
func normalizeAll(desired []Service) ([]Service, error) {
	out := make([]Service, 0, len(desired))
	seen := make(map[ServiceKey]bool, len(desired))
	var errs []error
	for i, s := range desired {
		n, err := normalize(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %d (%s): %w", i, s.Key, err))
			continue
		}
		if seen[n.Key] {
			errs = append(errs, fmt.Errorf("service %d (%s): listed twice", i, n.Key))
			continue
		}
		seen[n.Key] = true
		out = append(out, n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.Key.Compare(b.Key) })
	return out, nil
}

// cloneService copies s deeply enough that changing the copy's
// destinations or sorry server leaves s alone.
func cloneService(s Service) Service {
	s.Destinations = slices.Clone(s.Destinations)
	if s.Sorry != nil {
		sorry := *s.Sorry
		s.Sorry = &sorry
	}
	return s
}
