package checks

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkHTTPProbe is one HTTP check against a Go server on loopback
// (both sides in this process): connect, GET, status line, reset. For the
// sustained rate of many checks, see cmd/checkbench.
func BenchmarkHTTPProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ErrorLog: quietLog()}
	go srv.Serve(ln)
	defer srv.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	p, err := NewProber(Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/health"}})
	if err != nil {
		b.Fatal(err)
	}
	t := Target{Addr: addr, Server: addr}
	b.ReportAllocs()
	for b.Loop() {
		if r := ProbeOnce(context.Background(), p, t, time.Second); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}

// The new checks, each against a server in this process on loopback.

func benchProbe(b *testing.B, s Spec, addr netip.AddrPort) {
	b.Helper()
	p, err := NewProber(s)
	if err != nil {
		b.Fatal(err)
	}
	t := Target{Addr: addr, Server: addr}
	b.ReportAllocs()
	for b.Loop() {
		if r := ProbeOnce(context.Background(), p, t, time.Second); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkUDPProbe: a datagram out, its echo back, matched.
func BenchmarkUDPProbe(b *testing.B) {
	addr := udpServer(b, "udp4", echo)
	benchProbe(b, Spec{Type: TypeUDP, UDP: UDPSpec{Send: "ping", Expect: "ping"}}, addr)
}

// BenchmarkPingProbe: one ICMP echo to 127.0.0.1, with the socket this
// host allows (raw where ping_group_range excludes root).
func BenchmarkPingProbe(b *testing.B) {
	benchProbe(b, Spec{Type: TypePing}, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0))
}

// BenchmarkSMTPProbe: connect, greeting, HELO, QUIT.
func BenchmarkSMTPProbe(b *testing.B) {
	addr := startSMTP(b, &smtpServer{greeting: "220 mail.test\r\n", heloCode: "250", quitAns: true})
	benchProbe(b, Spec{Type: TypeSMTP}, addr)
}

// BenchmarkHTTPDigestProbe: a GET whose 4 KiB body is read and digested.
func BenchmarkHTTPDigestProbe(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 256)
	ln := listen(b)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), ErrorLog: quietLog()}
	go srv.Serve(ln)
	defer srv.Close()
	sum := md5.Sum(body)
	benchProbe(b, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Digest: hex.EncodeToString(sum[:])}}, addrOf(b, ln.Addr()))
}

// BenchmarkFileProbe: open, read and judge a small file.
func BenchmarkFileProbe(b *testing.B) {
	path := filepath.Join(b.TempDir(), "weight")
	if err := os.WriteFile(path, []byte("5\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	benchProbe(b, Spec{Type: TypeFile, File: FileSpec{Path: path, Weight: 2}}, netip.AddrPort{})
}
