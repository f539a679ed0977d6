package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/rxstamp"
)

// protocolVRRP is the IANA protocol number of VRRP.
const protocolVRRP = 112

// vrrpTTL is the TTL / hop limit every advertisement must carry (RFC 5798
// 5.1.1.3 and 5.1.2.3): receivers drop anything else, which proves the
// sender is on the local link.
const vrrpTTL = 255

// tosNetworkControl marks VRRP as network control traffic (DSCP CS6), so
// that queues under load drop data before they drop elections.
const tosNetworkControl = 0xc0

// recvBufSize is the receive buffer we ask for. A flood of junk must not
// leave the kernel without room for the peer's next advertisement.
const recvBufSize = 1 << 20

var (
	groupV4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	groupV6 = netip.MustParseAddr("ff02::12")
)

// MulticastGroup returns the VRRP multicast group for family 4 or 6, or the
// zero Addr for any other family.
func MulticastGroup(family int) netip.Addr {
	switch family {
	case 4:
		return groupV4
	case 6:
		return groupV6
	}
	return netip.Addr{}
}

// Options configures Listen.
type Options struct {
	Interface string // required, e.g. "eth0"
	Family    int    // 4 or 6
	Multicast bool   // join 224.0.0.18 / ff02::12 on Interface
	// Source is the address every send uses. If invalid: IPv4 uses the
	// interface's first IPv4 address, IPv6 the interface's link-local
	// address (RFC 5798 requires a link-local source for IPv6).
	Source netip.Addr
	// SourceInterface, if set, is where the default Source is looked up
	// instead of Interface: a VRRP virtual-MAC interface (a macvlan) has
	// no IPv4 address of its own, so its adverts carry the parent's.
	SourceInterface string
}

// Frame is one received packet with what the IP layer said about it.
// Addresses carry no zone; IfIndex tells the interface.
type Frame struct {
	Src, Dst netip.Addr
	TTL      int // IPv4 TTL or IPv6 hop limit as received; -1 if the kernel did not say
	IfIndex  int
	Payload  []byte // the VRRP message (IPv4 header stripped); aliases the buffer passed to Read
	// At is when the kernel received the packet; zero if it did not say.
	At time.Time
}

// Conn is a raw VRRP socket bound to one interface and one address family.
// Its methods are safe for concurrent use.
type Conn struct {
	family  int
	ifIndex int
	src     netip.Addr
	ip      *net.IPConn
	v4      *ipv4.RawConn    // family 4: sends with a header we build
	v6      *ipv6.PacketConn // family 6: sends with control messages
	oobLen  int
	// overflows is the kernel's count of packets dropped because the
	// receive buffer was full (SO_RXQ_OVFL), as of the last read.
	overflows atomic.Uint32
	rq        readQueue
}

// Listen opens a raw VRRP socket on opts.Interface in the network namespace
// of the calling OS thread.
func Listen(opts Options) (*Conn, error) {
	if opts.Interface == "" {
		return nil, errors.New("transport: no interface given")
	}
	if opts.Family != 4 && opts.Family != 6 {
		return nil, fmt.Errorf("transport: family %d: want 4 or 6", opts.Family)
	}
	ifi, err := net.InterfaceByName(opts.Interface)
	if err != nil {
		return nil, fmt.Errorf("transport: interface %q: %w", opts.Interface, err)
	}
	srcIf := ifi
	if opts.SourceInterface != "" && !opts.Source.IsValid() {
		if srcIf, err = net.InterfaceByName(opts.SourceInterface); err != nil {
			return nil, fmt.Errorf("transport: source interface %q: %w", opts.SourceInterface, err)
		}
	}
	src, err := pickSource(srcIf, opts.Family, opts.Source)
	if err != nil {
		return nil, err
	}

	network, laddr := "ip4:112", "0.0.0.0"
	if opts.Family == 6 {
		network, laddr = "ip6:112", "::"
	}
	// Bind to the device before bind(2) so packets from other interfaces
	// never reach this socket (except a tiny window after socket(2), which
	// Read closes by checking the interface index). The address stays
	// unspecified: binding a raw IPv4 socket to an address would also filter
	// on destination and lose the multicast packets.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return controlSocket(rc, ifi.Name)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("transport: open %s socket on %s: %w", network, ifi.Name, err)
	}
	c := &Conn{family: opts.Family, ifIndex: ifi.Index, src: src, ip: pc.(*net.IPConn)}
	if opts.Family == 4 {
		err = c.setup4(ifi, opts.Multicast)
	} else {
		err = c.setup6(ifi, opts.Multicast)
	}
	if err != nil {
		c.ip.Close()
		return nil, fmt.Errorf("transport: set up %s on %s: %w", network, ifi.Name, err)
	}
	return c, nil
}

// controlSocket sets the options that must be in place before packets
// arrive: the device binding and the receive buffer size.
func controlSocket(rc syscall.RawConn, ifname string) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if err := unix.BindToDevice(int(fd), ifname); err != nil {
			serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
			return
		}
		// Ask the kernel to say, with each packet, how many it dropped for
		// want of buffer room: a flood shows up as a number, not as
		// silence. Best effort: a kernel without it just never says.
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		// The kernel's receive time of each packet (Frame.At), so that a
		// Master_Down_Timer runs from an advert's arrival, not from when
		// a busy daemon got to it. Best effort as well.
		_ = rxstamp.Enable(int(fd))
		// SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN;
		// without it we take what SO_RCVBUF grants.
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBufSize) != nil {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, recvBufSize); err != nil {
				serr = fmt.Errorf("SO_RCVBUF: %w", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func (c *Conn) setup4(ifi *net.Interface, multicast bool) error {
	rc, err := ipv4.NewRawConn(c.ip) // sets IP_HDRINCL: we write TTL and source ourselves
	if err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	c.v4 = rc
	if err := rc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	c.oobLen = len(ipv4.NewControlMessage(ipv4.FlagInterface|ipv4.FlagDst)) + unix.CmsgSpace(4) + rxstamp.OOBSize
	if err := rc.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if err := rc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
	}
	if multicast {
		if err := rc.JoinGroup(ifi, &net.IPAddr{IP: groupV4.AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", groupV4, err)
		}
	}
	return nil
}

func (c *Conn) setup6(ifi *net.Interface, multicast bool) error {
	pc := ipv6.NewPacketConn(c.ip)
	c.v6 = pc
	// The VRRP checksum is the caller's: the kernel must neither verify
	// nor rewrite it. -1 is the default for protocol 112, but say so.
	if err := pc.SetChecksum(false, 0); err != nil {
		return fmt.Errorf("IPV6_CHECKSUM: %w", err)
	}
	if err := pc.SetHopLimit(vrrpTTL); err != nil {
		return fmt.Errorf("IPV6_UNICAST_HOPS: %w", err)
	}
	if err := pc.SetMulticastHopLimit(vrrpTTL); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_HOPS: %w", err)
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_IF: %w", err)
	}
	if err := pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_LOOP: %w", err)
	}
	flags := ipv6.FlagHopLimit | ipv6.FlagDst | ipv6.FlagInterface
	if err := pc.SetControlMessage(flags, true); err != nil {
		return fmt.Errorf("IPV6_RECVPKTINFO/RECVHOPLIMIT: %w", err)
	}
	c.oobLen = len(ipv6.NewControlMessage(flags)) + unix.CmsgSpace(4) + rxstamp.OOBSize
	if multicast {
		if err := pc.JoinGroup(ifi, &net.IPAddr{IP: groupV6.AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", groupV6, err)
		}
	}
	return nil
}

// pickSource validates an explicit source or finds the default one on ifi.
func pickSource(ifi *net.Interface, family int, want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		want = want.Unmap().WithZone("")
		if (family == 4) != want.Is4() {
			return netip.Addr{}, fmt.Errorf("transport: source %s is not an IPv%d address", want, family)
		}
		return want, nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("transport: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if family == 4 && ip.Is4() || family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	kind := "IPv4"
	if family == 6 {
		kind = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("transport: interface %s has no %s address", ifi.Name, kind)
}

// Source returns the address every send uses as the IP source.
func (c *Conn) Source() netip.Addr { return c.src }

// WriteTo sends payload to dst (the multicast group or a unicast peer) with
// TTL/hop limit 255 and exactly Source() as the IP source; multicast
// loopback is off.
func (c *Conn) WriteTo(payload []byte, dst netip.Addr) error {
	dst = dst.Unmap()
	if c.family == 4 {
		if !dst.Is4() {
			return fmt.Errorf("transport: send to %s: not an IPv4 address", dst)
		}
		h := &ipv4.Header{
			Version:  ipv4.Version,
			Len:      ipv4.HeaderLen,
			TOS:      tosNetworkControl,
			TotalLen: ipv4.HeaderLen + len(payload),
			TTL:      vrrpTTL,
			Protocol: protocolVRRP,
			Src:      c.src.AsSlice(),
			Dst:      dst.AsSlice(),
			// ID and Checksum left zero: the kernel fills them in.
		}
		if err := c.v4.WriteTo(h, payload, nil); err != nil {
			return fmt.Errorf("transport: send to %s: %w", dst, err)
		}
		return nil
	}
	if !dst.Is6() {
		return fmt.Errorf("transport: send to %s: not an IPv6 address", dst)
	}
	// IPV6_PKTINFO pins the source and the interface (which also scopes a
	// zone-less link-local destination); the hop limit is repeated per
	// packet so no socket option change can ever lower it.
	cm := &ipv6.ControlMessage{
		TrafficClass: tosNetworkControl,
		HopLimit:     vrrpTTL,
		Src:          c.src.AsSlice(),
		IfIndex:      c.ifIndex,
	}
	if _, err := c.v6.WriteTo(payload, cm, &net.IPAddr{IP: dst.WithZone("").AsSlice()}); err != nil {
		return fmt.Errorf("transport: send to %s: %w", dst, err)
	}
	return nil
}

// readBatch is how many packets one receive may take (recvmmsg): under a
// flood, a system call per packet is what limits how many a node can
// look at, and so whether the peer's adverts are read before the buffer
// overflows. With no flood a receive returns the one packet there is.
const readBatch = 32

// maxPacket fits the largest VRRP packet: a 60-byte IPv4 header and 255
// IPv4 addresses, or (no header) 255 IPv6 addresses.
const maxPacket = 8192

// readQueue holds what the last batched receive returned and Read has not
// handed out yet.
type readQueue struct {
	mu   sync.Mutex
	msgs []ipv4.Message // the same type as ipv6.Message
	next int
	n    int
	// buffered is n - next, readable without mu (Read holds mu while
	// it blocks).
	buffered atomic.Int32
}

// Read blocks for the next packet and returns it; Payload aliases buf. Size
// buf for the largest packet expected (the interface MTU); packets that do
// not fit, or that are malformed, are dropped. After Close it returns an
// error that wraps net.ErrClosed.
func (c *Conn) Read(buf []byte) (Frame, error) {
	q := &c.rq
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.msgs == nil {
		q.msgs = make([]ipv4.Message, readBatch)
		for i := range q.msgs {
			q.msgs[i].Buffers = [][]byte{make([]byte, maxPacket)}
			q.msgs[i].OOB = make([]byte, c.oobLen)
		}
	}
	for {
		if q.next >= q.n {
			var n int
			var err error
			if c.family == 4 {
				n, err = c.v4.ReadBatch(q.msgs, 0)
			} else {
				n, err = c.v6.ReadBatch(q.msgs, 0)
			}
			if err != nil {
				return Frame{}, fmt.Errorf("transport: read: %w", err)
			}
			q.next, q.n = 0, n
			q.buffered.Store(int32(n))
			continue
		}
		m := &q.msgs[q.next]
		q.next++
		q.buffered.Store(int32(q.n - q.next))
		oob := m.OOB[:m.NN]
		if n, ok := rxqOverflow(oob); ok {
			c.overflows.Store(n)
		}
		from, _ := m.Addr.(*net.IPAddr)
		if m.Flags&unix.MSG_TRUNC != 0 || m.N > len(buf) {
			slog.Debug("transport: dropped packet larger than the read buffer", "buffer", min(len(buf), maxPacket), "from", from)
			continue
		}
		n := copy(buf, m.Buffers[0][:m.N])
		var f Frame
		var err error
		if c.family == 4 {
			f, err = parse4(buf[:n], oob)
		} else {
			f, err = parse6(buf[:n], oob, from)
		}
		if err != nil {
			slog.Debug("transport: dropped malformed packet", "from", from, "err", err)
			continue
		}
		f.At = rxstamp.Time(oob)
		if f.IfIndex == 0 {
			f.IfIndex = c.ifIndex
		}
		// Only possible for packets queued before SO_BINDTODEVICE applied.
		if f.IfIndex != c.ifIndex {
			continue
		}
		return f, nil
	}
}

// Pending reports whether a packet waits to be read: in the kernel's
// receive queue (SIOCINQ), or read in a batch but not yet returned by
// Read. An instance whose Master_Down_Timer fires after a stall asks it
// before taking over, so that an advert that arrived in time is heard
// first.
func (c *Conn) Pending() bool {
	if c.rq.buffered.Load() > 0 {
		return true
	}
	rc, err := c.ip.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return false
	}
	return n > 0
}

// parse4 splits a raw IPv4 datagram (the kernel includes the header) into a
// Frame, stripping any IP options.
func parse4(b, oob []byte) (Frame, error) {
	h, err := ipv4.ParseHeader(b)
	if err != nil {
		return Frame{}, fmt.Errorf("IPv4 header: %w", err)
	}
	if h.Len < ipv4.HeaderLen || h.Len > len(b) {
		return Frame{}, fmt.Errorf("IPv4 header length %d in a %d-byte packet", h.Len, len(b))
	}
	end := len(b)
	if h.TotalLen >= h.Len && h.TotalLen < end {
		end = h.TotalLen
	}
	src, _ := netip.AddrFromSlice(h.Src)
	dst, _ := netip.AddrFromSlice(h.Dst)
	f := Frame{Src: src.Unmap(), Dst: dst.Unmap(), TTL: h.TTL, Payload: b[h.Len:end]}
	if len(oob) > 0 {
		var cm ipv4.ControlMessage
		if err := cm.Parse(oob); err != nil {
			return Frame{}, fmt.Errorf("control message: %w", err)
		}
		f.IfIndex = cm.IfIndex
	}
	return f, nil
}

// parse6 builds a Frame from a raw IPv6 payload (the kernel strips the
// header) and its control messages.
func parse6(b, oob []byte, from *net.IPAddr) (Frame, error) {
	f := Frame{TTL: -1, Payload: b}
	if from != nil {
		f.Src, _ = netip.AddrFromSlice(from.IP)
	}
	if len(oob) == 0 {
		return f, nil
	}
	var cm ipv6.ControlMessage
	if err := cm.Parse(oob); err != nil {
		return Frame{}, fmt.Errorf("control message: %w", err)
	}
	f.Dst, _ = netip.AddrFromSlice(cm.Dst)
	f.IfIndex = cm.IfIndex
	// cm.HopLimit is 0 both for "absent" and for a real hop limit of 0, so
	// look for the message itself.
	if hasHopLimit(oob) {
		f.TTL = cm.HopLimit
	}
	return f, nil
}

// rxqOverflow finds the SO_RXQ_OVFL count among the control messages.
func rxqOverflow(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}

// KernelDrops is how many packets the kernel dropped on this socket for
// want of receive buffer room, as last reported (SO_RXQ_OVFL).
func (c *Conn) KernelDrops() uint64 { return uint64(c.overflows.Load()) }

func hasHopLimit(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT {
			return true
		}
	}
	return false
}

// Close closes the socket, which also leaves the multicast group, and
// unblocks any pending Read.
func (c *Conn) Close() error {
	if err := c.ip.Close(); err != nil {
		return fmt.Errorf("transport: close: %w", err)
	}
	return nil
}
