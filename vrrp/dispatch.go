package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/director-lb/director/vrrp/transport"
)

// FrameReader is the receive side of a socket. *transport.Conn implements it.
type FrameReader interface {
	Read(buf []byte) (transport.Frame, error)
	Source() netip.Addr
}

// Dispatcher reads one socket and hands each valid advert to the instance
// with its VRID. Drops that happen before an instance is known are counted
// here; the rest are counted by the instance.
type Dispatcher struct {
	conn  FrameReader
	iface string
	// Group is the multicast group this socket serves, or invalid for a
	// unicast socket. It decides the TTL rule and which destinations belong
	// to this socket (a raw socket sees every VRRP packet on its interface).
	group     netip.Addr
	instances atomic.Pointer[map[uint8]*Instance] // replaced whole on reload
	log       *slog.Logger
	// routed: unicast peers are behind routers, so any TTL is accepted.
	routed bool

	mu    sync.Mutex
	drops map[DropReason]uint64
}

// NewDispatcher routes packets from conn to instances by VRID.
func NewDispatcher(conn FrameReader, iface string, group netip.Addr, instances []*Instance, log *slog.Logger) *Dispatcher {
	d := &Dispatcher{conn: conn, iface: iface, group: group, log: log, drops: map[DropReason]uint64{}}
	d.SetInstances(instances)
	return d
}

// SetInstances replaces the instances packets are routed to, and the
// socket's kernel filter with it.
func (d *Dispatcher) SetInstances(instances []*Instance) {
	m := make(map[uint8]*Instance, len(instances))
	for _, in := range instances {
		m[in.cfg.VRID] = in
	}
	d.instances.Store(&m)
	d.refilter()
}

// filterer is a socket that filters in the kernel (transport.Conn).
type filterer interface {
	SetFilter(transport.Filter) error
}

// kernelDropper is a socket that reports the kernel's drops for want of
// buffer room (transport.Conn).
type kernelDropper interface {
	KernelDrops() uint64
}

// Filter is the kernel filter the socket gets: only adverts this
// dispatcher would deliver (its instances' VRIDs; TTL 255 unless routed
// unicast; in unicast, from the instances' peers to our own address)
// reach the receive buffer, so a flood of anything else cannot crowd
// real adverts out of it. Handle still checks everything.
func (d *Dispatcher) Filter() transport.Filter {
	var f transport.Filter
	multicast := d.group.IsValid()
	f.TTL255 = multicast || !d.routed
	// Sources are filtered only when every instance names its peers
	// (unicast) or allowed sources (multicast): one that hears anyone
	// needs every source.
	peers := map[netip.Addr]bool{}
	anyone := false
	for vrid, in := range *d.instances.Load() {
		f.VRIDs = append(f.VRIDs, vrid)
		list := in.cfg.Sources
		if !multicast {
			list = in.cfg.Peers
		}
		anyone = anyone || len(list) == 0
		for _, p := range list {
			peers[p] = true
		}
	}
	slices.Sort(f.VRIDs)
	if !multicast {
		f.Dest = d.conn.Source()
	}
	if !anyone {
		for p := range peers {
			if p.Is4() == d.conn.Source().Is4() {
				f.Sources = append(f.Sources, p)
			}
		}
		slices.SortFunc(f.Sources, netip.Addr.Compare)
		if len(f.Sources) == 0 {
			f.VRIDs = nil // no source of this family: nobody to hear
		}
	}
	return f
}

func (d *Dispatcher) refilter() {
	fc, ok := d.conn.(filterer)
	if !ok {
		return
	}
	if err := fc.SetFilter(d.Filter()); err != nil {
		d.log.Warn("no kernel filter on the VRRP socket: junk is dropped in user space only", "err", err)
	}
}

// SetRouted makes a unicast dispatcher accept adverts whatever their TTL,
// for peers behind routers (each decrements it). Call it before Run.
func (d *Dispatcher) SetRouted(routed bool) {
	d.routed = routed
	d.refilter()
}

// Interface is the interface the socket is bound to.
func (d *Dispatcher) Interface() string { return d.iface }

// Drops returns the counts of packets dropped before reaching an instance.
func (d *Dispatcher) Drops() map[DropReason]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[DropReason]uint64, len(d.drops)+1)
	for k, v := range d.drops {
		out[k] = v
	}
	if kd, ok := d.conn.(kernelDropper); ok {
		if n := kd.KernelDrops(); n > 0 {
			out[DropKernel] = n
		}
	}
	return out
}

func (d *Dispatcher) drop(r DropReason, src netip.Addr, detail string) {
	d.mu.Lock()
	d.drops[r]++
	n := d.drops[r]
	d.mu.Unlock()
	level := slog.LevelWarn
	if r == DropVRID || r == DropDest {
		// Other virtual routers sharing the segment, and adverts to
		// another unicast socket's address, are normal, not alarming.
		level = slog.LevelDebug
	}
	if n == 1 || n&(n-1) == 0 {
		d.log.Log(context.Background(), level, "dropped advertisement", "reason", string(r), "from", src, "detail", detail, "count", n)
	}
}

// Run reads until the socket is closed or ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	buf := make([]byte, 65536)
	for {
		f, err := d.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read VRRP socket: %w", err)
		}
		d.Handle(f)
	}
}

// Handle checks one frame and delivers it. Exported for tests and fuzzing.
func (d *Dispatcher) Handle(f transport.Frame) {
	multicast := d.group.IsValid()
	switch {
	case f.Src == d.conn.Source():
		d.drop(DropOwn, f.Src, "our own packet")
		return
	case multicast && f.Dst != d.group:
		return // a unicast packet: the unicast socket on this interface owns it
	case !multicast && f.Dst.IsMulticast():
		return // the multicast socket owns it
	case !multicast && f.Dst != d.conn.Source():
		// A raw socket sees every VRRP packet on the interface; ours are
		// sent to our source address.
		d.drop(DropDest, f.Src, fmt.Sprintf("sent to %v", f.Dst))
		return
	case f.TTL != 255 && (multicast || !d.routed):
		// RFC 5798 5.1.1.3 and 7.1: a packet that crossed a router is not
		// from our segment; unicast too, unless the peers are routed.
		d.drop(DropTTL, f.Src, fmt.Sprintf("TTL %d", f.TTL))
		return
	}
	p, err := Parse(f.Payload, f.Src, f.Dst)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			d.drop(pe.Reason, f.Src, pe.Msg)
		} else {
			d.drop(DropLength, f.Src, err.Error())
		}
		return
	}
	in, ok := (*d.instances.Load())[p.VRID]
	if !ok {
		d.drop(DropVRID, f.Src, fmt.Sprintf("vrid %d", p.VRID))
		return
	}
	in.Deliver(Received{Src: f.Src, Dst: f.Dst, Packet: p, At: f.At})
}
