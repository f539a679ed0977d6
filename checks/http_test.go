package checks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpServer serves h on loopback until the test ends.
func httpServer(t *testing.T, h http.HandlerFunc) netip.AddrPort {
	t.Helper()
	ln := listen(t)
	srv := &http.Server{Handler: h, ErrorLog: quietLog()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return addrOf(t, ln.Addr())
}

// selfSigned makes a certificate for "check.test" and 127.0.0.1 and writes
// it as a PEM CA file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "check.test"},
		DNSNames:              []string{"check.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

func TestHTTPStatus(t *testing.T) {
	noLeaks(t)
	var mu sync.Mutex
	var gotHost, gotPath string
	status := 200
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotHost, gotPath = r.Host, r.URL.Path
		w.WriteHeader(status)
		fmt.Fprint(w, "all ok\n")
	})
	set := func(s int) { mu.Lock(); status = s; mu.Unlock() }

	p := mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/health", Host: "www.example"}})
	wantUp(t, probe(t, p, addr, 5*time.Second))
	mu.Lock()
	if gotHost != "www.example" || gotPath != "/health" {
		t.Errorf("server saw Host %q path %q", gotHost, gotPath)
	}
	mu.Unlock()

	set(503)
	wantDown(t, probe(t, p, addr, 5*time.Second), "HTTP status 503, want 200-299")

	p = mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Status: []string{"200", "301-302"}}})
	set(302)
	wantUp(t, probe(t, p, addr, 5*time.Second))
	set(204)
	wantDown(t, probe(t, p, addr, 5*time.Second), "HTTP status 204, want 200,301-302")
	set(200)
	wantUp(t, probe(t, p, addr, 5*time.Second))
	mu.Lock()
	if gotHost != addr.String() {
		t.Errorf("default Host %q, want the connect address %s", gotHost, addr)
	}
	mu.Unlock()
}

func TestHTTPBody(t *testing.T) {
	noLeaks(t)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			// The marker comes after 128 KiB, beyond the default cap.
			w.Write([]byte(strings.Repeat("x", 128<<10) + "MARKER"))
			return
		}
		fmt.Fprint(w, "status: ok\n")
	})
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: `status: (ok|fine)`}}), addr, 5*time.Second))
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: `ok$`}}), addr, 5*time.Second),
		"body does not match /ok$/")

	// Reading stops at the cap and the regexp sees only what was read.
	r := probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/big", Body: "MARKER"}}), addr, 5*time.Second)
	wantDown(t, r, "body does not match /MARKER/")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/big", Body: "MARKER", MaxBytes: 256 << 10}}), addr, 5*time.Second))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/big", Body: "^x{100}"}}), addr, 5*time.Second))
}

func TestHTTPConnectRefused(t *testing.T) {
	ln := listen(t)
	addr := addrOf(t, ln.Addr())
	ln.Close()
	r := probe(t, mustProber(t, Spec{Type: TypeHTTP}), addr, 5*time.Second)
	wantDown(t, r, "connect: connection refused")
	if !r.Refused {
		t.Error("a refused connection is not marked Refused")
	}
}

func TestHTTPRequestHost(t *testing.T) {
	p, _ := newHTTPProber(HTTPSpec{}, false)
	for addr, want := range map[string]string{
		"10.0.0.1:80":      "Host: 10.0.0.1\r\n",
		"10.0.0.1:8080":    "Host: 10.0.0.1:8080\r\n",
		"[2001:db8::1]:80": "Host: [2001:db8::1]\r\n",
		"[2001:db8::1]:81": "Host: [2001:db8::1]:81\r\n",
	} {
		req := p.request(Target{Addr: netip.MustParseAddrPort(addr)})
		if !strings.Contains(req, want) || !strings.HasPrefix(req, "GET / HTTP/1.1\r\n") || !strings.HasSuffix(req, "\r\n\r\n") {
			t.Errorf("%s: request %q, want %q", addr, req, want)
		}
	}
}

func TestHTTPSpecErrors(t *testing.T) {
	for _, s := range []HTTPSpec{
		{Path: "health"},
		{Path: "/a b"},
		{Host: "a\r\nX-Injected: 1"},
		{Status: []string{"abc"}},
		{Body: "("},
	} {
		if _, err := NewProber(Spec{Type: TypeHTTP, HTTP: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if _, err := NewProber(Spec{Type: TypeHTTP, HTTP: HTTPSpec{Verify: true}}); err == nil {
		t.Error("verify on a plain HTTP check: no error")
	}
}

func TestHTTPS(t *testing.T) {
	noLeaks(t)
	cert, caFile := selfSigned(t)
	var mu sync.Mutex
	var sni string
	ln := listen(t)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tls ok") }),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				mu.Lock()
				sni = h.ServerName
				mu.Unlock()
				return nil, nil
			},
		},
		ErrorLog: quietLog(),
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	addr := addrOf(t, ln.Addr())
	lastSNI := func() string { mu.Lock(); defer mu.Unlock(); return sni }

	// Verification off (the default): a self-signed certificate is fine.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Body: "tls ok"}}), addr, 5*time.Second))
	if lastSNI() != "" {
		t.Errorf("SNI %q sent for an address", lastSNI())
	}
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{SNI: "check.test"}}), addr, 5*time.Second))
	if lastSNI() != "check.test" {
		t.Errorf("SNI %q, want check.test", lastSNI())
	}
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Host: "check.test:443"}}), addr, 5*time.Second))
	if lastSNI() != "check.test" {
		t.Errorf("SNI %q from Host, want check.test", lastSNI())
	}

	// Verification on: unknown authority without the CA; with it, the
	// name or the address must be in the certificate.
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Verify: true, SNI: "check.test"}}), addr, 5*time.Second),
		"TLS handshake: tls: failed to verify certificate")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Verify: true, CAFile: caFile, SNI: "check.test"}}), addr, 5*time.Second))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Verify: true, CAFile: caFile}}), addr, 5*time.Second))
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTPS, HTTP: HTTPSpec{Verify: true, CAFile: caFile, SNI: "other.test"}}), addr, 5*time.Second),
		"certificate is valid for check.test, not other.test")
}

// timeWaits counts IPv4 TCP sockets in TIME_WAIT to or from port.
func timeWaits(t *testing.T, port uint16) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	hex := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == "06" && (strings.HasSuffix(f[1], hex) || strings.HasSuffix(f[2], hex)) {
			n++
		}
	}
	return n
}

// Checks reset their connections: a thousand checks leave no TIME_WAIT
// socket on either side, so the ephemeral ports cannot run out.
func TestHTTPLeavesNoTimeWait(t *testing.T) {
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	p := mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: "ok"}})
	for range 1000 {
		wantUp(t, probe(t, p, addr, 5*time.Second))
	}
	if n := timeWaits(t, addr.Port()); n > 0 {
		t.Fatalf("%d sockets in TIME_WAIT", n)
	}
}

func TestHTTPMethodHeadersVersion(t *testing.T) {
	noLeaks(t)
	type seen struct {
		method, proto, host, ua, token, body string
		length                               int64
	}
	got := make(chan seen, 1)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 64)
		n, _ := r.Body.Read(b)
		got <- seen{r.Method, r.Proto, r.Host, r.UserAgent(), r.Header.Get("X-Check-Token"), string(b[:n]), r.ContentLength}
		fmt.Fprint(w, "pong")
	})
	p := mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{
		Method: "POST", Path: "/rpc", Host: "api.example", Version: "1.0",
		Headers:     map[string]string{"X-Check-Token": "s3", "User-Agent": "lb-probe/1"},
		RequestBody: `{"ping":1}`, Body: "pong",
	}})
	wantUp(t, probe(t, p, addr, 5*time.Second))
	want := seen{"POST", "HTTP/1.0", "api.example", "lb-probe/1", "s3", `{"ping":1}`, 10}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
	// HEAD: no body is read, even though the server announces one.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Method: "HEAD"}}), addr, 5*time.Second))
	if s := <-got; s.method != "HEAD" || s.proto != "HTTP/1.1" || s.ua != "director-check" {
		t.Errorf("server saw %+v", s)
	}
	// A body-less POST says so.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Method: "POST"}}), addr, 5*time.Second))
	if s := <-got; s.method != "POST" || s.length != 0 {
		t.Errorf("server saw %+v", s)
	}
}

func TestHTTPDigest(t *testing.T) {
	noLeaks(t)
	addr := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("hello "))
			w.(http.Flusher).Flush() // chunked: the digest is of the decoded body
			w.Write([]byte("world\n"))
		case "/big":
			w.Write([]byte(strings.Repeat("x", 100<<10)))
		default:
			fmt.Fprint(w, "hello world\n")
		}
	})
	const sum = "6f5902ac237024bdd0c176cb93063dc4" // md5("hello world\n")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Digest: sum}}), addr, 5*time.Second))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/chunked", Digest: strings.ToUpper(sum)}}), addr, 5*time.Second))
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Digest: "9b3a0c85a887a256d6939da88aabd8cd"}}), addr, 5*time.Second),
		"body digest 6f5902ac237024bdd0c176cb93063dc4, want 9b3a0c85a887a256d6939da88aabd8cd")
	// Longer than max_bytes: no digest can match; with a larger cap it does.
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/big", Digest: sum}}), addr, 5*time.Second),
		"body longer than max_bytes 65536: no digest")
	big := md5.Sum([]byte(strings.Repeat("x", 100<<10)))
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Path: "/big", Digest: hex.EncodeToString(big[:]), MaxBytes: 100 << 10}}), addr, 5*time.Second))
	// regex_no_match: a match fails.
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: "world", BodyNoMatch: true}}), addr, 5*time.Second),
		"body matches /world/")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeHTTP, HTTP: HTTPSpec{Body: "maintenance", BodyNoMatch: true}}), addr, 5*time.Second))
}

func TestHTTPNewSpecErrors(t *testing.T) {
	for _, s := range []HTTPSpec{
		{Method: "get"},
		{Method: "CONNECT"},
		{Version: "2"},
		{Digest: "abc"},
		{Digest: strings.Repeat("z", 32)},
		{Method: "HEAD", Body: "x"},
		{Method: "HEAD", Digest: "6f5902ac237024bdd0c176cb93063dc4"},
		{BodyNoMatch: true},
		{RequestBody: "x"},
		{Headers: map[string]string{"Host": "x"}},
		{Headers: map[string]string{"content-length": "1"}},
		{Headers: map[string]string{"Bad Name": "x"}},
		{Headers: map[string]string{"X-A": "a\r\nX-Injected: 1"}},
		{Headers: map[string]string{"X-A": "1", "x-a": "2"}},
	} {
		if _, err := NewProber(Spec{Type: TypeHTTP, HTTP: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
