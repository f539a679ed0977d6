package checks

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestTCPConnect(t *testing.T) {
	noLeaks(t)
	ln := listen(t)
	stop := serveConns(ln, hold)
	defer stop()
	addr := addrOf(t, ln.Addr())
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeTCP}), addr, 5*time.Second))
	stop()
	r := probe(t, mustProber(t, Spec{Type: TypeTCP}), addr, 5*time.Second)
	wantDown(t, r, "connect: connection refused")
	if !r.Refused {
		t.Error("a refused connection is not marked Refused")
	}
}

func TestTCPExchange(t *testing.T) {
	noLeaks(t)
	ln := listen(t)
	// A line protocol: PING gets PONG, written a byte at a time so that the
	// expectation straddles reads; anything else gets ERR. A banner first.
	stop := serveConns(ln, func(c net.Conn) {
		c.Write([]byte("220 ready\r\n"))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		reply := "ERR\r\n"
		if strings.HasPrefix(string(buf[:n]), "PING") {
			reply = "+PONG server=7\r\n"
		}
		for i := range len(reply) {
			c.Write([]byte{reply[i]})
			time.Sleep(time.Millisecond)
		}
		hold(c)
	})
	defer stop()
	addr := addrOf(t, ln.Addr())

	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "220 "}}), addr, 5*time.Second))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", Expect: "PONG"}}), addr, 5*time.Second))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", ExpectRegex: `server=\d+`}}), addr, 5*time.Second))
	// The server holds the connection after ERR: the check waits for its
	// expectation until the timeout.
	r := probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Send: "HELLO\r\n", Expect: "PONG"}}), addr, 200*time.Millisecond)
	wantDown(t, r, "timeout after 200ms (wait for reply)")
}

func TestTCPReplyThenClose(t *testing.T) {
	noLeaks(t)
	ln := listen(t)
	stop := serveConns(ln, func(c net.Conn) {
		c.Read(make([]byte, 64))
		c.Write([]byte("VERSION 1.2\r\n"))
		c.(*net.TCPConn).SetLinger(0) // answers, then resets: still up
	})
	defer stop()
	addr := addrOf(t, ln.Addr())
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Send: "version\r\n", Expect: "VERSION"}}), addr, 5*time.Second))
	r := probe(t, mustProber(t, Spec{Type: TypeTCP, TCP: TCPSpec{Send: "version\r\n", Expect: "2.0"}}), addr, 5*time.Second)
	if r.OK || r.TimedOut {
		t.Fatalf("want a prompt failure, got %+v", r)
	}
}

// A regexp over a reply that arrives a byte at a time must not be re-run
// on every byte: 64 KiB of one-byte reads finish quickly.
func TestTCPAwaitOneByteReads(t *testing.T) {
	p, err := newTCPProber(TCPSpec{ExpectRegex: `(a+)+b`})
	if err != nil {
		t.Fatal(err)
	}
	data := append(bytes.Repeat([]byte("a"), 70<<10), 'b')
	start := time.Now()
	r := p.await(iotest.OneByteReader(bytes.NewReader(data)))
	if r.OK || !strings.Contains(r.Reason, "reply (65536 bytes) does not match") {
		t.Fatalf("got %+v", r)
	}
	// Re-running the regexp on every byte would take minutes; allow for the
	// race detector and a busy machine.
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
	// A match that arrives last, at the cap, is still seen.
	p, _ = newTCPProber(TCPSpec{ExpectRegex: `ab$`, MaxBytes: 10 << 10})
	data = append(bytes.Repeat([]byte("a"), 10<<10-1), 'b')
	if r := p.await(iotest.OneByteReader(bytes.NewReader(data))); !r.OK {
		t.Fatalf("match at the cap missed: %s", r.Reason)
	}
	p, _ = newTCPProber(TCPSpec{Expect: "ab", MaxBytes: 10 << 10})
	if r := p.await(iotest.OneByteReader(bytes.NewReader(data))); !r.OK {
		t.Fatalf("substring at the cap missed: %s", r.Reason)
	}
}

func TestTCPSpecErrors(t *testing.T) {
	for _, s := range []TCPSpec{
		{Expect: "a", ExpectRegex: "b"},
		{ExpectRegex: "("},
		{Expect: "toolong", MaxBytes: 3},
	} {
		if _, err := NewProber(Spec{Type: TypeTCP, TCP: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
