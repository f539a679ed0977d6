package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// echoTimeout is how long a message may wait for its echo before the
// connection counts as dead. It is long enough to ride out a failover's
// TCP retransmissions (200, 400, 800 ms ...), which are a stall, not a
// death.
const echoTimeout = 5 * time.Second

// startEcho runs, in real server h, a TCP server on EchoPort that greets
// each connection with the host name and a newline and then echoes what
// it reads, so a client can tell which real server holds a connection and
// whether it still works. stop closes the listener; connections already
// accepted live on.
func startEcho(h labplan.Host) (stop func(), err error) {
	ln, err := listenIn(h.Name, fmt.Sprintf(":%d", labplan.EchoPort))
	if err != nil {
		return nil, err
	}
	go serveEcho(ln, h.Name)
	return func() { _ = ln.Close() }, nil
}

func serveEcho(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, name+"\n"); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}

// liveConn is one long-lived client connection and its record. Its loop
// goroutine alone does I/O on it.
type liveConn struct {
	c    net.Conn
	rd   *bufio.Reader
	idx  int
	ping chan chan error // idle connections: conns_check asks for one round trip

	mu  sync.Mutex
	rec labplan.Conn
}

// connSet is the client's set of long-lived connections through the VIP.
type connSet struct {
	opened   time.Time
	interval time.Duration
	conns    []*liveConn
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// dialIn opens n TCP connections to addr from namespace ns ("" = this
// process's namespace), one after the other.
func dialIn(ns, addr string, n int) ([]net.Conn, error) {
	var raw []net.Conn
	dial := func() error {
		for range n {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d of %d to %s: %w", len(raw)+1, n, addr, err)
			}
			raw = append(raw, c)
		}
		return nil
	}
	var err error
	if ns == "" {
		err = dial()
	} else {
		err = inNetns(ns, dial)
	}
	if err != nil {
		for _, c := range raw {
			_ = c.Close()
		}
		return nil, err
	}
	return raw, nil
}

// openConns takes over freshly dialled connections: it reads each
// greeting and starts one loop per connection, which with interval > 0
// sends a message every interval and otherwise waits for conns_check.
// On error every connection is closed.
func openConns(raw []net.Conn, interval time.Duration) (*connSet, error) {
	closeAll := func() {
		for _, c := range raw {
			_ = c.Close()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs := &connSet{opened: time.Now(), interval: interval, cancel: cancel}
	for i, c := range raw {
		lc := &liveConn{c: c, rd: bufio.NewReader(c), idx: i, ping: make(chan chan error)}
		lc.rec = labplan.Conn{Local: c.LocalAddr().String(), Opened: time.Now()}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		hello, err := lc.rd.ReadString('\n')
		if err != nil {
			cancel()
			closeAll()
			return nil, fmt.Errorf("connection %d (%s): no greeting: %w", i, lc.rec.Local, err)
		}
		lc.rec.Server = strings.TrimSpace(hello)
		cs.conns = append(cs.conns, lc)
	}
	for _, lc := range cs.conns {
		cs.wg.Go(func() { lc.loop(ctx, interval) })
	}
	return cs, nil
}

func (lc *liveConn) loop(ctx context.Context, interval time.Duration) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for seq := 0; ; seq++ {
		var reply chan error
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case reply = <-lc.ping:
		}
		err := lc.roundTrip(seq)
		if reply != nil {
			reply <- err
		}
		if err != nil {
			return
		}
	}
}

// roundTrip sends one message and waits for its echo. A failure marks the
// connection dead as of the message's send time.
func (lc *liveConn) roundTrip(seq int) error {
	msg := fmt.Appendf(nil, "%04d %08d\n", lc.idx, seq)
	at := time.Now()
	_ = lc.c.SetDeadline(at.Add(echoTimeout))
	err := func() error {
		if _, err := lc.c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(lc.rd, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if err != nil {
		lc.rec.Died, lc.rec.Err = at, shortErr(err)
		return err
	}
	lc.rec.Echoed++
	if d := labplan.Duration(time.Since(at)); d > lc.rec.SlowestEcho {
		lc.rec.SlowestEcho = d
	}
	return nil
}

func (lc *liveConn) record() labplan.Conn {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.rec
}

// check makes one round trip on every idle connection still alive and
// fails if any connection, idle or streaming, is dead.
func (cs *connSet) check() error {
	var errs []error
	for _, lc := range cs.conns {
		if cs.interval == 0 && lc.record().Alive() {
			reply := make(chan error, 1)
			lc.ping <- reply
			<-reply
		}
		if r := lc.record(); !r.Alive() {
			errs = append(errs, fmt.Errorf("connection %d (%s via %s) died %s: %s",
				lc.idx, r.Local, r.Server, r.Died.Format("15:04:05.000"), r.Err))
		}
	}
	return errors.Join(errs...)
}

// close stops the loops, letting each finish the round trip in flight
// (so a stall in progress is judged, not cut short), then closes the
// sockets and returns the record.
func (cs *connSet) close() labplan.ConnSet {
	cs.cancel()
	cs.wg.Wait()
	out := labplan.ConnSet{Opened: cs.opened, Closed: time.Now(), Interval: labplan.Duration(cs.interval)}
	for _, lc := range cs.conns {
		_ = lc.c.Close()
		out.Conns = append(out.Conns, lc.record())
	}
	return out
}

// servers summarises which real server holds how many connections.
func (cs *connSet) servers() string {
	n := map[string]int{}
	for _, lc := range cs.conns {
		n[lc.record().Server]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}
