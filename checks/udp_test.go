package checks

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpServer answers each datagram on network's loopback with what handle
// returns for it (nothing for nil), after delay, until the test ends.
func udpServer(t testing.TB, network string, handle func([]byte) []byte) netip.AddrPort {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "udp6" {
		addr = "[::1]:0"
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := handle(bytes.Clone(buf[:n])); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return addrOf(t, pc.LocalAddr())
}

func echo(b []byte) []byte { return b }

// closedUDPPort returns a loopback port nothing listens on.
func closedUDPPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "udp6" {
		addr = "[::1]:0"
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ap := addrOf(t, pc.LocalAddr())
	pc.Close()
	return ap
}

func TestUDPEcho(t *testing.T) {
	noLeaks(t)
	for _, network := range []string{"udp4", "udp6"} {
		addr := udpServer(t, network, echo)
		for name, s := range map[string]UDPSpec{
			"require reply":    {Send: "ping", RequireReply: true},
			"expect":           {Send: "status? ok", Expect: "ok"},
			"expect_regex":     {Send: "v=12", ExpectRegex: `^v=\d+$`},
			"expect_hex":       {SendHex: "de ad be ef 01", ExpectHex: "deadxxef"},
			"lone hex digit":   {SendHex: "0102 3", ExpectHex: "01 02 03"},
			"length bounds":    {Send: "12345", MinReplyLength: 5, MaxReplyLength: 5},
			"no reply needed":  {Send: "hello"},
			"empty datagram":   {RequireReply: true},
			"binary text send": {Send: "\x00\x01\xff", ExpectHex: "0001ff"},
		} {
			r := probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: s}), addr, 5*time.Second)
			if !r.OK {
				t.Errorf("%s %s: down: %s", network, name, r.Reason)
			}
			// An echo comes back at once: no check waits for its timeout.
			if r.Latency > 2*time.Second {
				t.Errorf("%s %s: took %v", network, name, r.Latency)
			}
		}
	}
}

func TestUDPWrongReply(t *testing.T) {
	noLeaks(t)
	addr := udpServer(t, "udp4", func(b []byte) []byte { return []byte("ERR unknown command") })
	for _, c := range []struct {
		spec   UDPSpec
		reason string
	}{
		{UDPSpec{Send: "x", Expect: "OK"}, `reply does not contain "OK": "ERR unknown command"`},
		{UDPSpec{Send: "x", ExpectRegex: "^OK"}, "reply does not match /^OK/"},
		{UDPSpec{Send: "x", ExpectHex: "4552 53"}, "reply differs from expect_hex at byte 2"},
		{UDPSpec{Send: "x", ExpectHex: strings.Repeat("45", 40)}, "reply of 19 bytes is shorter than expect_hex (40)"},
		{UDPSpec{Send: "x", MaxReplyLength: 10}, "reply of 11+ bytes, want at most 10"},
		{UDPSpec{Send: "x", MinReplyLength: 100}, "reply of 19 bytes, want at least 100"},
	} {
		r := probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: c.spec}), addr, 5*time.Second)
		wantDown(t, r, c.reason)
		if r.TimedOut {
			t.Errorf("%+v: a wrong reply is not a timeout", c.spec)
		}
	}
	// Without an expectation any reply will do.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", RequireReply: true}}), addr, 5*time.Second))
}

// A closed port answers with ICMP port unreachable: the connected socket
// reports it as a refused connection, long before the timeout, whether a
// reply was required or not.
func TestUDPRefused(t *testing.T) {
	noLeaks(t)
	for _, network := range []string{"udp4", "udp6"} {
		addr := closedUDPPort(t, network)
		for _, s := range []UDPSpec{{Send: "x"}, {Send: "x", RequireReply: true}} {
			start := time.Now()
			r := probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: s}), addr, 5*time.Second)
			wantDown(t, r, "wait for reply: connection refused")
			if !r.Refused || r.TimedOut {
				t.Errorf("%s %+v: Refused %v, TimedOut %v; want refused, not timed out", network, s, r.Refused, r.TimedOut)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s %+v: took %v to see the port unreachable", network, s, took)
			}
		}
	}
}

// A server that reads and never answers: down at the timeout when a reply
// is required, up at the timeout when not (no ICMP error came).
func TestUDPSilent(t *testing.T) {
	noLeaks(t)
	addr := udpServer(t, "udp4", func([]byte) []byte { return nil })
	const timeout = 300 * time.Millisecond
	r := probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", RequireReply: true}}), addr, timeout)
	wantDown(t, r, "timeout after 300ms (wait for reply)")
	r = probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x"}}), addr, timeout)
	wantUp(t, r)
	if r.Reason != "no reply, no ICMP error" || r.Latency < timeout {
		t.Errorf("got %q after %v, want it to wait out the %v timeout", r.Reason, r.Latency, timeout)
	}
}

func TestUDPSlowReply(t *testing.T) {
	noLeaks(t)
	// The first reply comes only after the prober gave up on it.
	gaveUp := make(chan struct{})
	release := sync.OnceFunc(func() { close(gaveUp) })
	addr := udpServer(t, "udp4", func(b []byte) []byte { <-gaveUp; return b })
	t.Cleanup(release) // runs before udpServer's, which waits for the server
	p := mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", RequireReply: true}})
	wantDown(t, probe(t, p, addr, 200*time.Millisecond), "timeout after 200ms (wait for reply)")
	release()
	wantUp(t, probe(t, p, addr, 5*time.Second))
}

// Garbage: a reply of random binary bytes, or a huge datagram, is judged
// like any other reply, with a bounded read.
func TestUDPGarbage(t *testing.T) {
	noLeaks(t)
	big := bytes.Repeat([]byte{0xff, 0x00, 0x13}, 20000)
	addr := udpServer(t, "udp4", func([]byte) []byte { return big })
	r := probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", Expect: "OK"}}), addr, 5*time.Second)
	wantDown(t, r, `reply does not contain "OK": "\xff\x00\x13`)
	r = probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", MaxReplyLength: 1000}}), addr, 5*time.Second)
	wantDown(t, r, "reply of 1001+ bytes, want at most 1000")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "x", ExpectHex: "ff0013 ff0013"}}), addr, 5*time.Second))
}

func TestParseHex(t *testing.T) {
	// keepalived.conf(5)'s own example.
	data, mask, err := parseHex("Ab12f 3 456 546443123", false)
	want := []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}
	if err != nil || !bytes.Equal(data, want) {
		t.Fatalf("got % x, %v; want % x", data, err, want)
	}
	if !bytes.Equal(mask, bytes.Repeat([]byte{0xff}, len(want))) {
		t.Errorf("mask % x", mask)
	}
	data, mask, err = parseHex("aX x1 x", true)
	if err != nil || !bytes.Equal(data, []byte{0xa0, 0x01, 0x00}) || !bytes.Equal(mask, []byte{0xf0, 0x0f, 0xf0}) {
		t.Errorf("wildcards: % x mask % x, %v", data, mask, err)
	}
	for _, bad := range []string{"", "  ", "0g", "x1"} {
		if _, _, err := parseHex(bad, false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestUDPSpecErrors(t *testing.T) {
	for _, s := range []UDPSpec{
		{Send: "a", SendHex: "61"},
		{SendHex: "zz"},
		{Expect: "a", ExpectRegex: "b"},
		{Expect: "a", ExpectHex: "61"},
		{ExpectHex: "6q"},
		{ExpectRegex: "("},
		{MinReplyLength: 10, MaxReplyLength: 5},
		{MaxReplyLength: 70000},
		{MinReplyLength: -1},
		{ExpectHex: "010203", MaxReplyLength: 2},
		{Send: strings.Repeat("x", 70000)},
	} {
		if _, err := NewProber(Spec{Type: TypeUDP, UDP: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

// connect_ip, connect_port and source apply to a udp check as to tcp.
func TestUDPConnectOverrideAndSource(t *testing.T) {
	noLeaks(t)
	from := make(chan string, 1)
	pc, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		n, a, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		from <- a.(*net.UDPAddr).IP.String()
		pc.WriteTo(buf[:n], a)
	}()
	c := Check{Server: netip.MustParseAddrPort("127.0.0.9:1"), Spec: Spec{
		Type: TypeUDP, ConnectIP: netip.MustParseAddr("127.0.0.2"), ConnectPort: addrOf(t, pc.LocalAddr()).Port(),
		Source: netip.MustParseAddr("127.0.0.3"), UDP: UDPSpec{Send: "hi", Expect: "hi"},
	}}
	spec := c.Spec.Normalized()
	target, err := c.target(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantUp(t, ProbeOnce(t.Context(), mustProber(t, spec), target, 5*time.Second))
	if got := <-from; got != "127.0.0.3" {
		t.Fatalf("server saw the check from %s, want 127.0.0.3", got)
	}
}
