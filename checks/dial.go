package checks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
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
	return r
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
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
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
