package checks

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Real servers that misbehave on purpose. Each must give a clean DOWN
// within the timeout, leave no goroutine behind and read a bounded amount.

func readRequest(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// writeForever writes chunk until the peer goes away.
func writeForever(c net.Conn, chunk []byte) {
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// trickle writes s over and over, one byte at a time, slowly.
func trickle(c net.Conn, s string) {
	for {
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// hold reads whatever comes and never answers.
func hold(c net.Conn) { io.Copy(io.Discard, c) }

func TestMisbehavingServers(t *testing.T) {
	// Cases that must time out get a short timeout; the others a long one
	// they must not need.
	const short, long = 400 * time.Millisecond, 5 * time.Second
	http := func(body string) Spec { return Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: body}} }
	smtp := Spec{Type: TypeSMTP}
	smtpTLS := Spec{Type: TypeSMTP, SMTP: SMTPSpec{StartTLS: true}}
	tests := []struct {
		name    string
		spec    Spec
		handle  func(net.Conn)
		reason  string
		timeout bool
	}{
		{"garbage", http(""), func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("\x00\xff\x13garbage here\r\n\r\n"))
		}, "read response: malformed HTTP", false},
		{"endless body", http("ok"), func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
			writeForever(c, bytes.Repeat([]byte("a"), 32<<10))
		}, "body does not match /ok/", false},
		{"endless chunked body", http("ok"), func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			writeForever(c, bytes.Repeat([]byte("10\r\naaaaaaaaaaaaaaaa\r\n"), 1<<10))
		}, "body does not match /ok/", false},
		{"endless body, digest", Spec{Type: TypeHTTP, HTTP: HTTPSpec{Digest: "9b3a0c85a887a256d6939da88aabd8cd"}}, func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
			writeForever(c, bytes.Repeat([]byte("a"), 32<<10))
		}, "body longer than max_bytes 65536: no digest", false},
		{"endless header", http(""), func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			writeForever(c, []byte("X-Filler: "+strings.Repeat("f", 1000)+"\r\n"))
		}, "response header longer than 65536 bytes", false},
		{"reset after request", http(""), func(c net.Conn) {
			readRequest(c)
			c.(*net.TCPConn).SetLinger(0)
		}, "read response: connection reset by peer", false},
		{"close without answer", http(""), func(c net.Conn) {
			readRequest(c)
		}, "read response: connection closed by server", false},
		{"slow status line", http(""), func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 200 OK ")
		}, "timeout after 400ms (read response)", true},
		{"slow body", http("never"), func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
			trickle(c, "abc")
		}, "timeout after 400ms (read body)", true},
		{"silent", http(""), hold, "timeout after 400ms (read response)", true},
		{"plain text to TLS", Spec{Type: TypeHTTPS}, func(c net.Conn) {
			c.Read(make([]byte, 512))
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		}, "TLS handshake: tls: first record does not look like a TLS handshake", false},
		{"TLS silent", Spec{Type: TypeHTTPS}, hold, "timeout after 400ms (TLS handshake)", true},
		{"TCP expect, slow reply", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", Expect: "PONG"}}, func(c net.Conn) {
			trickle(c, "PANG")
		}, "timeout after 400ms (wait for reply)", true},
		{"TCP expect, endless reply", Spec{Type: TypeTCP, TCP: TCPSpec{Expect: "PONG"}}, func(c net.Conn) {
			writeForever(c, bytes.Repeat([]byte("P"), 32<<10))
		}, `reply (65536 bytes) does not contain "PONG"`, false},
		{"TCP regexp, endless reply", Spec{Type: TypeTCP, TCP: TCPSpec{ExpectRegex: "^PONG"}}, func(c net.Conn) {
			writeForever(c, []byte("PPPPPPPPPPPPPPPP"))
		}, "reply (65536 bytes) does not match /^PONG/", false},
		{"TCP expect, reset", Spec{Type: TypeTCP, TCP: TCPSpec{Send: "PING\r\n", Expect: "PONG"}}, func(c net.Conn) {
			c.Read(make([]byte, 16))
			c.(*net.TCPConn).SetLinger(0)
		}, "wait for reply: connection reset by peer", false},
		{"DNS over TCP, garbage", Spec{Type: TypeDNS, DNS: DNSSpec{Protocol: "tcp"}}, func(c net.Conn) {
			c.Read(make([]byte, 512))
			writeForever(c, []byte("garbage!"))
		}, "DNS reply does not carry the query's ID", false},
		{"DNS over TCP, silent", Spec{Type: TypeDNS, DNS: DNSSpec{Protocol: "tcp"}}, hold,
			"timeout after 400ms (wait for reply)", true},
		{"SMTP silent", smtp, hold, "timeout after 400ms (read greeting reply)", true},
		{"SMTP slow greeting", smtp, func(c net.Conn) { trickle(c, "220 slow ") }, "timeout after 400ms (read greeting reply)", true},
		{"SMTP garbage", smtp, func(c net.Conn) {
			c.Write([]byte("\x00\xff\x13garbage here\r\n"))
			hold(c)
		}, "read greeting reply: malformed SMTP reply", false},
		{"SMTP endless line", smtp, func(c net.Conn) {
			writeForever(c, bytes.Repeat([]byte("2"), 32<<10))
		}, "read greeting reply: SMTP reply line longer than 2048 bytes", false},
		{"SMTP endless reply", smtp, func(c net.Conn) {
			writeForever(c, []byte("220-more to come\r\n"))
		}, "read greeting reply: SMTP reply of more than 64 lines", false},
		{"SMTP silent after HELO", smtp, func(c net.Conn) {
			c.Write([]byte("220 ok\r\n"))
			hold(c)
		}, "timeout after 400ms (read HELO reply)", true},
		{"SMTP reset after HELO", smtp, func(c net.Conn) {
			c.Write([]byte("220 ok\r\n"))
			c.Read(make([]byte, 64))
			c.(*net.TCPConn).SetLinger(0)
		}, "read HELO reply: connection reset by peer", false},
		{"SMTP plain text after STARTTLS", smtpTLS, func(c net.Conn) {
			br := bufio.NewReader(c)
			c.Write([]byte("220 ok\r\n"))
			br.ReadString('\n')
			c.Write([]byte("250-hi\r\n250 STARTTLS\r\n"))
			br.ReadString('\n')
			c.Write([]byte("220 go ahead\r\n"))
			br.ReadString('\n')
			c.Write([]byte("554 no TLS after all\r\n"))
			hold(c)
		}, "TLS handshake: tls: first record does not look like a TLS handshake", false},
		{"SMTP data after the STARTTLS reply", smtpTLS, func(c net.Conn) {
			br := bufio.NewReader(c)
			c.Write([]byte("220 ok\r\n"))
			br.ReadString('\n')
			c.Write([]byte("250-hi\r\n250 STARTTLS\r\n"))
			br.ReadString('\n')
			c.Write([]byte("220 go ahead\r\n250 injected\r\n"))
			hold(c)
		}, "STARTTLS: data after the 220 reply", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			ln := listen(t)
			stop := serveConns(ln, tc.handle)
			defer stop()
			p := mustProber(t, tc.spec)

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			timeout := long
			if tc.timeout {
				timeout = short
			}
			r := probe(t, p, addrOf(t, ln.Addr()), timeout)
			took := time.Since(start)
			runtime.ReadMemStats(&after)

			wantDown(t, r, tc.reason)
			if r.TimedOut != tc.timeout {
				t.Errorf("TimedOut = %v, want %v", r.TimedOut, tc.timeout)
			}
			if tc.timeout && took > timeout+3*time.Second { // slack for a busy machine, still short of long
				t.Errorf("took %v with a %v timeout", took, timeout)
			}
			// The whole process allocated little while the server offered
			// an unbounded stream: reads are capped.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes during one probe", alloc)
			}
		})
	}
}
