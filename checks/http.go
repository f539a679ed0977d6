package checks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// HTTPSpec configures an HTTP or HTTPS check (keepalived's HTTP_GET and
// SSL_GET). The zero value checks GET / for a 2xx status.
type HTTPSpec struct {
	// Method is the request method: GET (the default), HEAD, POST, PUT,
	// DELETE, OPTIONS or PATCH.
	Method string `json:"method,omitempty"`
	// Path is the request target; "/" by default.
	Path string `json:"path,omitempty"`
	// Host is the Host header, the virtual host (keepalived's
	// virtualhost); by default the connect address, without the scheme's
	// default port.
	Host string `json:"host,omitempty"`
	// Version is the HTTP version of the request, "1.1" (the default) or
	// "1.0" (keepalived's http_protocol). Either way the request asks the
	// server to close the connection.
	Version string `json:"version,omitempty"`
	// Headers are extra request headers. Host, Connection, Content-Length
	// and Transfer-Encoding are the check's own.
	Headers map[string]string `json:"headers,omitempty"`
	// RequestBody is sent with the request (with a Content-Length), for
	// methods other than GET and HEAD.
	RequestBody string `json:"request_body,omitempty"`
	// Status lists accepted codes: "200", "200-299", "200,301-302".
	// Default "200-299".
	Status []string `json:"status,omitempty"`
	// Body is a regular expression (RE2 syntax) the body must match within
	// its first MaxBytes, which must arrive (or the body end) before the
	// timeout. Without it the body is not read at all.
	Body string `json:"body,omitempty"`
	// BodyNoMatch inverts Body: a match fails the check (keepalived's
	// regex_no_match).
	BodyNoMatch bool `json:"body_no_match,omitempty"`
	// Digest is the MD5 of the whole body, in hex (keepalived's digest, as
	// its genhash prints it). A body longer than MaxBytes fails.
	Digest string `json:"digest,omitempty"`
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
	tls     *tls.Config // nil for plain HTTP
	method  string
	path    string
	host    string
	version string
	// extra is the request's own header lines and body, after Host.
	extra   string
	status  StatusCodes
	body    *regexp.Regexp
	noMatch bool
	digest  []byte
	max     int
	// req tells the response reader the method (no body after HEAD).
	req *http.Request
}

// httpMethods are the methods a check may use.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}

// ownHeaders are the headers the check writes itself.
var ownHeaders = []string{"Host", "Connection", "Content-Length", "Transfer-Encoding"}

func newHTTPProber(s HTTPSpec, useTLS bool) (*httpProber, error) {
	p := &httpProber{method: s.Method, path: s.Path, host: s.Host, version: s.Version, max: s.MaxBytes, status: defaultStatus, noMatch: s.BodyNoMatch}
	if p.method == "" {
		p.method = "GET"
	}
	if !slices.Contains(httpMethods, p.method) {
		return nil, fmt.Errorf("method %q: want one of %s", s.Method, strings.Join(httpMethods, ", "))
	}
	switch p.version {
	case "":
		p.version = "1.1"
	case "1.0", "1.1":
	default:
		return nil, fmt.Errorf("version %q: want 1.0 or 1.1", s.Version)
	}
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
	} else if s.BodyNoMatch {
		return nil, errors.New("body_no_match needs a body expression")
	}
	if s.Digest != "" {
		d, err := hex.DecodeString(s.Digest)
		if err != nil || len(d) != md5.Size {
			return nil, fmt.Errorf("digest %q: want an MD5 sum, 32 hex digits", s.Digest)
		}
		p.digest = d
	}
	if p.method == "HEAD" && (p.body != nil || p.digest != nil) {
		return nil, errors.New("a HEAD response has no body to match or digest")
	}
	extra, err := requestExtra(s.Headers, s.RequestBody, p.method)
	if err != nil {
		return nil, err
	}
	p.extra = extra
	p.req = &http.Request{Method: p.method}
	if !useTLS {
		if s.SNI != "" || s.Verify || s.CAFile != "" {
			return nil, errors.New("sni, verify and ca_file need an https check")
		}
		return p, nil
	}
	cfg, err := tlsConfig(s.SNI, p.host, s.Verify, s.CAFile)
	if err != nil {
		return nil, err
	}
	p.tls = cfg
	return p, nil
}

// tlsConfig is the client configuration of a check over TLS. The server
// name is sni, else host without its port when that is a name.
func tlsConfig(sni, host string, verify bool, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: !verify, ServerName: sni}
	if cfg.ServerName == "" && host != "" {
		if h := hostOnly(host); net.ParseIP(h) == nil {
			cfg.ServerName = h
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates", caFile)
		}
	}
	return cfg, nil
}

// tlsHandshake starts TLS over c with cfg.
func tlsHandshake(ctx context.Context, c net.Conn, cfg *tls.Config, t Target) (*tls.Conn, error) {
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		// Verifying without a name: check the certificate against the
		// address (Go sends no SNI for an IP).
		cfg = cfg.Clone()
		cfg.ServerName = t.Addr.Addr().String()
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
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
		tc, err := tlsHandshake(ctx, c, p.tls, t)
		if err != nil {
			return ioFailure("TLS handshake", err)
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, p.request(t)); err != nil {
		return ioFailure("send request", err)
	}
	return p.response(conn)
}

// ProbeUntil is Probe with one deadline on one socket (see fastConn), for
// plain HTTP; over TLS it is Probe under a context deadline.
func (p *httpProber) ProbeUntil(ctx context.Context, t Target, deadline time.Time) Result {
	if p.tls != nil {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		r := p.Probe(ctx, t)
		if !r.OK && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.TimedOut = true
		}
		return r
	}
	c, err := dialFast(ctx, t, deadline)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	// The request goes out as soon as the connection is up: the write
	// waits for the connect, so its failure is the connect's.
	if _, err := io.WriteString(c, p.request(t)); err != nil {
		if c.pending {
			return ioFailure("connect", err)
		}
		return ioFailure("send request", err)
	}
	r := p.response(c)
	r.ReadLate = c.lateReads > 0
	return r
}

// loopPlan runs a plain HTTP check that judges the status alone in the
// Manager's loop: the response is judged once its header has come (or the
// server closed, or the cap or the deadline came first). TLS, and a body to
// match or digest, need the goroutine's reader.
func (p *httpProber) loopPlan(t Target) (loopPlan, bool) {
	if p.tls != nil || p.body != nil || p.digest != nil {
		return loopPlan{}, false
	}
	return loopPlan{send: []byte(p.request(t)), sendStage: "send request", max: maxHeaderBytes + 1,
		judge: func(buf []byte, prev int, err error) (Result, bool) {
			if err == nil && len(buf) <= maxHeaderBytes && !headerEnded(buf[max(0, prev-2):]) {
				return Result{}, false
			}
			var r io.Reader = bytes.NewReader(buf)
			if err != nil {
				r = io.MultiReader(r, errReader{err})
			}
			return p.response(r), true
		}}, true
}

// headerEnded reports whether buf holds the end of a response's header:
// an empty line (net/textproto accepts bare newlines too). The judge asks
// only of the new bytes and the two before them.
func headerEnded(buf []byte) bool {
	return bytes.Contains(buf, []byte("\n\r\n")) || bytes.Contains(buf, []byte("\n\n"))
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// response reads and judges the response to the request sent on conn.
func (p *httpProber) response(conn io.Reader) Result {
	lim := &capReader{r: conn, n: maxHeaderBytes, err: errHeaderTooLong}
	// A small buffer: a check's response is mostly a status line, and
	// longer header lines are still read whole by net/textproto.
	resp, err := http.ReadResponse(bufio.NewReaderSize(lim, 512), p.req)
	if err != nil {
		return ioFailure("read response", err)
	}
	if !p.status.Contains(resp.StatusCode) {
		return failure("HTTP status %d, want %s", resp.StatusCode, p.status)
	}
	if p.body == nil && p.digest == nil {
		return success("HTTP %d", resp.StatusCode)
	}
	// Chunk framing costs at most a few bytes per body byte in sane
	// responses; beyond that, stop and judge what was read.
	lim.n, lim.err = int64(4*p.max+maxHeaderBytes), errCapped
	// One byte beyond the cap tells a body that is too long to digest.
	body, err := readCapped(resp.Body, p.max+1)
	if err != nil {
		return ioFailure("read body", err)
	}
	long := len(body) > p.max || lim.n <= 0
	body = body[:min(len(body), p.max)]
	if p.body != nil && p.body.Match(body) == p.noMatch {
		if p.noMatch {
			return failure("body matches /%s/", p.body)
		}
		return failure("body does not match /%s/", p.body)
	}
	if p.digest != nil {
		if long {
			return failure("body longer than max_bytes %d: no digest", p.max)
		}
		if sum := md5.Sum(body); !bytes.Equal(sum[:], p.digest) {
			return failure("body digest %x, want %x", sum, p.digest)
		}
		return success("HTTP %d, digest matches", resp.StatusCode)
	}
	return success("HTTP %d, body matches", resp.StatusCode)
}

// requestExtra checks the extra headers and the request body and writes
// them as they follow the Host line.
func requestExtra(headers map[string]string, body, method string) (string, error) {
	var b strings.Builder
	names := slices.Sorted(maps.Keys(headers))
	seen := map[string]string{}
	for _, name := range names {
		value := headers[name]
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return "", fmt.Errorf("headers: %q is not a header name", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return "", fmt.Errorf("headers: %s: the value must be one line", name)
		}
		if slices.Contains(ownHeaders, canon) {
			return "", fmt.Errorf("headers: %s is the check's own (use host for the virtual host)", canon)
		}
		if other, dup := seen[canon]; dup {
			return "", fmt.Errorf("headers: %s and %s are the same header", other, name)
		}
		seen[canon] = name
		b.WriteString(name + ": " + strings.TrimSpace(value) + "\r\n")
	}
	if _, ok := seen["User-Agent"]; !ok {
		b.WriteString("User-Agent: director-check\r\n")
	}
	if _, ok := seen["Accept"]; !ok {
		b.WriteString("Accept: */*\r\n")
	}
	// Connection: close keeps the exchange to one request; the connection
	// is reset afterwards anyway.
	b.WriteString("Connection: close\r\n")
	if body != "" {
		if method == "GET" || method == "HEAD" {
			return "", fmt.Errorf("request_body: a %s request has none", method)
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return b.String(), nil
	}
	if method == "POST" || method == "PUT" || method == "PATCH" {
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), nil
}

// isTokenChar reports whether r may appear in a header name (RFC 9110
// tchar).
func isTokenChar(r rune) bool {
	return r < 0x7f && r > ' ' && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
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
	return p.method + " " + p.path + " HTTP/" + p.version + "\r\nHost: " + host + "\r\n" + p.extra
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
