package main

import (
	"net"
	"testing"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// TestDNSRoundTrip runs the lab's DNS server on loopback and queries it
// with the client's code: the answer is the server's own address.
func TestDNSRoundTrip(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go serveDNS(c, [4]byte{10, 0, 0, 21})
	conn, err := net.Dial("udp4", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := dnsQuery(conn, 7, labplan.DNSName, time.Second)
	if err != nil || got != "10.0.0.21" {
		t.Fatalf("answer %q, %v; want 10.0.0.21", got, err)
	}
	if _, err := dnsAnswer([]byte{1, 2, 3}, [4]byte{}); err == nil {
		t.Error("garbage query answered")
	}
}

func TestServeUnknownHost(t *testing.T) {
	hs := &httpServers{servers: map[string]*httpServer{}}
	if err := hs.set("nobody", labplan.ServeDown, 0); err == nil {
		t.Error("serve step on a host without a server accepted")
	}
}

// The DNS prober keeps one socket: an answer to an earlier query that
// timed out is skipped, the matching one is taken, and a port nobody
// listens on fails the query at once (ICMP port unreachable).
func TestDNSProbeOneSocket(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Answer the first query twice, late: its second answer arrives while
	// the prober waits for the answer to its second query.
	go func() {
		buf := make([]byte, 1500)
		var first []byte
		var from net.Addr
		for i := 0; ; i++ {
			n, addr, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			a, err := dnsAnswer(buf[:n], [4]byte{10, 0, 0, 21})
			if err != nil {
				continue
			}
			if i == 0 {
				first, from = a, addr // unanswered for now: the probe times out
				continue
			}
			_, _ = c.WriteTo(first, from)
			_, _ = c.WriteTo(a, addr)
		}
	}()
	probe, cleanup, err := dnsProbe(c.LocalAddr().String())()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if s := probe(50 * time.Millisecond); s.OK {
		t.Fatalf("first query answered: %+v", s)
	}
	if s := probe(time.Second); !s.OK || s.From != labplan.RS1 {
		t.Fatalf("second query: %+v, want rs1's answer", s)
	}

	closed, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.LocalAddr().String()
	closed.Close()
	probe, cleanup, err = dnsProbe(addr)()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	start := time.Now()
	if s := probe(5 * time.Second); s.OK || time.Since(start) > 2*time.Second {
		t.Fatalf("query to a closed port: %+v after %v, want a prompt failure", s, time.Since(start))
	}
}
