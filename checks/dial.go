package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/rxstamp"
)

// probeConn is a check's connection: its I/O ends at the context's deadline
// or as soon as the context is cancelled, and Close resets it.
type probeConn struct {
	net.Conn
	stop func() bool
}

// dial connects to t.Addr from t.Source over network ("tcp" or "udp").
func dial(ctx context.Context, network string, t Target) (*probeConn, error) {
	// No keep-alive probing on a connection that lives for one exchange:
	// that saves four setsockopt calls per check.
	d := net.Dialer{KeepAlive: -1}
	if network == "tcp" {
		d.Control = prepareTCP
		if t.Source.IsValid() {
			d.Control = prepareBoundTCP
		}
	}
	if t.Source.IsValid() {
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(t.Source, 0))
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(t.Source, 0))
		}
	}
	c, err := d.DialContext(ctx, network, t.Addr.String())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// Cancellation (a removed check, a stopping manager) unblocks I/O at once
	// instead of waiting for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return &probeConn{Conn: c, stop: stop}, nil
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (not in package
// syscall).
const ipBindAddressNoPort = 24

// prepareTCP sets up a check's socket before it connects, with SO_LINGER 0:
// closing resets the connection, so it leaves no TIME_WAIT behind and a
// high check rate cannot use up the ephemeral ports. Set before connect, it
// also covers a connect that times out and is closed by the net package.
func prepareTCP(_, _ string, c syscall.RawConn) error { return setupSocket(c, false) }

// prepareBoundTCP is prepareTCP for a check with a source address, adding
// IP_BIND_ADDRESS_NO_PORT: the local port is chosen at connect, not bind,
// so bound checks share ports across destinations as unbound ones do.
func prepareBoundTCP(_, _ string, c syscall.RawConn) error { return setupSocket(c, true) }

func setupSocket(c syscall.RawConn, bound bool) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		if serr == nil && bound {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func (c *probeConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// ioFailure turns an I/O error at some stage of a probe into a failed
// Result. Timeouts are only marked: the round runner words them, because it
// knows the configured timeout.
func ioFailure(stage string, err error) Result {
	if isTimeout(err) {
		r := failure("%s", stage)
		r.TimedOut = true
		return r
	}
	r := failure("%s: %s", stage, describe(err))
	r.Refused = errors.Is(err, syscall.ECONNREFUSED)
	r.Closed = endOfStream(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	return r
}

// endOfStream reports whether err is the server's end of the stream, whole
// or cut short.
func endOfStream(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// describe words an error without the address noise of net.OpError
// ("dial tcp 10.0.0.1:0->10.0.0.2:80: connect: connection refused" becomes
// "connection refused"); the stage says the rest.
func describe(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case endOfStream(err):
		return "connection closed by server"
	case errors.Is(err, context.Canceled):
		return "check stopped"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// fastConn is a check's TCP connection made without the net package's
// dialer: a non-blocking socket whose connect the first write (or
// waitConnected) completes, under one deadline for the whole attempt. Per
// check that saves a context timer, two deadline resets, TCP_NODELAY,
// getsockname/getpeername and the dialer's goroutine-free but busy
// bookkeeping: system calls and clock reads, which are dear in a VM that
// traps them (User-Mode Linux traps even the clock reads).
type fastConn struct {
	f       *os.File
	stop    func() bool
	pending bool // connect not yet known to have completed
	// ctx and deadline bound the attempt; lateRead needs both.
	ctx      context.Context
	deadline time.Time
	// lateReads counts reads of bytes the kernel received before the
	// deadline that the deadline had cut short (Result.ReadLate).
	lateReads int
	// lateSeen is what lateRead last saw: bytes read and their receive
	// time (zero: none), for tests to explain a failure.
	lateSeen struct {
		n  int
		at time.Time
	}
}

// dialFast starts connecting to t.Addr (from t.Source) over TCP; I/O on the
// connection ends at deadline, or as soon as ctx is cancelled.
func dialFast(ctx context.Context, t Target, deadline time.Time) (*fastConn, error) {
	fd, pending, err := connectNonblocking(t)
	if err != nil {
		return nil, err
	}
	// os.NewFile sees a non-blocking descriptor and hands it to the
	// runtime's poller, so reads and writes park instead of blocking a
	// thread, and SetDeadline bounds them.
	f := os.NewFile(uintptr(fd), "check")
	_ = f.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	return &fastConn{f: f, stop: stop, pending: pending, ctx: ctx, deadline: deadline}, nil
}

// connectNonblocking opens a non-blocking TCP socket, set up as
// prepareFast does, and starts connecting it to t.Addr (from t.Source);
// pending says the connect is still under way.
func connectNonblocking(t Target) (fd int, pending bool, err error) {
	if !t.Addr.IsValid() {
		return -1, false, errors.New("no address")
	}
	dst := t.Addr.Addr().Unmap()
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if dst.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(t.Addr.Port()), Addr: dst.As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(t.Addr.Port()), Addr: dst.As16(), ZoneId: zoneID(dst.Zone())}
	}
	fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if err := prepareFast(fd, family, t.Source); err != nil {
		syscall.Close(fd)
		return -1, false, err
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil:
	case syscall.EINPROGRESS, syscall.EINTR:
		pending = true
	default:
		syscall.Close(fd)
		return -1, false, os.NewSyscallError("connect", err)
	}
	return fd, pending, nil
}

func prepareFast(fd, family int, src netip.Addr) error {
	if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if !src.IsValid() {
		return nil
	}
	src = src.Unmap()
	var sa syscall.Sockaddr
	if family == syscall.AF_INET {
		if !src.Is4() {
			return fmt.Errorf("source %s: not an IPv4 address", src)
		}
		sa = &syscall.SockaddrInet4{Addr: src.As4()}
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	} else {
		if src.Is4() {
			return fmt.Errorf("source %s: not an IPv6 address", src)
		}
		sa = &syscall.SockaddrInet6{Addr: src.As16(), ZoneId: zoneID(src.Zone())}
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// Write sends p; the first write also waits for the connect to complete,
// which a non-blocking send on a connecting socket reports as EAGAIN.
func (c *fastConn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	if err == nil {
		c.pending = false
	}
	return n, unwrapFile(err)
}

// Read reads into p. A read that the deadline cut short gets one more
// look, without waiting (lateRead): bytes the kernel received before the
// deadline were in time, however late a busy checker got to them.
func (c *fastConn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil {
		if m := c.lateRead(p); m > 0 {
			c.lateReads++
			return m, nil
		}
	}
	return n, unwrapFile(err)
}

// lateRead takes what the socket holds, if the kernel received it before
// the deadline, and returns how many bytes; 0 when there is nothing, or
// nothing in time, or no receive time to tell (then the timeout stands).
//
// Why: a checker that runs late can find an answer's deadline expired
// before its poller has reported the socket readable. The runtime then
// fails the read without looking at the socket, and a server that
// answered in time would be judged timed out: the checker's lateness
// taken for the server's. The receive time needs the kernel to have been
// stamping when the bytes came (rxstamp.Hold: the Manager holds it).
func (c *fastConn) lateRead(p []byte) int {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	// Control, not Read: Read would fail at the deadline before
	// calling the function.
	_ = rc.Control(func(fd uintptr) {
		m, at := readStamped(int(fd), p)
		if m == 0 {
			return
		}
		c.lateSeen.n, c.lateSeen.at = m, at
		if !at.IsZero() && !at.After(c.deadline) {
			n = m
		}
	})
	return n
}

// readStamped reads what fd holds into p, without waiting, with the time
// the kernel received it (zero when it has none: stamping was off when the
// bytes came). It returns 0 when there is nothing to read or the read
// fails; the caller's next read sees the error.
func readStamped(fd int, p []byte) (int, time.Time) {
	if rxstamp.Enable(fd) != nil {
		return 0, time.Time{}
	}
	var oob [64]byte
	m, oobn, _, _, err := unix.Recvmsg(fd, p, oob[:rxstamp.OOBSize], unix.MSG_DONTWAIT)
	if err != nil || m <= 0 {
		return 0, time.Time{}
	}
	return m, rxstamp.Time(oob[:oobn])
}

// waitConnected waits for a pending connect (for checks that send nothing)
// and reports its outcome.
func (c *fastConn) waitConnected() error {
	if !c.pending {
		return nil
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	// The socket's state is read on every call, the first included: the
	// poller forgets readiness it saw before this Write began, so waiting
	// first could miss a connect that completed already.
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case v != 0:
			cerr = os.NewSyscallError("connect", syscall.Errno(v))
		default:
			// Still connecting (or a spurious wake-up): Getpeername
			// tells, as the net package does.
			if _, err := syscall.Getpeername(int(fd)); err != nil {
				return false
			}
		}
		return true
	})
	if err != nil {
		return unwrapFile(err)
	}
	c.pending = false
	return cerr
}

func (c *fastConn) Close() error {
	c.stop()
	return c.f.Close()
}

// unwrapFile turns *os.File's errors into what the net package's would
// say: a *PathError around a syscall error becomes the error itself.
func unwrapFile(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
