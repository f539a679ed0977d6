package checks

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
)

// HTTPSpec configures an HTTP or HTTPS GET check (keepalived's HTTP_GET and
// SSL_GET). The zero value checks GET / for a 2xx status.
type HTTPSpec struct {
	// Path is the request target; "/" by default.
	Path string `json:"path,omitempty"`
	// Host is the Host header; by default the connect address, without the
	// scheme's default port.
	Host string `json:"host,omitempty"`
	// Status lists accepted codes: "200", "200-299", "200,301-302".
	// Default "200-299".
	Status []string `json:"status,omitempty"`
	// Body is a regular expression (RE2 syntax) the body must match within
	// its first MaxBytes, which must arrive (or the body end) before the
	// timeout. Without it the body is not read at all.
	Body string `json:"body,omitempty"`
	// SNI is the TLS server name; by default Host without its port, when
	// that is a name.
	SNI string `json:"sni,omitempty"`
	// Verify checks the server's certificate chain and name. Off by default,
	// as in keepalived: real servers rarely have certificates for the
	// address they are checked on.
	Verify bool `json:"verify,omitempty"`
	// CAFile is a PEM bundle of roots for Verify; the system's by default.
	CAFile string `json:"ca_file,omitempty"`
	// MaxBytes caps the body bytes read; DefaultMaxBytes by default.
	MaxBytes int `json:"max_bytes,omitempty"`
}

// DefaultMaxBytes caps what a check reads from a real server.
const DefaultMaxBytes = 64 << 10

// maxHeaderBytes caps a response's status line and headers, which net/http
// would otherwise read without limit.
const maxHeaderBytes = 64 << 10

var (
	errHeaderTooLong = fmt.Errorf("response header longer than %d bytes", maxHeaderBytes)
	// errCapped ends a body whose encoding (chunk framing) would make us
	// read far more than MaxBytes to decode MaxBytes.
	errCapped = errors.New("read cap reached")
)

type httpProber struct {
	tls    *tls.Config // nil for plain HTTP
	path   string
	host   string
	status StatusCodes
	body   *regexp.Regexp
	max    int
}

func newHTTPProber(s HTTPSpec, useTLS bool) (*httpProber, error) {
	p := &httpProber{path: s.Path, host: s.Host, max: s.MaxBytes, status: defaultStatus}
	if p.path == "" {
		p.path = "/"
	}
	if !strings.HasPrefix(p.path, "/") || strings.ContainsAny(p.path, " \t\r\n") {
		return nil, fmt.Errorf("path %q: want an absolute path without spaces", p.path)
	}
	if strings.ContainsAny(p.host, " \t\r\n") {
		return nil, fmt.Errorf("host %q: must not contain spaces", p.host)
	}
	if p.max <= 0 {
		p.max = DefaultMaxBytes
	}
	if len(s.Status) > 0 {
		codes, err := ParseStatusCodes(s.Status...)
		if err != nil {
			return nil, err
		}
		p.status = codes
	}
	if s.Body != "" {
		re, err := regexp.Compile(s.Body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		p.body = re
	}
	if !useTLS {
		if s.SNI != "" || s.Verify || s.CAFile != "" {
			return nil, errors.New("sni, verify and ca_file need an https check")
		}
		return p, nil
	}
	p.tls = &tls.Config{InsecureSkipVerify: !s.Verify, ServerName: s.SNI}
	if p.tls.ServerName == "" && p.host != "" {
		if h := hostOnly(p.host); net.ParseIP(h) == nil {
			p.tls.ServerName = h
		}
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		p.tls.RootCAs = x509.NewCertPool()
		if !p.tls.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates", s.CAFile)
		}
	}
	return p, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func (p *httpProber) Probe(ctx context.Context, t Target) Result {
	c, err := dial(ctx, "tcp", t)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	var conn net.Conn = c
	if p.tls != nil {
		cfg := p.tls
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			// Verifying without a name: check the certificate against the
			// address (Go sends no SNI for an IP).
			cfg = cfg.Clone()
			cfg.ServerName = t.Addr.Addr().String()
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return ioFailure("TLS handshake", err)
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, p.request(t)); err != nil {
		return ioFailure("send request", err)
	}
	lim := &capReader{r: conn, n: maxHeaderBytes, err: errHeaderTooLong}
	// A small buffer: a check's response is mostly a status line, and
	// longer header lines are still read whole by net/textproto.
	resp, err := http.ReadResponse(bufio.NewReaderSize(lim, 512), nil)
	if err != nil {
		return ioFailure("read response", err)
	}
	if !p.status.Contains(resp.StatusCode) {
		return failure("HTTP status %d, want %s", resp.StatusCode, p.status)
	}
	if p.body == nil {
		return success("HTTP %d", resp.StatusCode)
	}
	// Chunk framing costs at most a few bytes per body byte in sane
	// responses; beyond that, stop and judge what was read.
	lim.n, lim.err = int64(4*p.max+maxHeaderBytes), errCapped
	body, err := readCapped(resp.Body, p.max)
	if err != nil {
		return ioFailure("read body", err)
	}
	if !p.body.Match(body) {
		return failure("body does not match /%s/", p.body)
	}
	return success("HTTP %d, body matches", resp.StatusCode)
}

func (p *httpProber) request(t Target) string {
	host := p.host
	if host == "" {
		host = t.Addr.String()
		if port := t.Addr.Port(); (p.tls == nil && port == 80) || (p.tls != nil && port == 443) {
			host = hostOnly(host)
			if t.Addr.Addr().Is6() {
				host = "[" + host + "]"
			}
		}
	}
	// Connection: close keeps the exchange to one request; the connection is
	// reset afterwards anyway.
	return "GET " + p.path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUser-Agent: director-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
}

// capReader returns err once n bytes have been read.
type capReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// readCapped reads r to its end, or to max bytes, whichever comes first.
// Reaching the cap (or errCapped) is not an error: the caller judges what
// was read.
func readCapped(r io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, min(max, 4<<10))
	for len(buf) < max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), max)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) || errors.Is(err, errCapped) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
