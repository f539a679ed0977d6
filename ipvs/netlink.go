package ipvs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	lib "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
)

// Netlink is the Kernel of the running system, spoken to over generic
// netlink. Service reads and single writes go through
// github.com/cloudflare/ipvs (one request per call); Batch sends many writes
// per system call on a socket of its own, which also dumps destinations
// (package ipvsnl).
type Netlink struct {
	mu sync.Mutex // the library makes no promise about concurrent use
	c  lib.Client
	b  *batchConn // nil: Batch falls back to one call per write
}

var _ Batcher = (*Netlink)(nil)

// NewNetlink opens the IPVS netlink sockets. They belong to the network
// namespace of the calling OS thread for their whole life: to program
// another namespace, call NewNetlink from a goroutine that has locked its
// thread and entered that namespace.
//
// The kernel refuses (EINVAL) an IPv4 destination whose address has no
// unicast route in that namespace, so program IPVS after the interfaces.
func NewNetlink() (*Netlink, error) {
	c, err := lib.New()
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket (is the ip_vs module loaded?): %w", err)
	}
	b, err := dialBatch()
	if err != nil {
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
		return nil, fmt.Errorf("open IPVS netlink socket for batches: %w", err)
	}
	return &Netlink{c: c, b: b}, nil
}

// Close releases the sockets.
func (n *Netlink) Close() error {
	var errs []error
	if c, ok := n.c.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if n.b != nil {
		errs = append(errs, n.b.Close())
	}
	return errors.Join(errs...)
}

// Batch implements Batcher.
func (n *Netlink) Batch(ws []Write) []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.b != nil {
		return n.b.batch(ws)
	}
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = n.write(w)
	}
	return errs
}

// Services implements Kernel.
func (n *Netlink) Services() ([]Service, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	svcs, err := n.c.Services()
	if errors.Is(err, os.ErrNotExist) { // the library's word for an empty table
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list services: %w", errnoOf(err))
	}
	out := make([]Service, 0, len(svcs))
	for _, ls := range svcs {
		s, err := fromLibService(ls.Service)
		if err != nil {
			return nil, err
		}
		if s.Destinations, err = n.destinations(ls.Service); err != nil {
			return nil, fmt.Errorf("list destinations of %s: %w", s.Key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Service implements Kernel.
func (n *Netlink) Service(key ServiceKey) (Service, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ls, err := n.c.Service(toLibService(Service{Key: key}))
	if errors.Is(err, os.ErrNotExist) {
		return Service{}, syscall.ESRCH
	}
	if err != nil {
		return Service{}, errnoOf(err)
	}
	s, err := fromLibService(ls.Service)
	if err != nil {
		return Service{}, err
	}
	if s.Destinations, err = n.destinations(ls.Service); err != nil {
		return Service{}, fmt.Errorf("list destinations: %w", err)
	}
	return s, nil
}

// destinations lists a service's destinations through ipvsnl on the batch
// socket, which reads without the library's peek: a full read makes one
// dump per service, and the peek nearly doubled its cost in the lab.
func (n *Netlink) destinations(ls lib.Service) ([]Destination, error) {
	if n.b == nil {
		return n.libDestinations(ls)
	}
	id := ipvsnl.Service{Family: uint16(ls.Family), Protocol: uint16(ls.Protocol), Addr: ls.Address, Port: ls.Port, FWMark: ls.FWMark}
	if ls.Family == lib.INET {
		id.Addr = id.Addr.Unmap()
	}
	dests, err := ipvsnl.Dests(genetlink.NewConn(n.b.c), n.b.family, id)
	if err != nil { // a vanished service is an empty dump, not an error
		return nil, errnoOf(err)
	}
	out := make([]Destination, 0, len(dests))
	for _, d := range dests {
		out = append(out, Destination{
			Addr:          d.Addr,
			Port:          d.Port,
			Weight:        int32(min(d.Weight, math.MaxInt32)), // the kernel stores an int
			Forward:       Forward(d.FwdMethod),
			Upper:         d.Upper,
			Lower:         d.Lower,
			ActiveConns:   d.ActiveConns,
			InactiveConns: d.InactiveConns,
		})
	}
	return out, nil
}

// libDestinations is destinations through the library, when the batch
// socket could not be opened.
func (n *Netlink) libDestinations(ls lib.Service) ([]Destination, error) {
	dests, err := n.c.Destinations(ls)
	if errors.Is(err, os.ErrNotExist) { // no destinations, or the service just vanished
		return nil, nil
	}
	if err != nil {
		return nil, errnoOf(err)
	}
	out := make([]Destination, 0, len(dests))
	for _, d := range dests {
		out = append(out, fromLibDest(d))
	}
	return out, nil
}

// CreateService implements Kernel.
func (n *Netlink) CreateService(s Service) error {
	return n.locked(Write{Kind: OpCreateService, Service: s})
}

// UpdateService implements Kernel.
func (n *Netlink) UpdateService(s Service) error {
	return n.locked(Write{Kind: OpUpdateService, Service: s})
}

// DeleteService implements Kernel.
func (n *Netlink) DeleteService(key ServiceKey) error {
	return n.locked(Write{Kind: OpDeleteService, Service: Service{Key: key}})
}

// CreateDestination implements Kernel.
func (n *Netlink) CreateDestination(key ServiceKey, d Destination) error {
	return n.locked(Write{Kind: OpCreateDestination, Service: Service{Key: key}, Dest: d})
}

// UpdateDestination implements Kernel.
func (n *Netlink) UpdateDestination(key ServiceKey, d Destination) error {
	return n.locked(Write{Kind: OpUpdateDestination, Service: Service{Key: key}, Dest: d})
}

// DeleteDestination implements Kernel.
func (n *Netlink) DeleteDestination(key ServiceKey, d Destination) error {
	return n.locked(Write{Kind: OpDeleteDestination, Service: Service{Key: key}, Dest: d})
}

func (n *Netlink) locked(w Write) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.write(w)
}

// write performs one write through the library, with n.mu held.
func (n *Netlink) write(w Write) error {
	ls := toLibService(w.Service)
	var err error
	switch w.Kind {
	case OpCreateService:
		err = n.c.CreateService(ls)
	case OpUpdateService:
		err = n.c.UpdateService(ls)
	case OpDeleteService:
		err = n.c.RemoveService(ls)
	case OpCreateDestination:
		err = n.c.CreateDestination(ls, toLibDest(w.Dest))
	case OpUpdateDestination:
		err = n.c.UpdateDestination(ls, toLibDest(w.Dest))
	case OpDeleteDestination:
		err = n.c.RemoveDestination(ls, toLibDest(w.Dest))
	default:
		return fmt.Errorf("ipvs: %q is not a write", w.Kind)
	}
	return errnoOf(err)
}

// errnoOf reduces a netlink error to its errno, so that messages read
// "file exists" rather than "netlink receive: file exists" and errors.Is
// keeps working. Other errors pass through.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// toLibService converts a Service for the library. The netmask is always set
// because the kernel refuses a service without one (EINVAL); without
// persistence it is the full host mask, as ipvsadm sends.
func toLibService(s Service) lib.Service {
	bits := 32
	ls := lib.Service{
		Family:    lib.INET,
		Scheduler: s.Scheduler,
		Flags:     lib.Flags(s.Flags),
		FWMark:    s.Key.FWMark,
	}
	if s.Key.Family == 6 {
		bits, ls.Family = 128, lib.INET6
	}
	if s.Key.FWMark == 0 {
		ls.Address, ls.Port, ls.Protocol = s.Key.Addr, s.Key.Port, lib.Protocol(s.Key.Protocol)
	}
	mask := bits
	if s.Persistent {
		ls.Flags |= flagPersistent
		ls.Timeout = uint32(s.Timeout / time.Second)
		if s.Netmask > 0 {
			mask = s.Netmask
		}
	}
	ls.Netmask = netmask.MaskFrom(mask, bits)
	return ls
}

func fromLibService(ls lib.Service) (Service, error) {
	var s Service
	switch ls.Family {
	case lib.INET:
		s.Key.Family = 4
	case lib.INET6:
		s.Key.Family = 6
	default:
		return s, fmt.Errorf("service with unknown address family %d", ls.Family)
	}
	if ls.FWMark != 0 {
		s.Key.FWMark = ls.FWMark
	} else {
		s.Key.Protocol = Protocol(ls.Protocol)
		s.Key.Addr = ls.Address
		if s.Key.Family == 4 {
			s.Key.Addr = s.Key.Addr.Unmap()
		}
		s.Key.Port = ls.Port
	}
	s.Scheduler = ls.Scheduler
	s.Persistent = ls.Flags&flagPersistent != 0
	s.Flags = uint32(ls.Flags) &^ (flagPersistent | flagHashed)
	if s.Persistent {
		s.Timeout = time.Duration(ls.Timeout) * time.Second
		// -1 for a non-contiguous IPv4 mask: never equal to a desired one.
		s.Netmask = ls.Netmask.Bits()
	}
	return s, nil
}

func toLibDest(d Destination) lib.Destination {
	ld := lib.Destination{
		Address:        d.Addr,
		Port:           d.Port,
		Family:         lib.INET,
		FwdMethod:      lib.ForwardType(d.Forward),
		Weight:         uint32(d.Weight),
		UpperThreshold: d.Upper,
		LowerThreshold: d.Lower,
	}
	if !d.Addr.Is4() {
		ld.Family = lib.INET6
	}
	return ld
}

func fromLibDest(ld lib.DestinationExtended) Destination {
	addr := ld.Address
	if ld.Family == lib.INET {
		addr = addr.Unmap()
	}
	return Destination{
		Addr:          addr,
		Port:          ld.Port,
		Weight:        int32(min(ld.Weight, math.MaxInt32)), // the kernel stores an int
		Forward:       Forward(ld.FwdMethod & 0x7),          // IP_VS_CONN_F_FWD_MASK
		Upper:         ld.UpperThreshold,
		Lower:         ld.LowerThreshold,
		ActiveConns:   ld.ActiveConnections,
		InactiveConns: ld.InactiveConnections,
	}
}
