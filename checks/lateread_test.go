package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/rxstamp"
	"github.com/director-lb/director/internal/testwait"
)

// lateReadServer accepts one connection on loopback and writes answer when
// told to (on send), then holds the connection open.
func lateReadServer(t *testing.T, answer string) (Target, chan<- struct{}) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	send := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-send
		_, _ = c.Write([]byte(answer))
		buf := make([]byte, 16)
		_, _ = c.Read(buf) // until the client closes
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return Target{Addr: netip.MustParseAddrPort(l.Addr().String())}, send
}

// inQueue is how many bytes c's socket holds unread.
func inQueue(t *testing.T, c *fastConn) int {
	rc, err := c.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	return n
}

// connected dials target with a distant deadline and waits for the
// connection; the test's end closes it.
func connected(t *testing.T, ctx context.Context, target Target) *fastConn {
	t.Helper()
	c, err := dialFast(ctx, target, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.waitConnected(); err != nil {
		t.Fatal(err)
	}
	return c
}

// moveDeadline sets the attempt's deadline to t, as if the checker had
// got round to the socket only then.
func moveDeadline(c *fastConn, at time.Time) {
	c.deadline = at
	_ = c.f.SetDeadline(at)
}

// holdStamps holds the kernel's stamping on, as the Manager does, and
// waits until it is on: the kernel turns it on from a work queue, a
// moment after the first socket asks. It waits on a TCP segment, as the
// checks read them: a UDP socket that asks for receive times gets one even
// before the kernel stamps (taken as it reads), so a datagram's stamp
// says nothing, and the tests failed now and then on a segment received
// unstamped.
func holdStamps(t *testing.T) {
	t.Helper()
	h, err := rxstamp.Hold()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	testwait.Eventually(t, 5*time.Second, "the kernel to stamp received TCP segments", func() bool {
		target, send := lateReadServer(t, "x")
		c := connected(t, context.Background(), target)
		close(send)
		testwait.Eventually(t, 5*time.Second, "the segment in the socket", func() bool { return inQueue(t, c) > 0 })
		return !receivedAt(t, c).IsZero()
	})
}

// receivedAt reads what c holds and returns the kernel's receive time of
// it (zero: none).
func receivedAt(t *testing.T, c *fastConn) time.Time {
	t.Helper()
	rc, err := c.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := rc.Control(func(fd uintptr) { _, at = readStamped(int(fd), make([]byte, 16)) }); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestLateReadOfAnAnswerInTime: the answer reached the kernel before the
// deadline; the checker reads only after it. Without the late read, the
// runtime fails the read at the expired deadline without looking.
func TestLateReadOfAnAnswerInTime(t *testing.T) {
	holdStamps(t)
	target, send := lateReadServer(t, "pong")
	c := connected(t, context.Background(), target)
	close(send)
	testwait.Eventually(t, 5*time.Second, "the answer in the socket", func() bool { return inQueue(t, c) > 0 })
	moveDeadline(c, time.Now()) // after the answer arrived
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("Read = %q, %v; want the answer that came in time (%s)", buf[:n], err, peekStamp(c))
	}
	if c.lateReads != 1 {
		t.Fatalf("lateReads = %d, want 1 (%s)", c.lateReads, peekStamp(c))
	}
}

// TestLateAnswerStaysATimeout: an answer the kernel received after the
// deadline is a timeout, however it is read.
func TestLateAnswerStaysATimeout(t *testing.T) {
	holdStamps(t)
	target, send := lateReadServer(t, "pong")
	c := connected(t, context.Background(), target)
	moveDeadline(c, time.Now()) // before the server answers
	close(send)
	testwait.Eventually(t, 5*time.Second, "the answer in the socket", func() bool { return inQueue(t, c) > 0 })
	n, err := c.Read(make([]byte, 16))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v; want a timeout", n, err)
	}
	if c.lateReads != 0 {
		t.Fatalf("lateReads = %d, want 0", c.lateReads)
	}
}

// TestCancelledAttemptReadsNothingLate: a cancelled attempt (its check
// removed) ends at once, whatever the socket holds.
func TestCancelledAttemptReadsNothingLate(t *testing.T) {
	holdStamps(t)
	target, send := lateReadServer(t, "pong")
	ctx, cancel := context.WithCancel(context.Background())
	c := connected(t, ctx, target)
	close(send)
	testwait.Eventually(t, 5*time.Second, "the answer in the socket", func() bool { return inQueue(t, c) > 0 })
	cancel()
	// What the attempt's context.AfterFunc does on a cancel, done here
	// so that the read surely sees it.
	_ = c.f.SetDeadline(time.Unix(1, 0))
	if n, err := c.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want nothing from a cancelled attempt", n, err)
	}
}

// TestHTTPAnswerReadLate runs the whole HTTP judgement on an answer read
// late: it passes, and says it was read late.
func TestHTTPAnswerReadLate(t *testing.T) {
	holdStamps(t)
	target, send := lateReadServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	pr, err := NewProber(Spec{Type: "http", Timeout: time.Second, HTTP: HTTPSpec{Path: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	hp := pr.(*httpProber)
	c, err := dialFast(context.Background(), target, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(hp.request(target))); err != nil {
		t.Fatal(err)
	}
	close(send)
	testwait.Eventually(t, 5*time.Second, "the answer in the socket", func() bool { return inQueue(t, c) > 0 })
	moveDeadline(c, time.Now())
	r := hp.response(c)
	if !r.OK {
		t.Fatalf("result %+v, want a pass", r)
	}
	if c.lateReads == 0 {
		t.Fatal("the answer was not read late: the test did not test the late path")
	}
}

// peekStamp says what the socket holds and the kernel's receive time of
// it against the deadline, for a failure's message.
func peekStamp(c *fastConn) string {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err.Error()
	}
	var out string
	_ = rc.Control(func(fd uintptr) {
		p, oob := make([]byte, 16), make([]byte, rxstamp.OOBSize)
		m, oobn, _, _, err := unix.Recvmsg(int(fd), p, oob, unix.MSG_DONTWAIT|unix.MSG_PEEK)
		at := rxstamp.Time(oob[:oobn])
		out = fmt.Sprintf("late read saw %d bytes received %v; now the socket holds %d bytes %q, %d control bytes, err %v, received %v; deadline %v",
			c.lateSeen.n, c.lateSeen.at, m, p[:max(m, 0)], oobn, err, at, c.deadline)
	})
	return out
}
