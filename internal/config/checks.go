package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/director-lb/director/checks"
)

// Check is one health check of a real server.
type Check struct {
	Type       string   `yaml:"type,omitempty"` // http | https | tcp | dns | exec | udp | ping | smtp | file
	Interval   Duration `yaml:"interval,omitempty"`
	Timeout    Duration `yaml:"timeout,omitempty"`
	Retries    int      `yaml:"retries,omitempty"`
	RetryDelay Duration `yaml:"retry_delay,omitempty"`
	// RetryRefused retries a refused connection like other failures.
	RetryRefused bool       `yaml:"retry_refused,omitempty"`
	Rise         int        `yaml:"rise,omitempty"`
	Fall         int        `yaml:"fall,omitempty"`
	ConnectIP    string     `yaml:"connect_ip,omitempty"`
	ConnectPort  int        `yaml:"connect_port,omitempty"`
	Source       string     `yaml:"source,omitempty"`
	HTTP         *HTTPCheck `yaml:"http,omitempty"`
	TCP          *TCPCheck  `yaml:"tcp,omitempty"`
	DNS          *DNSCheck  `yaml:"dns,omitempty"`
	Exec         *ExecCheck `yaml:"exec,omitempty"`
	UDP          *UDPCheck  `yaml:"udp,omitempty"`
	SMTP         *SMTPCheck `yaml:"smtp,omitempty"`
	File         *FileCheck `yaml:"file,omitempty"`

	Spec checks.Spec `yaml:"-"`
}

// HTTPCheck is a request (http and https checks), GET by default.
type HTTPCheck struct {
	Method      string            `yaml:"method,omitempty"`
	Path        string            `yaml:"path,omitempty"`
	Host        string            `yaml:"host,omitempty"`    // the virtual host
	Version     string            `yaml:"version,omitempty"` // "1.1" or "1.0"
	Headers     map[string]string `yaml:"headers,omitempty"`
	RequestBody string            `yaml:"request_body,omitempty"`
	Status      []string          `yaml:"status,omitempty"` // "200", "200-299", ...
	Body        string            `yaml:"body,omitempty"`   // regular expression
	BodyNoMatch bool              `yaml:"body_no_match,omitempty"`
	Digest      string            `yaml:"digest,omitempty"` // MD5 of the body, hex
	SNI         string            `yaml:"sni,omitempty"`
	Verify      bool              `yaml:"verify,omitempty"`
	CAFile      string            `yaml:"ca_file,omitempty"`
	MaxBytes    int               `yaml:"max_bytes,omitempty"`
}

// TCPCheck is a connect, optionally with a send/expect exchange.
type TCPCheck struct {
	Send        string `yaml:"send,omitempty"`
	Expect      string `yaml:"expect,omitempty"`
	ExpectRegex string `yaml:"expect_regex,omitempty"`
	MaxBytes    int    `yaml:"max_bytes,omitempty"`
}

// DNSCheck is a query over UDP or TCP.
type DNSCheck struct {
	Protocol string `yaml:"protocol,omitempty"`
	Type     string `yaml:"type,omitempty"`
	Name     string `yaml:"name,omitempty"`
	Expect   string `yaml:"expect,omitempty"`
}

// ExecCheck runs a command: exit 0 is up (keepalived's MISC_CHECK).
type ExecCheck struct {
	Command []string `yaml:"command,omitempty"`
	Dynamic bool     `yaml:"dynamic,omitempty"`
}

// UDPCheck sends a datagram and may require a reply (keepalived's
// UDP_CHECK).
type UDPCheck struct {
	Send           string `yaml:"send,omitempty"`
	SendHex        string `yaml:"send_hex,omitempty"`
	RequireReply   bool   `yaml:"require_reply,omitempty"`
	ExpectHex      string `yaml:"expect_hex,omitempty"`
	Expect         string `yaml:"expect,omitempty"`
	ExpectRegex    string `yaml:"expect_regex,omitempty"`
	MinReplyLength int    `yaml:"min_reply_length,omitempty"`
	MaxReplyLength int    `yaml:"max_reply_length,omitempty"`
}

// SMTPCheck is a greeting, HELO and QUIT, optionally with STARTTLS
// (keepalived's SMTP_CHECK).
type SMTPCheck struct {
	HeloName string `yaml:"helo_name,omitempty"`
	StartTLS bool   `yaml:"starttls,omitempty"`
	SNI      string `yaml:"sni,omitempty"`
	Verify   bool   `yaml:"verify,omitempty"`
	CAFile   string `yaml:"ca_file,omitempty"`
}

// FileCheck reads a number from a file (keepalived's FILE_CHECK): value ×
// weight adjusts the real server's weight; with weight 0 a non-zero value
// takes it down.
type FileCheck struct {
	Path    string `yaml:"path,omitempty"`
	Weight  *int   `yaml:"weight,omitempty"` // default 1, as track_files
	Reverse bool   `yaml:"reverse,omitempty"`
}

// check validates one check and builds its Spec.
func (c *checker) check(f string, ch *Check) {
	s := checks.Spec{
		Type:         checks.Type(ch.Type),
		Interval:     ch.Interval.D(),
		Timeout:      ch.Timeout.D(),
		Retries:      ch.Retries,
		RetryDelay:   ch.RetryDelay.D(),
		RetryRefused: ch.RetryRefused,
		Rise:         ch.Rise,
		Fall:         ch.Fall,
		ConnectPort:  uint16(ch.ConnectPort),
	}
	if ch.ConnectPort < 0 || ch.ConnectPort > 65535 {
		c.errf(f+".connect_port", "must be 1-65535, got %d", ch.ConnectPort)
	}
	for _, a := range []struct {
		field, val string
		dst        *netip.Addr
	}{{"connect_ip", ch.ConnectIP, &s.ConnectIP}, {"source", ch.Source, &s.Source}} {
		if a.val == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.val)
		if err != nil {
			c.errf(f+"."+a.field, "%q is not an IP address", a.val)
			continue
		}
		*a.dst = ip
	}
	if h := ch.HTTP; h != nil {
		s.HTTP = checks.HTTPSpec{Method: h.Method, Path: h.Path, Host: h.Host, Version: h.Version, Headers: h.Headers,
			RequestBody: h.RequestBody, Status: h.Status, Body: h.Body, BodyNoMatch: h.BodyNoMatch, Digest: h.Digest,
			SNI: h.SNI, Verify: h.Verify, CAFile: h.CAFile, MaxBytes: h.MaxBytes}
	}
	if t := ch.TCP; t != nil {
		s.TCP = checks.TCPSpec{Send: t.Send, Expect: t.Expect, ExpectRegex: t.ExpectRegex, MaxBytes: t.MaxBytes}
	}
	if d := ch.DNS; d != nil {
		s.DNS = checks.DNSSpec{Protocol: d.Protocol, Type: d.Type, Name: d.Name, Expect: d.Expect}
	}
	if e := ch.Exec; e != nil {
		s.Exec = checks.ExecSpec{Command: e.Command, Dynamic: e.Dynamic}
	}
	if u := ch.UDP; u != nil {
		s.UDP = checks.UDPSpec{Send: u.Send, SendHex: u.SendHex, RequireReply: u.RequireReply, ExpectHex: u.ExpectHex,
			Expect: u.Expect, ExpectRegex: u.ExpectRegex, MinReplyLength: u.MinReplyLength, MaxReplyLength: u.MaxReplyLength}
	}
	if m := ch.SMTP; m != nil {
		s.SMTP = checks.SMTPSpec{HeloName: m.HeloName, StartTLS: m.StartTLS, SNI: m.SNI, Verify: m.Verify, CAFile: m.CAFile}
	}
	if fc := ch.File; fc != nil {
		w := DefaultTrackFileWeight
		if fc.Weight != nil {
			w = *fc.Weight
		}
		s.File = checks.FileSpec{Path: fc.Path, Weight: w, Reverse: fc.Reverse}
		if fc.Path == "" {
			// An empty FileSpec would read as "no file settings".
			c.errf(f+".file.path", "required")
			return
		}
	} else if ch.Type == string(checks.TypeFile) {
		c.errf(f+".file", "a file check needs file: {path: ...}")
		return
	}
	if err := s.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			c.errf(c.checkField(f, ch.Type, line), "%s", line)
		}
		return
	}
	n := s.Normalized()
	if n.Timeout > n.Interval {
		// The next round would start before this one gives up.
		c.errf(f+".timeout", "%s is longer than the interval %s", n.Timeout, n.Interval)
	}
	ch.Spec = n
}

// checkField places an error from checks at the settings field it names
// ("udp check: expect_hex: ..." is at checks[0].udp.expect_hex) when that
// field is in the file, else at the check.
func (c *checker) checkField(f, typ, msg string) string {
	sub, rest, ok := strings.Cut(msg, " check: ")
	if !ok {
		return f
	}
	if sub == "https" {
		sub = "http"
	}
	word := strings.FieldsFunc(rest, func(r rune) bool { return r == ':' || r == ' ' })
	if len(word) == 0 || sub != typ && !(typ == "https" && sub == "http") {
		return f
	}
	if field := f + "." + sub + "." + word[0]; c.set(field) {
		return field
	}
	return f
}

// serviceChecks validates a service's health settings and checks.
func (c *checker) serviceChecks(f string, s *Service) {
	for i := range s.Checks {
		c.check(fmt.Sprintf("%s.checks[%d]", f, i), &s.Checks[i])
	}
	for j := range s.RealServers {
		r := &s.RealServers[j]
		if r.Checks == nil {
			continue
		}
		for i := range *r.Checks {
			c.check(fmt.Sprintf("%s.real_servers[%d].checks[%d]", f, j, i), &(*r.Checks)[i])
		}
	}
	switch s.OnFailure {
	case "", "drain", "remove":
	default:
		c.errf(f+".on_failure", "%q is not drain or remove", s.OnFailure)
	}
	if s.Quorum < 0 {
		c.errf(f+".quorum", "must not be negative")
	}
	if s.Hysteresis < 0 {
		c.errf(f+".hysteresis", "must not be negative")
	}
}

// ChecksOf returns the checks that apply to real server r of s: its own
// list if it has one (even empty), else the service's.
func (s *Service) ChecksOf(r *RealServer) []Check {
	if r.Checks != nil {
		return *r.Checks
	}
	return s.Checks
}
