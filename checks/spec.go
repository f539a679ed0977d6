package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
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
	TypeUDP   Type = "udp"
	TypePing  Type = "ping"
	TypeSMTP  Type = "smtp"
	TypeFile  Type = "file"
)

// Defaults for a Spec's zero fields.
const (
	DefaultInterval   = 2 * time.Second
	DefaultTimeout    = time.Second
	DefaultRetryDelay = time.Second
	DefaultRise       = 2
	DefaultFall       = 3
	// A file check reads a local file: cheap, so read every second, and
	// trusted at once (keepalived's FILE_CHECK reacts to every change).
	DefaultFileInterval = time.Second
	DefaultFileRise     = 1
	DefaultFileFall     = 1
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
	UDP  UDPSpec  `json:"udp,omitzero"`
	SMTP SMTPSpec `json:"smtp,omitzero"`
	File FileSpec `json:"file,omitzero"`
	// A ping check has no settings of its own.
}

// Normalized returns s with defaults filled in, so that a definition that
// spells out a default is the same check as one that leaves it out.
func (s Spec) Normalized() Spec {
	if s.Type == TypeFile {
		if s.Interval <= 0 {
			s.Interval = DefaultFileInterval
		}
		if s.Rise <= 0 {
			s.Rise = DefaultFileRise
		}
		if s.Fall <= 0 {
			s.Fall = DefaultFileFall
		}
	}
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
	switch s.Type {
	case TypeFile:
		if s.ConnectIP.IsValid() || s.ConnectPort != 0 || s.Source.IsValid() {
			errs = append(errs, errors.New("connect_ip, connect_port and source mean nothing to a file check"))
		}
	case TypePing:
		if s.ConnectPort != 0 {
			errs = append(errs, errors.New("connect_port means nothing to a ping check"))
		}
	}
	if _, err := NewProber(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kinds lists each type's settings field (by its JSON name) and its
// prober's constructor.
var kinds = []struct {
	types    []Type
	settings string // "" for a type without settings
	set      func(Spec) bool
	build    func(Spec) (Prober, error)
}{
	{[]Type{TypeHTTP, TypeHTTPS}, "http", func(s Spec) bool { return !isZero(s.HTTP) },
		func(s Spec) (Prober, error) { return newHTTPProber(s.HTTP, s.Type == TypeHTTPS) }},
	{[]Type{TypeTCP}, "tcp", func(s Spec) bool { return !isZero(s.TCP) },
		func(s Spec) (Prober, error) { return newTCPProber(s.TCP) }},
	{[]Type{TypeDNS}, "dns", func(s Spec) bool { return !isZero(s.DNS) },
		func(s Spec) (Prober, error) { return newDNSProber(s.DNS) }},
	{[]Type{TypeExec}, "exec", func(s Spec) bool { return !isZero(s.Exec) },
		func(s Spec) (Prober, error) { return newExecProber(s.Exec) }},
	{[]Type{TypeUDP}, "udp", func(s Spec) bool { return !isZero(s.UDP) },
		func(s Spec) (Prober, error) { return newUDPProber(s.UDP) }},
	{[]Type{TypePing}, "", func(Spec) bool { return false },
		func(Spec) (Prober, error) { return newPingProber(), nil }},
	{[]Type{TypeSMTP}, "smtp", func(s Spec) bool { return !isZero(s.SMTP) },
		func(s Spec) (Prober, error) { return newSMTPProber(s.SMTP) }},
	{[]Type{TypeFile}, "file", func(s Spec) bool { return !isZero(s.File) },
		func(s Spec) (Prober, error) { return newFileProber(s.File) }},
}

// NewProber builds the Prober for a spec's type.
func NewProber(s Spec) (Prober, error) {
	own := -1
	for i, k := range kinds {
		if slices.Contains(k.types, s.Type) {
			own = i
		}
	}
	if own < 0 {
		return nil, fmt.Errorf("type %q: want http, https, tcp, dns, exec, udp, ping, smtp or file", s.Type)
	}
	for i, k := range kinds {
		if i != own && k.set(s) {
			return nil, fmt.Errorf("%s settings given for a %s check", k.settings, s.Type)
		}
	}
	p, err := kinds[own].build(s)
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
		method := s.HTTP.Method
		if method == "" {
			method = "GET"
		}
		return fmt.Sprintf("%s %s %s", s.Type, method, path)
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
	case TypeUDP:
		if s.UDP.requiresReply() {
			return "udp send/reply"
		}
		return "udp send"
	case TypeSMTP:
		if s.SMTP.StartTLS {
			return "smtp STARTTLS"
		}
		return "smtp HELO"
	case TypeFile:
		return "file " + s.File.Path
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
	if s.Type != TypeExec && s.Type != TypeFile {
		if !addr.IsValid() {
			return Target{}, errors.New("no address to connect to")
		}
		if port == 0 && s.Type != TypePing {
			return Target{}, errors.New("no port to connect to: set connect_port")
		}
		if s.Source.IsValid() && s.Source.Is4() != addr.Unmap().Is4() {
			return Target{}, fmt.Errorf("source %s cannot reach %s", s.Source, addr)
		}
	}
	return Target{Addr: netip.AddrPortFrom(addr.Unmap(), port), Source: s.Source, Server: c.Server}, nil
}
