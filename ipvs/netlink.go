package ipvs

import (
	"fmt"
	"math"
	"time"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// Netlink is the Kernel of the running system, spoken to over generic
// netlink through package ipvsnl: writes go in batches (a single write is
// a batch of one), and a full read dumps the services, then each
// service's destinations.
type Netlink struct {
	c *ipvsnl.Conn
}

var _ Batcher = (*Netlink)(nil)

// NewNetlink opens the IPVS netlink socket. It belongs to the network
// namespace of the calling OS thread for its whole life: to program
// another namespace, call NewNetlink from a goroutine that has locked its
// thread and entered that namespace.
//
// The kernel refuses (EINVAL) an IPv4 destination whose address has no
// unicast route in that namespace, so program IPVS after the interfaces.
func NewNetlink() (*Netlink, error) {
	c, err := ipvsnl.Dial()
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	return &Netlink{c: c}, nil
}

// Close releases the socket.
func (n *Netlink) Close() error { return n.c.Close() }

// Batch implements Batcher.
func (n *Netlink) Batch(ws []Write) []error {
	errs := make([]error, len(ws))
	nws := make([]ipvsnl.Write, 0, len(ws))
	idx := make([]int, 0, len(ws))
	for i := range ws {
		w, err := nlWrite(&ws[i])
		if err != nil {
			errs[i] = err
			continue
		}
		nws = append(nws, w)
		idx = append(idx, i)
	}
	for j, err := range n.c.Batch(nws) {
		errs[idx[j]] = err
	}
	return errs
}

// write performs one write, as a batch of one.
func (n *Netlink) write(w Write) error { return n.Batch([]Write{w})[0] }

// Services implements Kernel.
func (n *Netlink) Services() ([]Service, error) {
	svcs, err := n.c.Services()
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make([]Service, 0, len(svcs))
	for i := range svcs {
		s, err := n.withDests(&svcs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Service implements Kernel.
func (n *Netlink) Service(key ServiceKey) (Service, error) {
	ns, err := n.c.Service(nlKey(key))
	if err != nil {
		return Service{}, err // ESRCH when absent, bare for callers to test
	}
	return n.withDests(&ns)
}

// withDests converts ns and reads its destinations (a service that
// vanished meanwhile has none).
func (n *Netlink) withDests(ns *ipvsnl.Service) (Service, error) {
	s, err := fromNLService(ns)
	if err != nil {
		return Service{}, err
	}
	dests, err := n.c.Dests(ns.Key)
	if err != nil {
		return Service{}, fmt.Errorf("list destinations of %s: %w", s.Key, err)
	}
	s.Destinations = make([]Destination, 0, len(dests))
	for i := range dests {
		s.Destinations = append(s.Destinations, fromNLDest(&dests[i]))
	}
	return s, nil
}

// CreateService implements Kernel.
func (n *Netlink) CreateService(s Service) error {
	return n.write(Write{Kind: OpCreateService, Service: s})
}

// UpdateService implements Kernel.
func (n *Netlink) UpdateService(s Service) error {
	return n.write(Write{Kind: OpUpdateService, Service: s})
}

// DeleteService implements Kernel.
func (n *Netlink) DeleteService(key ServiceKey) error {
	return n.write(Write{Kind: OpDeleteService, Service: Service{Key: key}})
}

// CreateDestination implements Kernel.
func (n *Netlink) CreateDestination(key ServiceKey, d Destination) error {
	return n.write(Write{Kind: OpCreateDestination, Service: Service{Key: key}, Dest: d})
}

// UpdateDestination implements Kernel.
func (n *Netlink) UpdateDestination(key ServiceKey, d Destination) error {
	return n.write(Write{Kind: OpUpdateDestination, Service: Service{Key: key}, Dest: d})
}

// DeleteDestination implements Kernel.
func (n *Netlink) DeleteDestination(key ServiceKey, d Destination) error {
	return n.write(Write{Kind: OpDeleteDestination, Service: Service{Key: key}, Dest: d})
}

// nlCmds maps write kinds to IPVS commands.
var nlCmds = map[OpKind]uint8{
	OpCreateService:     ipvsnl.CmdNewService,
	OpUpdateService:     ipvsnl.CmdSetService,
	OpDeleteService:     ipvsnl.CmdDelService,
	OpCreateDestination: ipvsnl.CmdNewDest,
	OpUpdateDestination: ipvsnl.CmdSetDest,
	OpDeleteDestination: ipvsnl.CmdDelDest,
}

// nlWrite converts a write for ipvsnl.
func nlWrite(w *Write) (ipvsnl.Write, error) {
	cmd, ok := nlCmds[w.Kind]
	if !ok {
		return ipvsnl.Write{}, fmt.Errorf("ipvs: %q is not a write", w.Kind)
	}
	k := w.Service.Key
	if k.Family != 4 && k.Family != 6 {
		return ipvsnl.Write{}, fmt.Errorf("ipvs: service %s: family %d", k, k.Family)
	}
	out := ipvsnl.Write{Cmd: cmd, Service: nlService(&w.Service)}
	if cmd == ipvsnl.CmdNewDest || cmd == ipvsnl.CmdSetDest || cmd == ipvsnl.CmdDelDest {
		if !w.Dest.Addr.IsValid() {
			return ipvsnl.Write{}, fmt.Errorf("ipvs: destination without an address in %s", k)
		}
		out.Dest = ipvsnl.Dest{
			Addr:      w.Dest.Addr,
			Port:      w.Dest.Port,
			FwdMethod: uint32(w.Dest.Forward),
			Weight:    uint32(w.Dest.Weight),
			Upper:     w.Dest.Upper,
			Lower:     w.Dest.Lower,
			TunType:   uint8(w.Dest.Encap.Type),
			TunPort:   w.Dest.Encap.Port,
			TunFlags:  uint16(w.Dest.Encap.Checksum),
		}
	}
	return out, nil
}

func nlKey(k ServiceKey) ipvsnl.Key {
	out := ipvsnl.Key{Family: ipvsnl.AFInet, FWMark: k.FWMark}
	if k.Family == 6 {
		out.Family = ipvsnl.AFInet6
	}
	if k.FWMark == 0 {
		out.Protocol, out.Addr, out.Port = uint16(k.Protocol), k.Addr, k.Port
	}
	return out
}

// nlService converts a service for a create or update. The netmask is
// always set because the kernel refuses a service without one (EINVAL);
// without persistence it is the full host mask, as ipvsadm sends.
func nlService(s *Service) ipvsnl.Service {
	out := ipvsnl.Service{Key: nlKey(s.Key), Scheduler: s.Scheduler, PEName: s.PE, Flags: s.Flags}
	bits := 32
	if s.Key.Family == 6 {
		bits = 128
	}
	mask := bits
	if s.Persistent {
		out.Flags |= ipvsnl.FlagPersistent
		out.Timeout = uint32(s.Timeout / time.Second)
		if s.Netmask > 0 {
			mask = s.Netmask
		}
	}
	if bits == 32 {
		out.Netmask = ^uint32(0) << (32 - mask)
	} else {
		out.Netmask = uint32(mask)
	}
	return out
}

func fromNLService(ns *ipvsnl.Service) (Service, error) {
	var s Service
	switch ns.Family {
	case ipvsnl.AFInet:
		s.Key.Family = 4
	case ipvsnl.AFInet6:
		s.Key.Family = 6
	default:
		return s, fmt.Errorf("service with unknown address family %d", ns.Family)
	}
	if ns.FWMark != 0 {
		s.Key.FWMark = ns.FWMark
	} else {
		s.Key.Protocol = Protocol(ns.Protocol)
		s.Key.Addr = ns.Addr
		s.Key.Port = ns.Port
	}
	s.Scheduler = ns.Scheduler
	s.PE = ns.PEName
	s.Persistent = ns.Flags&ipvsnl.FlagPersistent != 0
	s.Flags = ns.Flags &^ (ipvsnl.FlagPersistent | ipvsnl.FlagHashed)
	if s.Persistent {
		s.Timeout = time.Duration(ns.Timeout) * time.Second
		// -1 for a non-contiguous IPv4 mask: never equal to a desired one.
		s.Netmask = ns.MaskBits()
	}
	return s, nil
}

// fromNLDest is the one mapping of a kernel destination to ours. The
// tunnel attributes count for tunnel destinations only: the kernel keeps
// what it was last sent whatever the forwarding.
func fromNLDest(d *ipvsnl.Dest) Destination {
	var tun Encap
	if d.FwdMethod&ipvsnl.FwdMask == ipvsnl.FwdTunnel {
		tun = Encap{Type: TunnelType(d.TunType), Port: d.TunPort, Checksum: TunnelChecksum(d.TunFlags)}
	}
	return Destination{
		Addr:          d.Addr,
		Port:          d.Port,
		Weight:        int32(min(d.Weight, math.MaxInt32)), // the kernel stores an int
		Forward:       Forward(d.FwdMethod),
		Upper:         d.Upper,
		Lower:         d.Lower,
		ActiveConns:   d.ActiveConns,
		InactiveConns: d.InactiveConns,
		Encap:         tun,
	}
}
