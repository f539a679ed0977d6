package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/rxstamp"
	"github.com/director-lb/director/labtests/labplan"
)

// startFineResponders runs, on every host with an HTTP server, a UDP
// responder on VIP:FinePort that answers each datagram with its first 8
// bytes (the sequence number) and the host's name. The socket is bound to
// the VIP with IP_FREEBIND, so that a load balancer receives exactly what
// reaches it while the VIP is on it (a datagram for an address a node does
// not hold is not delivered locally) and its answer leaves from the VIP, as
// the client's connected socket requires. IP_TRANSPARENT lets that answer
// leave even if the VIP has gone meanwhile: a busy guest runs this
// process late, and a datagram that reached a holder in time was not lost
// by the network (seen: lb2 released the VIP 50 ms after requests reached
// it, before this process ran again).
func startFineResponders(p labplan.Params) (stop func(), err error) {
	var conns []net.PacketConn
	stop = func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	addr := net.JoinHostPort(labplan.VIP4Addr, strconv.Itoa(labplan.FinePort))
	for _, h := range labplan.Hosts() {
		if !h.HTTP || !h.Built(p) {
			continue
		}
		var c net.PacketConn
		err := inNetns(h.Name, func() error {
			lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = errors.Join(
						unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1),
						unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1))
				}); err != nil {
					return err
				}
				return serr
			}}
			var err error
			c, err = lc.ListenPacket(context.Background(), "udp4", addr)
			return err
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("fine responder in %s: %w", h.Name, err)
		}
		conns = append(conns, c)
		go serveFine(c, h.Name)
	}
	return stop, nil
}

func serveFine(c net.PacketConn, name string) {
	buf := make([]byte, 64)
	out := make([]byte, 8, 8+len(name))
	out = append(out, name...)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 8 {
			continue
		}
		copy(out[:8], buf[:8])
		_, _ = c.WriteTo(out, from)
	}
}

// fineProber sends a numbered datagram to VIP:FinePort every interval,
// in turn from each of its sockets (FineFlows), and records each answer's
// kernel receive time.
type fineProber struct {
	conns    []*net.UDPConn
	interval time.Duration
	timeout  time.Duration

	mu      sync.Mutex
	sent    []time.Time
	got     map[uint64]fineAnswer
	answers chan struct{} // poked on every answer

	stopSend chan struct{}
	sendDone chan struct{}
	recv     sync.WaitGroup
	start    time.Time
}

type fineAnswer struct {
	at   time.Time
	from string
}

// startFine opens the prober's sockets in namespace ns and starts sending.
func startFine(ns string, interval, timeout time.Duration) (*fineProber, error) {
	f := &fineProber{
		interval: interval, timeout: timeout,
		got: map[uint64]fineAnswer{}, answers: make(chan struct{}, 1),
		stopSend: make(chan struct{}), sendDone: make(chan struct{}),
		start: time.Now(),
	}
	for range labplan.FineFlows {
		conn, err := fineConn(ns)
		if err != nil {
			for _, c := range f.conns {
				_ = c.Close()
			}
			return nil, err
		}
		f.conns = append(f.conns, conn)
	}
	for _, c := range f.conns {
		f.recv.Add(1)
		go f.receive(c)
	}
	go f.send()
	return f, nil
}

// fineConn is one of the prober's sockets: connected to VIP:FinePort from
// a port of its own (a flow of its own to the router's ECMP), answers
// stamped with the kernel's receive time, so that a prober scheduled late
// does not stretch the round trips it measures.
func fineConn(ns string) (*net.UDPConn, error) {
	raddr := &net.UDPAddr{IP: net.ParseIP(labplan.VIP4Addr), Port: labplan.FinePort}
	var conn *net.UDPConn
	err := inNetns(ns, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, raddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fine probe in %s: %w", ns, err)
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = rxstamp.Enable(int(fd))
		})
		err = errors.Join(err, serr)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("fine probe: SO_TIMESTAMPNS: %w", err)
	}
	return conn, nil
}

func (f *fineProber) send() {
	defer close(f.sendDone)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	var b [8]byte
	for seq := uint64(0); ; seq++ {
		binary.BigEndian.PutUint64(b[:], seq)
		f.mu.Lock()
		f.sent = append(f.sent, time.Now())
		f.mu.Unlock()
		// A send error (no route, a refused port reported late) is a
		// failed request like any other: it gets no answer.
		_, _ = f.conns[seq%uint64(len(f.conns))].Write(b[:])
		select {
		case <-f.stopSend:
			return
		case <-t.C:
		}
	}
}

func (f *fineProber) receive(conn *net.UDPConn) {
	defer f.recv.Done()
	buf := make([]byte, 128)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED from an ICMP error: keep listening
		}
		at := rxstamp.Time(oob[:oobn])
		if at.IsZero() {
			at = time.Now()
		}
		if n < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf[:8])
		f.mu.Lock()
		if _, dup := f.got[seq]; !dup {
			f.got[seq] = fineAnswer{at: at, from: string(buf[8:n])}
		}
		f.mu.Unlock()
		select {
		case f.answers <- struct{}{}:
		default:
		}
	}
}

// stop stops sending, waits up to the timeout for the last answers and
// returns the run. Answers that came while it ran count however late.
func (f *fineProber) stop() labplan.ProbeRun {
	close(f.stopSend)
	<-f.sendDone
	stopAt := time.Now()
	deadline := time.NewTimer(f.timeout)
	defer deadline.Stop()
wait:
	for {
		f.mu.Lock()
		all := len(f.got) >= len(f.sent)
		f.mu.Unlock()
		if all {
			break
		}
		select {
		case <-f.answers:
		case <-deadline.C:
			break wait
		}
	}
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.recv.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return fineRun(f.start, stopAt, f.sent, f.got, f.timeout)
}

// fineRun turns send times and answers into a ProbeRun: an answered
// request is OK, Took its round trip, however long (see FineTimeout).
func fineRun(start, stop time.Time, sent []time.Time, got map[uint64]fineAnswer, timeout time.Duration) labplan.ProbeRun {
	run := labplan.ProbeRun{Start: start, Stop: stop, Samples: make([]labplan.Sample, 0, len(sent))}
	for i, at := range sent {
		s := labplan.Sample{At: at}
		if a, ok := got[uint64(i)]; ok {
			s.Took, s.OK, s.From = labplan.Duration(a.at.Sub(at)), true, a.from
		} else {
			s.Took, s.Err = labplan.Duration(timeout), labplan.FineLost
		}
		run.Samples = append(run.Samples, s)
	}
	return run
}
