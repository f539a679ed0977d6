package checks

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A ping check (keepalived's PING_CHECK) sends one ICMP or ICMPv6 echo
// request to the real server's address (its port means nothing) and waits
// for the matching echo reply.
//
// It uses an unprivileged ICMP socket (SOCK_DGRAM, IPPROTO_ICMP) where the
// kernel allows one to the daemon's group (net.ipv4.ping_group_range, which
// covers IPv6 too), and a raw socket otherwise (the daemon runs as root).
// Either socket is connected to the server, so the kernel passes on only
// the server's packets and reports an ICMP error about our request (host
// unreachable) as a socket error, which fails the attempt at once. Replies
// are matched by identifier (chosen by the kernel for an ICMP socket),
// sequence number and a random payload, so a late reply to an earlier
// attempt, or another program's ping, counts for nothing.

// Socket kinds a ping prober has found to work, per family.
const (
	pingUntried int32 = iota
	pingDgram
	pingRaw
)

// pingPayload is the echo data: a fixed tag and random bytes.
const pingTag = "director"

type pingProber struct {
	// mode4 and mode6 remember which kind of socket worked, so that a
	// refused ICMP socket is tried once, not on every attempt.
	mode4, mode6 atomic.Int32
}

func newPingProber() *pingProber { return &pingProber{} }

func (p *pingProber) Probe(ctx context.Context, t Target) Result {
	v6 := t.Addr.Addr().Is6()
	mode := &p.mode4
	if v6 {
		mode = &p.mode6
	}
	var c *icmpConn
	var err error
	switch mode.Load() {
	case pingUntried:
		c, err = dialICMP(ctx, t, true)
		if err == nil {
			mode.Store(pingDgram)
			break
		}
		if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EPROTONOSUPPORT) {
			return failure("open ICMP socket: %s", describe(err))
		}
		if c, err = dialICMP(ctx, t, false); err == nil {
			mode.Store(pingRaw)
		}
	case pingDgram:
		c, err = dialICMP(ctx, t, true)
	default:
		c, err = dialICMP(ctx, t, false)
	}
	if err != nil {
		return failure("open ICMP socket: %s", describe(err))
	}
	defer c.Close()

	var rnd [12]byte
	_, _ = rand.Read(rnd[:]) // never fails on Linux
	id, seq := binary.BigEndian.Uint16(rnd[0:]), binary.BigEndian.Uint16(rnd[2:])
	data := append([]byte(pingTag), rnd[4:]...)
	if _, err := c.Write(echoRequest(v6, id, seq, data)); err != nil {
		return ioFailure("send echo request", err)
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.read(buf)
		if err != nil {
			if isUnreachable(err) {
				return failure("destination unreachable: %s", describe(err))
			}
			return ioFailure("wait for echo reply", err)
		}
		// An ICMP socket's identifier is the kernel's, which already
		// delivered only replies carrying it.
		switch judgeICMP(buf[:n], v6, !c.dgram, id, seq, data) {
		case icmpReply:
			if c.dgram {
				return success("echo reply (ICMP socket)")
			}
			return success("echo reply (raw socket)")
		case icmpUnreachable:
			return failure("destination unreachable")
		}
	}
}

// icmpConn is a connected ICMP socket: a datagram (ping) socket or a raw
// one.
type icmpConn struct {
	*probeConn
	dgram bool
	raw   *net.IPConn
}

// read returns the next ICMP message, without the IPv4 header a raw
// socket would include.
func (c *icmpConn) read(b []byte) (int, error) {
	if c.raw != nil {
		n, _, err := c.raw.ReadFrom(b) // ReadFrom strips the IPv4 header; Read would not
		return n, err
	}
	return c.Read(b)
}

// dialICMP opens an ICMP socket to t.Addr's address: a datagram one if
// dgram, else a raw one.
func dialICMP(ctx context.Context, t Target, dgram bool) (*icmpConn, error) {
	addr := t.Addr.Addr()
	var c net.Conn
	var err error
	if dgram {
		c, err = dialPingSocket(addr, t.Source)
	} else {
		network := "ip4:icmp"
		if addr.Is6() {
			network = "ip6:ipv6-icmp"
		}
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = setRecvErr(int(fd), addr.Is6()) })
			return errors.Join(err, serr)
		}}
		if t.Source.IsValid() {
			d.LocalAddr = &net.IPAddr{IP: t.Source.AsSlice()}
		}
		c, err = d.DialContext(ctx, network, addr.String())
	}
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	ic := &icmpConn{probeConn: &probeConn{Conn: c, stop: stop}, dgram: dgram}
	ic.raw, _ = c.(*net.IPConn)
	return ic, nil
}

// dialPingSocket opens a connected SOCK_DGRAM ICMP socket. It is made here
// rather than with golang.org/x/net/icmp, whose socket is not close-on-exec
// (an exec check started meanwhile would inherit it) and not connected.
func dialPingSocket(addr, source netip.Addr) (net.Conn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if addr.Is6() {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	sockaddr := func(a netip.Addr) unix.Sockaddr {
		if a.Is4() {
			return &unix.SockaddrInet4{Addr: a.As4()}
		}
		return &unix.SockaddrInet6{Addr: a.As16()}
	}
	if err := setRecvErr(fd, addr.Is6()); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if source.IsValid() {
		if err := unix.Bind(fd, sockaddr(source)); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	if err := unix.Connect(fd, sockaddr(addr)); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close() // FileConn holds its own duplicate
	return net.FileConn(f)
}

// setRecvErr turns on IP_RECVERR (IPV6_RECVERR): without it the kernel
// reports only "hard" ICMP errors on a socket, and host or network
// unreachable are "soft", so the attempt would wait for its timeout. It
// also brings errors sent by a router, whose packets a socket connected
// to the server does not receive.
func setRecvErr(fd int, v6 bool) error {
	if v6 {
		return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1))
	}
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1))
}

// isUnreachable tells the socket errors that ICMP errors about our
// request become.
func isUnreachable(err error) bool {
	for _, e := range []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ECONNREFUSED, syscall.ENOPROTOOPT, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ICMP message types used here.
const (
	icmpv4EchoReply   = 0
	icmpv4Unreachable = 3
	icmpv4Echo        = 8
	icmpv6Unreachable = 1
	icmpv6Echo        = 128
	icmpv6EchoReply   = 129
)

// echoRequest builds an echo request. An ICMPv6 checksum covers a
// pseudo-header and is filled in by the kernel; an ICMP socket rewrites
// the identifier and the checksum.
func echoRequest(v6 bool, id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = icmpv4Echo
	if v6 {
		b[0] = icmpv6Echo
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], ^inetSum(b))
	}
	return b
}

// inetSum is the ones' complement sum of b (RFC 1071), not yet inverted.
func inetSum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

type icmpVerdict int

const (
	icmpOther icmpVerdict = iota // not about our request: keep waiting
	icmpReply
	icmpUnreachable
)

// judgeICMP decides what an ICMP message (without IP header) says about
// our echo request. checkID is false for an ICMP socket, whose identifier
// the kernel chose and matched. An IPv4 message with a bad checksum is
// ignored (a raw socket gets messages before the kernel checks them; for
// ICMPv6 the kernel checks).
func judgeICMP(b []byte, v6, checkID bool, id, seq uint16, data []byte) icmpVerdict {
	if len(b) < 8 || (!v6 && inetSum(b) != 0xffff) {
		return icmpOther
	}
	reply, unreach := byte(icmpv4EchoReply), byte(icmpv4Unreachable)
	if v6 {
		reply, unreach = icmpv6EchoReply, icmpv6Unreachable
	}
	switch b[0] {
	case reply:
		if b[1] == 0 && (!checkID || binary.BigEndian.Uint16(b[4:]) == id) &&
			binary.BigEndian.Uint16(b[6:]) == seq && string(b[8:]) == string(data) {
			return icmpReply
		}
	case unreach:
		// The quoted request: an IP header, then at least 8 bytes of ours.
		q := b[8:]
		hl := 40
		if !v6 {
			if len(q) < 20 || q[0]>>4 != 4 {
				return icmpOther
			}
			hl = int(q[0]&0xf) * 4
		} else if len(q) < hl || q[0]>>4 != 6 || q[6] != unix.IPPROTO_ICMPV6 {
			return icmpOther // extension headers before ICMPv6 are not followed
		}
		if len(q) < hl+8 {
			return icmpOther
		}
		e := q[hl:]
		req := byte(icmpv4Echo)
		if v6 {
			req = icmpv6Echo
		}
		if e[0] == req && (!checkID || binary.BigEndian.Uint16(e[4:]) == id) && binary.BigEndian.Uint16(e[6:]) == seq {
			return icmpUnreachable
		}
	}
	return icmpOther
}

// String names a ping prober's socket kinds, for tests and logs.
func (p *pingProber) String() string {
	name := func(m int32) string {
		switch m {
		case pingDgram:
			return "icmp"
		case pingRaw:
			return "raw"
		}
		return "untried"
	}
	return fmt.Sprintf("ping(v4 %s, v6 %s)", name(p.mode4.Load()), name(p.mode6.Load()))
}
