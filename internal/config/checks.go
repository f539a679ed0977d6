package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/director-lb/director/checks"
)

// Check is one health check of a real server.
type Check struct {
	Type       string   `yaml:"type,omitempty"` // http | https | tcp | dns | exec
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

	Spec checks.Spec `yaml:"-"`
}

// HTTPCheck is a GET (http and https checks).
type HTTPCheck struct {
	Path     string   `yaml:"path,omitempty"`
	Host     string   `yaml:"host,omitempty"`
	Status   []string `yaml:"status,omitempty"` // "200", "200-299", ...
	Body     string   `yaml:"body,omitempty"`   // regular expression
	SNI      string   `yaml:"sni,omitempty"`
	Verify   bool     `yaml:"verify,omitempty"`
	CAFile   string   `yaml:"ca_file,omitempty"`
	MaxBytes int      `yaml:"max_bytes,omitempty"`
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
		s.HTTP = checks.HTTPSpec{Path: h.Path, Host: h.Host, Status: h.Status, Body: h.Body, SNI: h.SNI, Verify: h.Verify, CAFile: h.CAFile, MaxBytes: h.MaxBytes}
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
	if err := s.Validate(); err != nil {
		c.errf(f, "%s", strings.TrimPrefix(err.Error(), "checks: "))
		return
	}
	n := s.Normalized()
	if n.Timeout > n.Interval {
		// The next round would start before this one gives up.
		c.errf(f+".timeout", "%s is longer than the interval %s", n.Timeout, n.Interval)
	}
	ch.Spec = n
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
