package checks

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopManager is a Manager with its event loop, whose results go to the
// returned channel.
func loopManager(t *testing.T, o Options) (*Manager, <-chan Result) {
	t.Helper()
	results := make(chan Result, 4096)
	o.EventLoop = true
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.StartSpread == 0 {
		o.StartSpread = time.Millisecond
	}
	o.OnResult = func(_ ID, r Result) { results <- r }
	m := NewManager(o)
	t.Cleanup(m.Close)
	if m.loop == nil {
		t.Fatal("the Manager has no event loop")
	}
	return m, results
}

// loopProbe runs one attempt of s against addr in a Manager's event loop,
// and fails the test if the check would not run there.
func loopProbe(t *testing.T, s Spec, addr netip.AddrPort, timeout time.Duration) Result {
	t.Helper()
	m, results := loopManager(t, Options{})
	s.Interval, s.Timeout = time.Hour, timeout
	if !addInLoop(t, m, addr, s) {
		t.Fatalf("%s runs on a goroutine, not in the loop", s.Summary())
	}
	select {
	case r := <-results:
		return r
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("no result from the loop within %v", timeout+10*time.Second)
		return Result{}
	}
}

// addInLoop adds a check of s against addr to m and reports whether the
// loop runs it.
func addInLoop(t *testing.T, m *Manager, addr netip.AddrPort, s Spec) bool {
	t.Helper()
	id, err := m.Add(Check{Server: addr, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[id].inLoop
}

// sameResult fails the test unless the loop's result says what the
// goroutine's does.
func sameResult(t *testing.T, loop, goroutine Result) {
	t.Helper()
	if loop.OK != goroutine.OK || loop.Reason != goroutine.Reason || loop.TimedOut != goroutine.TimedOut ||
		loop.Refused != goroutine.Refused || loop.Closed != goroutine.Closed {
		t.Errorf("the loop's result differs from a goroutine's:\nloop:      %+v\ngoroutine: %+v", loop, goroutine)
	}
}

// TestLoopAsGoroutine: every check the loop runs gives what the same check
// on its own goroutine gives, against well and badly behaved servers.
func TestLoopAsGoroutine(t *testing.T) {
	const short, long = 300 * time.Millisecond, 5 * time.Second
	status := func(code int) func(net.Conn) {
		return func(c net.Conn) {
			readRequest(c)
			fmt.Fprintf(c, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", code)
			hold(c)
		}
	}
	http := Spec{Type: TypeHTTP}
	tests := []struct {
		name    string
		spec    Spec
		handle  func(net.Conn)
		timeout bool
	}{
		{"HTTP 200, held open", http, status(200), false},
		{"HTTP 503", http, status(503), false},
		{"HTTP 301 accepted", Spec{Type: TypeHTTP, HTTP: HTTPSpec{Status: []string{"301"}}}, status(301), false},
		{"HTTP status and a header, held open", http, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 204 No Content\r\nA: b\r\n\r\n"))
			hold(c)
		}, false},
		{"HTTP bare newlines", http, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.0 200 OK\nServer: old\n\n"))
			hold(c)
		}, false},
		{"HTTP HEAD", Spec{Type: TypeHTTP, HTTP: HTTPSpec{Method: "HEAD"}}, status(200), false},
		{"HTTP garbage", http, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("\x00\xff\x13garbage here\r\n\r\n"))
		}, false},
		{"HTTP endless header", http, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			writeForever(c, []byte("X-Filler: "+strings.Repeat("f", 1000)+"\r\n"))
		}, false},
		{"HTTP reset after request", http, func(c net.Conn) {
			readRequest(c)
			c.(*net.TCPConn).SetLinger(0)
		}, false},
		{"HTTP close without answer", http, readRequest, false},
		{"HTTP close mid status line", http, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 20"))
		}, false},
		{"HTTP slow status line", http, func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 200 OK ")
		}, true},
		{"HTTP silent", http, hold, true},
		{"TCP connect", Spec{Type: TypeTCP}, hold, false},
		{"TCP send only", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "QUIT\r\n"}}, hold, false},
		{"TCP banner", Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "220 "}}, func(c net.Conn) {
			c.Write([]byte("220 ready\r\n"))
			hold(c)
		}, false},
		{"TCP exchange", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", ExpectRegex: `server=\d+`}}, func(c net.Conn) {
			c.Read(make([]byte, 16))
			c.Write([]byte("+PONG server=7\r\n"))
			hold(c)
		}, false},
		{"TCP reply then close", Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "PONG"}}, func(c net.Conn) {
			c.Write([]byte("PING"))
		}, false},
		{"TCP expect, reset", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", Expect: "PONG"}}, func(c net.Conn) {
			c.Read(make([]byte, 16))
			c.(*net.TCPConn).SetLinger(0)
		}, false},
		{"TCP expect, endless reply", Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "PONG"}}, func(c net.Conn) {
			writeForever(c, bytes.Repeat([]byte("P"), 32<<10))
		}, false},
		{"TCP expect, slow reply", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", Expect: "PONG"}}, func(c net.Conn) {
			trickle(c, "PANG")
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			ln := listen(t)
			stop := serveConns(ln, tc.handle)
			defer stop()
			addr := addrOf(t, ln.Addr())
			timeout := long
			if tc.timeout {
				timeout = short
			}
			spec := tc.spec
			spec.Interval, spec.Timeout = time.Hour, timeout
			spec = spec.Normalized()
			want := probe(t, mustProber(t, spec), addr, timeout)
			got := loopProbe(t, spec, addr, timeout)
			sameResult(t, got, want)
			if got.TimedOut != tc.timeout {
				t.Errorf("TimedOut = %v, want %v (%s)", got.TimedOut, tc.timeout, got.Reason)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		ln := listen(t)
		addr := addrOf(t, ln.Addr())
		ln.Close()
		for _, s := range []Spec{{Type: TypeHTTP}, {Type: TypeTCP}, {Type: TypeTCP, TCP: TCPSpec{Send: "x"}}} {
			got := loopProbe(t, s, addr, long)
			sameResult(t, got, probe(t, mustProber(t, s.Normalized()), addr, long))
			if !got.Refused {
				t.Errorf("%s: a refused connection is not marked Refused: %+v", s.Summary(), got)
			}
		}
	})
}

// TestLoopJudgesReplyInPieces: the loop's judges wait while a reply
// comes a byte at a time, and judge it once it is whole, as the
// goroutine's reader does. Fed by hand: no network could promise that each
// byte arrives in a read of its own.
func TestLoopJudgesReplyInPieces(t *testing.T) {
	target := Target{Addr: netip.MustParseAddrPort("192.0.2.1:80")}
	cases := []struct {
		spec  Spec
		reply string
		want  string
	}{
		{Spec{Type: TypeHTTP}, "HTTP/1.1 204 No Content\r\nA: b\r\n\r\n", "HTTP 204"},
		{Spec{Type: TypeHTTP}, "HTTP/1.0 503 Busy\nServer: old\n\n", "HTTP status 503, want 200-299"},
		{Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", ExpectRegex: `server=\d+`}}, "+PONG server=7\r\n", "reply matches after 14 bytes"},
		{Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "220 "}}, "220 ready\r\n", "reply matches after 4 bytes"},
	}
	for _, c := range cases {
		plan, ok := mustProber(t, c.spec).(loopProber).loopPlan(target)
		if !ok || plan.judge == nil {
			t.Fatalf("%s: no loop plan with a judge", c.spec.Summary())
		}
		var buf []byte
		var got Result
		done := false
		for i := 0; i < len(c.reply) && !done; i++ {
			prev := len(buf)
			buf = append(buf, c.reply[i])
			got, done = plan.judge(buf, prev, nil)
			if done && i < len(c.reply)-1 && !strings.HasPrefix(c.want, "reply matches") {
				t.Errorf("%s: judged after %d of %d bytes: %+v", c.spec.Summary(), i+1, len(c.reply), got)
			}
		}
		if !done || got.Reason != c.want {
			t.Errorf("%s: after %q: done %v, %+v; want %q", c.spec.Summary(), buf, done, got, c.want)
		}
	}
}

// TestLoopRunsOnlyWhatItCan: checks that need a goroutine (TLS, a body to
// match) get one in a Manager with a loop, and still work.
func TestLoopRunsOnlyWhatItCan(t *testing.T) {
	noLeaks(t)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "all good") })
	m, results := loopManager(t, Options{})
	cases := []struct {
		spec   Spec
		inLoop bool
	}{
		{Spec{Type: TypeHTTP}, true},
		{Spec{Type: TypeTCP, TCP: TCPSpec{Send: "GET / HTTP/1.0\r\n\r\n", Expect: "all good"}}, true},
		{Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: "good"}}, false},
		{Spec{Type: TypeHTTP, HTTP: HTTPSpec{Digest: "0123456789abcdef0123456789abcdef"}}, false},
		{Spec{Type: TypeHTTPS}, false},
	}
	for _, c := range cases {
		s := c.spec
		s.Interval = time.Hour
		if inLoop := addInLoop(t, m, addr, s); inLoop != c.inLoop {
			t.Errorf("%s: in the loop %v, want %v", s.Summary(), inLoop, c.inLoop)
		}
	}
	ok, bad := 0, 0
	for range cases {
		select {
		case r := <-results:
			if r.OK {
				ok++
			} else {
				bad++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d results within 10s", ok+bad, len(cases))
		}
	}
	// All but the digest (of another body) and TLS (to a plain server)
	// are up: the goroutine's checks ran, and judged.
	if ok != len(cases)-2 {
		t.Errorf("%d up, %d down; want %d up", ok, bad, len(cases)-2)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestLoopManyChecks: many checks at once, beyond MaxInFlight, each get
// their rounds; a removed check's attempt under way and the loop itself
// leave no descriptor behind once the Manager is closed.
func TestLoopManyChecks(t *testing.T) {
	noLeaks(t)
	fds := openFDs(t)
	var mu sync.Mutex
	served := 0
	ln := listen(t)
	stopSrv := serveConns(ln, func(c net.Conn) {
		readRequest(c)
		mu.Lock()
		served++
		mu.Unlock()
		c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	})
	addr := addrOf(t, ln.Addr())
	// A silent server: its attempts are still under way at Close.
	silent := listen(t)
	stopSilent := serveConns(silent, hold)
	m, results := loopManager(t, Options{MaxInFlight: 8, StartSpread: 20 * time.Millisecond})
	const n = 200
	for i := range n {
		// Distinct checks of one server: the host header tells them apart.
		s := Spec{Type: TypeHTTP, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second, HTTP: HTTPSpec{Host: fmt.Sprintf("h%d", i)}}
		if _, err := m.Add(Check{Server: addr, Spec: s}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := m.Add(Check{Server: addrOf(t, silent.Addr()), Spec: Spec{Type: TypeHTTP, Interval: time.Hour, Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for got := 0; got < 3*n; {
		select {
		case r := <-results:
			if !r.OK {
				t.Fatalf("a check failed: %+v", r)
			}
			got++
		case <-deadline:
			t.Fatalf("%d results of %d within 20s", got, 3*n)
		}
	}
	m.Remove(id)
	m.Close()
	stopSrv()
	stopSilent()
	if got := openFDs(t); got != fds {
		t.Errorf("%d descriptors open before, %d after the Manager closed", fds, got)
	}
}

// TestLoopLateReadKeepsOnlyWhatCameInTime: a loop that gets to a socket
// after the attempt's deadline counts the answer the kernel received
// before the deadline, and no answer received after it.
func TestLoopLateReadKeepsOnlyWhatCameInTime(t *testing.T) {
	noLeaks(t)
	holdStamps(t) // the kernel turns stamping on a moment after it is asked
	ln := listen(t)
	stop := serveConns(ln, func(c net.Conn) {
		readRequest(c)
		c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
		hold(c)
	})
	defer stop()
	addr := addrOf(t, ln.Addr())
	for _, inTime := range []bool{true, false} {
		t.Run(fmt.Sprint("in time ", inTime), func(t *testing.T) {
			// A Manager without a loop of its own: the test plays the
			// loop, on its own goroutine. The Manager holds the kernel's
			// receive stamps.
			results := make(chan Result, 4)
			m := NewManager(Options{OnResult: func(_ ID, r Result) { results <- r },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer m.Close()
			e, err := m.prepare(Check{Server: addr, Spec: Spec{Type: TypeHTTP, Interval: time.Hour, Timeout: time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			m.start(e)
			m.mu.Unlock()
			e.stop() // the test runs the attempt, not the timer
			e.mu.Lock()
			e.stopped = false
			e.mu.Unlock()
			l := &loop{m: m, running: map[int32]*loopAttempt{}, readBuf: make([]byte, 4<<10), base: time.Now()}
			plan, _ := e.prober.(loopProber).loopPlan(e.target)
			b, _ := m.begin(e, time.Now())
			fd, _, err := connectNonblocking(e.target)
			if err != nil {
				t.Fatal(err)
			}
			a := &loopAttempt{e: e, b: b, plan: plan, fd: fd, deadline: time.Now().Add(time.Hour)}
			l.running[int32(fd)] = a
			l.deadlines = append(l.deadlines, a)
			waitFD(t, fd, unix.POLLOUT)
			// The request goes out here rather than through the loop,
			// whose read right after could see the answer in time.
			if _, err := unix.Write(fd, plan.send); err != nil {
				t.Fatal(err)
			}
			a.sent, a.stage = len(plan.send), stageRead
			waitFD(t, fd, unix.POLLIN)
			if inTime {
				a.deadline = time.Now() // the answer is older than this
			} else {
				a.deadline = b.start // the answer came after this
			}
			l.timeout(a, time.Now().Add(time.Second))
			select {
			case r := <-results:
				if inTime && (!r.OK || !r.ReadLate) {
					t.Errorf("an answer received in time and read late: %+v, want up and ReadLate", r)
				}
				if !inTime && (r.OK || !r.TimedOut) {
					t.Errorf("an answer received after the deadline: %+v, want a timeout", r)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no result")
			}
		})
	}
}

// waitFD waits for events on fd, for up to 10 s.
func waitFD(t *testing.T, fd int, events int16) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := unix.Poll(pfd, 10_000)
	if err != nil || n != 1 {
		t.Fatalf("poll: %d, %v", n, err)
	}
}
