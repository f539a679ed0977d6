package checks

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// connect_ip/connect_port replace the real server's address, and source
// picks the local address.
func TestConnectOverrideAndSource(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan string, 1)
	stop := serveConns(ln, func(c net.Conn) { peers <- c.RemoteAddr().(*net.TCPAddr).IP.String(); hold(c) })
	defer stop()
	port := addrOf(t, ln.Addr()).Port()

	c := Check{Server: netip.MustParseAddrPort("127.0.0.9:1"), Spec: Spec{
		Type: TypeTCP, ConnectIP: netip.MustParseAddr("127.0.0.2"), ConnectPort: port,
		Source: netip.MustParseAddr("127.0.0.3"),
	}}
	spec := c.Spec.Normalized()
	target, err := c.target(spec)
	if err != nil {
		t.Fatal(err)
	}
	if target.Addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port) || target.Server != c.Server {
		t.Fatalf("target %+v", target)
	}
	wantUp(t, ProbeOnce(t.Context(), mustProber(t, spec), target, 5*time.Second))
	if got := <-peers; got != "127.0.0.3" {
		t.Fatalf("server saw the check from %s, want 127.0.0.3", got)
	}
}

func TestHTTPOverIPv6(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	hosts := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host }), ErrorLog: quietLog()}
	go srv.Serve(ln)
	defer srv.Close()
	addr := addrOf(t, ln.Addr())
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP}), addr, 5*time.Second))
	if got := <-hosts; got != addr.String() {
		t.Fatalf("Host %q, want %q", got, addr)
	}
}

func TestSpecNormalizedAndValidate(t *testing.T) {
	s := Spec{Type: TypeHTTP}.Normalized()
	if s.Interval != DefaultInterval || s.Timeout != DefaultTimeout || s.Rise != DefaultRise || s.Fall != DefaultFall {
		t.Errorf("defaults: %+v", s)
	}
	if s := (Spec{Type: TypeTCP, Interval: 300 * time.Millisecond}).Normalized(); s.Timeout != 300*time.Millisecond {
		t.Errorf("timeout defaults to at most the interval, got %v", s.Timeout)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	bad := map[string]Spec{
		"unknown type":         {Type: "gopher"},
		"ping with a port":     {Type: TypePing, ConnectPort: 7},
		"file with an address": {Type: TypeFile, File: FileSpec{Path: "/x"}, ConnectIP: netip.MustParseAddr("127.0.0.1")},
		"udp settings on smtp": {Type: TypeSMTP, UDP: UDPSpec{Send: "x"}},
		"negative retries":     {Type: TypeTCP, Retries: -1},
		"settings of another":  {Type: TypeHTTP, TCP: TCPSpec{Send: "x"}},
		"mixed families":       {Type: TypeTCP, Source: netip.MustParseAddr("::1"), ConnectIP: netip.MustParseAddr("127.0.0.1")},
		"empty command":        {Type: TypeExec},
	}
	for name, s := range bad {
		if err := s.Normalized().Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// The identity ignores how defaults are spelled, not what they are.
	a := Check{Server: srvA, Spec: Spec{Type: TypeTCP}}.ID()
	b := Check{Server: srvA, Spec: Spec{Type: TypeTCP, Interval: DefaultInterval, Rise: DefaultRise}}.ID()
	c := Check{Server: srvA, Spec: Spec{Type: TypeTCP, Rise: 5}}.ID()
	if a != b || a == c {
		t.Errorf("identities: %v %v %v", a, b, c)
	}
	if got := a.String(); got != "10.0.0.1:80 tcp connect" {
		t.Errorf("ID.String() = %q", got)
	}
	if got := (Spec{Type: TypeDNS, DNS: DNSSpec{Type: "a", Name: "example.test"}}).Summary(); !strings.Contains(got, "dns/udp A example.test") {
		t.Errorf("Summary() = %q", got)
	}
}
