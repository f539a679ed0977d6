package checks

import (
	"context"
	"net"
	"net/http"
	"net/netip"
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
