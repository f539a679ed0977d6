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
