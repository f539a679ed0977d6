package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/director-lb/director/vrrp/transport"
)

// A VRRP socket's reader that fails (any read error but the socket's own
// closing) would leave its instances deaf: a backup would take over from a
// master it no longer hears. So the reader is supervised: the socket is
// reopened with backoff and the dispatcher runs again on the new one, while
// the instances keep sending through the same swappableConn. As long as a
// reader is down the watchdog check fails (alive), so systemd restarts a
// daemon that cannot get its socket back within WatchdogSec.
const (
	readerBackoffMin = 100 * time.Millisecond
	readerBackoffMax = 5 * time.Second
)

// swappableConn is a VRRP socket whose kernel socket can be replaced.
type swappableConn struct {
	mu     sync.RWMutex
	cur    VRRPConn
	closed bool
	done   chan struct{} // closed by Close
}

func newSwappableConn(c VRRPConn) *swappableConn {
	return &swappableConn{cur: c, done: make(chan struct{})}
}

func (c *swappableConn) get() VRRPConn {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cur
}

func (c *swappableConn) Read(buf []byte) (transport.Frame, error) { return c.get().Read(buf) }

func (c *swappableConn) WriteTo(b []byte, dst netip.Addr) error { return c.get().WriteTo(b, dst) }

func (c *swappableConn) Source() netip.Addr { return c.get().Source() }

// Close closes the current socket and ends any reopening.
func (c *swappableConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	cur := c.cur
	c.mu.Unlock()
	return cur.Close()
}

// replace puts n in place of the current socket, which it closes. After
// Close it closes n instead and reports false.
func (c *swappableConn) replace(n VRRPConn) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		n.Close()
		return false
	}
	old := c.cur
	c.cur = n
	c.mu.Unlock()
	old.Close()
	return true
}

// readerFault is why a socket has no reader, and since when.
type readerFault struct {
	err   error
	since time.Time
}

// superviseReader runs s's dispatcher until s is closed, reopening the
// socket whenever its reader fails.
func (d *Daemon) superviseReader(s *socket) {
	log := d.log.With("iface", s.key.iface, "socket", socketName(s.key))
	backoff := readerBackoffMin
	for {
		started := time.Now()
		err := s.disp.Run(context.Background())
		if err == nil {
			return // closed: its last instance is gone, or the daemon stops
		}
		if time.Since(started) > readerBackoffMax {
			backoff = readerBackoffMin // it had been running well
		}
		s.fault.Store(&readerFault{err: err, since: time.Now()})
		log.Error("VRRP receive stopped; reopening the socket", "err", err)
		s.conn.get().Close()
		for {
			select {
			case <-s.conn.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, readerBackoffMax)
			c, err := d.edges.ListenVRRP(listenOptions(s.key))
			if err != nil {
				log.Error("VRRP socket not reopened", "err", err, "retry_in", backoff)
				continue
			}
			oldSrc := s.conn.Source()
			if !s.conn.replace(c) {
				return
			}
			if c.Source() != oldSrc {
				// The instances keep the address they advertise from.
				log.Warn("reopened VRRP socket has another source address", "was", oldSrc, "now", c.Source())
			}
			break
		}
		s.fault.Store(nil)
		log.Info("VRRP receive restored")
	}
}

// readersAlive reports the first socket without a reader.
func (d *Daemon) readersAlive() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sockets {
		if f := s.fault.Load(); f != nil {
			return fmt.Errorf("VRRP receive on %s (%s) down since %s: %w",
				s.key.iface, socketName(s.key), f.since.Format(time.RFC3339), f.err)
		}
	}
	return nil
}

func listenOptions(k connKey) transport.Options {
	return transport.Options{Interface: k.iface, Family: k.family, Multicast: !k.unicast, Source: k.source, SourceInterface: k.sourceIf}
}
