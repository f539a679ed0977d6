package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// Type names a kind of check.
type Type string

const (
	TypeHTTP  Type = "http"
	TypeHTTPS Type = "https"
	TypeTCP   Type = "tcp"
	TypeDNS   Type = "dns"
	TypeExec  Type = "exec"
)

// Defaults for a Spec's zero fields.
const (
	DefaultInterval   = 2 * time.Second
	DefaultTimeout    = time.Second
	DefaultRetryDelay = time.Second
	DefaultRise       = 2
	DefaultFall       = 3
)

// Spec is the definition of one health check. Together with the real
// server it identifies a check: changing any field starts it afresh.
type Spec struct {
	Type Type `json:"type"`
	// Interval is the time between rounds; Timeout bounds each attempt.
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	// Retries is how many more attempts a failing round makes, RetryDelay
	// apart, before it counts as failed.
	Retries    int           `json:"retries"`
	RetryDelay time.Duration `json:"retry_delay"`
	// RetryRefused makes a refused connection retried like any failure
	// (keepalived's behaviour). By default it ends the round at once: while
	// the server refuses, every client connection IPVS sends it fails, so
	// retrying only keeps it in the table longer.
	RetryRefused bool `json:"retry_refused,omitempty"`
	// Rise good rounds in a row bring a down server up; Fall failed rounds
	// in a row take an up server down.
	Rise int `json:"rise"`
	Fall int `json:"fall"`
	// ConnectIP and ConnectPort replace the real server's address and port
	// (keepalived's connect_ip and connect_port).
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort uint16     `json:"connect_port,omitzero"`
	// Source is the local address to connect from (bindto).
	Source netip.Addr `json:"source,omitzero"`

	// The settings of the Type; the others must be left empty.
	HTTP HTTPSpec `json:"http,omitzero"` // http and https
	TCP  TCPSpec  `json:"tcp,omitzero"`
	DNS  DNSSpec  `json:"dns,omitzero"`
	Exec ExecSpec `json:"exec,omitzero"`
}

// Normalized returns s with defaults filled in, so that a definition that
// spells out a default is the same check as one that leaves it out.
func (s Spec) Normalized() Spec {
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout <= 0 {
		s.Timeout = min(DefaultTimeout, s.Interval)
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = DefaultRetryDelay
	}
	if s.Retries == 0 {
		// Irrelevant without retries: keep it from splitting identities.
		s.RetryDelay = DefaultRetryDelay
		s.RetryRefused = false
	}
	if s.Rise <= 0 {
		s.Rise = DefaultRise
	}
	if s.Fall <= 0 {
		s.Fall = DefaultFall
	}
	s.ConnectIP = s.ConnectIP.Unmap()
	s.Source = s.Source.Unmap()
	return s
}

// Validate reports what is wrong with a (normalized) spec, including what
// NewProber would refuse.
func (s Spec) Validate() error {
	var errs []error
	if s.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries: must not be negative, got %d", s.Retries))
	}
	if s.Type != TypeExec && s.Source.IsValid() && s.ConnectIP.IsValid() && s.Source.Is4() != s.ConnectIP.Is4() {
		errs = append(errs, fmt.Errorf("source %s and connect_ip %s are of different families", s.Source, s.ConnectIP))
	}
	if _, err := NewProber(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// NewProber builds the Prober for a spec's type.
func NewProber(s Spec) (Prober, error) {
	others := []bool{!isZero(s.HTTP), !isZero(s.TCP), !isZero(s.DNS), !isZero(s.Exec)}
	own := map[Type]int{TypeHTTP: 0, TypeHTTPS: 0, TypeTCP: 1, TypeDNS: 2, TypeExec: 3}
	i, ok := own[s.Type]
	if !ok {
		return nil, fmt.Errorf("type %q: want http, https, tcp, dns or exec", s.Type)
	}
	names := []string{"http", "tcp", "dns", "exec"}
	for j, set := range others {
		if set && j != i {
			return nil, fmt.Errorf("%s settings given for a %s check", names[j], s.Type)
		}
	}
	var p Prober
	var err error
	switch s.Type {
	case TypeHTTP, TypeHTTPS:
		p, err = newHTTPProber(s.HTTP, s.Type == TypeHTTPS)
	case TypeTCP:
		p, err = newTCPProber(s.TCP)
	case TypeDNS:
		p, err = newDNSProber(s.DNS)
	case TypeExec:
		p, err = newExecProber(s.Exec)
	}
	if err != nil {
		return nil, fmt.Errorf("%s check: %w", s.Type, err)
	}
	return p, nil
}

func isZero(v any) bool { return reflect.ValueOf(v).IsZero() }

// key is the canonical text of a normalized spec.
func (s Spec) key() string {
	b, err := json.Marshal(s)
	if err != nil {
		// Every field marshals; this would be a programming error.
		panic(fmt.Sprintf("checks: marshal spec: %v", err))
	}
	return string(b)
}

// Summary is a short human description for logs: "http GET /health".
func (s Spec) Summary() string {
	switch s.Type {
	case TypeHTTP, TypeHTTPS:
		path := s.HTTP.Path
		if path == "" {
			path = "/"
		}
		return fmt.Sprintf("%s GET %s", s.Type, path)
	case TypeTCP:
		if s.TCP.Send != "" || s.TCP.Expect != "" || s.TCP.ExpectRegex != "" {
			return "tcp send/expect"
		}
		return "tcp connect"
	case TypeDNS:
		proto, typ, name := s.DNS.Protocol, s.DNS.Type, s.DNS.Name
		if proto == "" {
			proto = "udp"
		}
		if typ == "" {
			typ = "SOA"
		}
		if name == "" {
			name = "."
		}
		return fmt.Sprintf("dns/%s %s %s", proto, strings.ToUpper(typ), name)
	case TypeExec:
		return "exec " + strings.Join(s.Exec.Command, " ")
	}
	return string(s.Type)
}

// Check is one health check of one real server.
type Check struct {
	Server netip.AddrPort
	Spec   Spec
}

// ID identifies a check: the real server and its full definition.
type ID struct {
	Server netip.AddrPort
	// Spec is the canonical text of the normalized Spec.
	Spec string
}

// ID returns the check's identity.
func (c Check) ID() ID { return ID{Server: c.Server, Spec: c.Spec.Normalized().key()} }

func (id ID) String() string {
	var s Spec
	if json.Unmarshal([]byte(id.Spec), &s) != nil {
		return id.Server.String() + " " + id.Spec
	}
	return id.Server.String() + " " + s.Summary()
}

// target works out where the check connects.
func (c Check) target(s Spec) (Target, error) {
	addr, port := c.Server.Addr(), c.Server.Port()
	if s.ConnectIP.IsValid() {
		addr = s.ConnectIP
	}
	if s.ConnectPort != 0 {
		port = s.ConnectPort
	}
	if s.Type != TypeExec {
		if !addr.IsValid() {
			return Target{}, errors.New("no address to connect to")
		}
		if port == 0 {
			return Target{}, errors.New("no port to connect to: set connect_port")
		}
		if s.Source.IsValid() && s.Source.Is4() != addr.Unmap().Is4() {
			return Target{}, fmt.Errorf("source %s cannot reach %s", s.Source, addr)
		}
	}
	return Target{Addr: netip.AddrPortFrom(addr.Unmap(), port), Source: s.Source, Server: c.Server}, nil
}
