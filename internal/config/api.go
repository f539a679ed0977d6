package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// API is director's HTTP listener for its peer and its real servers; off
// unless Listen is set.
type API struct {
	// Listen is host:port on the load balancers' own network.
	Listen string `yaml:"listen,omitempty"`
	// Peer is the other director's api.listen. With it the pair replicate
	// runtime decisions and compare configuration hashes.
	Peer string `yaml:"peer,omitempty"`
	// PeerTokenFile holds the secret both nodes share (mode 0600).
	PeerTokenFile string `yaml:"peer_token_file,omitempty"`
	// SyncInterval is how often the pair exchange state when nothing changed.
	SyncInterval Duration `yaml:"sync_interval,omitempty"`
	// RegistrationTokenFile, if set, enables /v1/register and
	// /v1/deregister for real servers that present this token.
	RegistrationTokenFile string `yaml:"registration_token_file,omitempty"`
	// TLS serves the API over TLS 1.3: the peer authenticates with its
	// certificate (mutual TLS), real servers registering need only trust
	// the CA. Required unless Insecure.
	TLS *APITLS `yaml:"tls,omitempty"`
	// Insecure serves plain HTTP: the bearer tokens cross the network in
	// the clear. Only where the network is trusted.
	Insecure bool `yaml:"insecure,omitempty"`
}

// APITLS is the node's TLS material for the pair API (see director
// pair-cert).
type APITLS struct {
	// CertFile and KeyFile are this node's certificate and key (the key
	// root's, mode 0600); the certificate names the address peers and
	// real servers reach api.listen at.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// CAFile is the pair's CA: the peer's certificate must chain to it.
	CAFile string `yaml:"ca_file,omitempty"`
	// PeerSHA256, if set, pins the peer's certificate: its SHA-256 (hex,
	// as director pair-cert prints it).
	PeerSHA256 string `yaml:"peer_sha256,omitempty"`
}

// Registration lets real servers join a service's pool themselves.
type Registration struct {
	// Allowed are the prefixes a registered address must be in.
	Allowed []string `yaml:"allowed,omitempty"`
	// MaxWeight caps a registration's weight (default 100).
	MaxWeight int `yaml:"max_weight,omitempty"`
	// MaxServers caps the registrations the service keeps (default 1000).
	MaxServers int `yaml:"max_servers,omitempty"`

	Prefixes []netip.Prefix `yaml:"-"`
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

// DefaultSyncInterval is api.sync_interval when unset.
const DefaultSyncInterval = 5 * time.Second

// DefaultRegistrationMaxWeight is registration.max_weight when unset.
const DefaultRegistrationMaxWeight = 100

// nodeNameFrom makes a host name a node name: other characters become
// '-', the length is capped, and an empty one is "director".
func nodeNameFrom(host string) string {
	b := []byte(host)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '.' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 255 {
		b = b[:255]
	}
	if len(b) == 0 {
		return "director"
	}
	return string(b)
}

func (c *checker) api(cfg *Config) {
	// The node signs its runtime decisions; the decision store takes only
	// names of nodeNameRE's alphabet.
	if cfg.Node == "" {
		// The peer needs a name that differs from its own; the host name
		// does, on a pair of machines. A host name outside the alphabet
		// (a machine without one says "(none)") is made to fit: it is
		// no mistake of the configuration's.
		h, _ := os.Hostname()
		cfg.Node = nodeNameFrom(h)
	} else if !nodeNameRE.MatchString(cfg.Node) {
		c.errf("node", "%q: use 1-255 letters, digits, '_', '.' or '-'", cfg.Node)
	}
	a := &cfg.API
	hostPort := func(field, v string) {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			c.errf(field, "%q is not host:port (like 10.0.0.11:9310)", v)
		}
	}
	if a.Listen != "" {
		hostPort("api.listen", a.Listen)
	}
	if a.Peer != "" {
		hostPort("api.peer", a.Peer)
		if a.Listen == "" {
			c.errf("api.peer", "needs api.listen: the peer syncs with this node's listener too")
		}
		if a.PeerTokenFile == "" {
			c.errf("api.peer_token_file", "required with api.peer: the pair authenticate each other with it")
		}
	}
	for field, p := range map[string]string{"api.peer_token_file": a.PeerTokenFile, "api.registration_token_file": a.RegistrationTokenFile} {
		if p != "" && !filepath.IsAbs(p) {
			c.errf(field, "%q must be an absolute path", p)
		}
	}
	if a.RegistrationTokenFile != "" && a.Listen == "" {
		c.errf("api.registration_token_file", "needs api.listen to serve registrations")
	}
	c.apiTLS(cfg)
	if !c.set("api.sync_interval") {
		a.SyncInterval = Duration(DefaultSyncInterval)
	} else if a.SyncInterval.D() < 100*time.Millisecond {
		c.errf("api.sync_interval", "%s is shorter than 100ms", a.SyncInterval.D())
	}
}

// apiTLS checks api.tls and api.insecure. A listener needs one of them:
// plain HTTP is an explicit choice. The error says exactly what to do.
func (c *checker) apiTLS(cfg *Config) {
	a := &cfg.API
	t := a.TLS
	switch {
	case a.Listen == "":
		if t != nil || a.Insecure {
			c.errf("api.listen", "api.tls and api.insecure need api.listen")
		}
		return
	case t != nil && a.Insecure:
		c.errf("api.insecure", "set api.tls or api.insecure, not both")
		return
	case t == nil && !a.Insecure:
		host, _, _ := net.SplitHostPort(a.Listen)
		peerHost, _, _ := net.SplitHostPort(a.Peer)
		if peerHost == "" {
			peerHost = "PEER_ADDRESS"
		}
		node := cfg.Node
		if node == "" {
			node = "THIS_NODE"
		}
		c.errf("api.tls", "the pair API is plain HTTP without it: run once, on any host: "+
			"director pair-cert -dir /etc/director/pair %s=%s PEER_NODE=%s; "+
			"copy ca.crt, %s.crt and %s.key to this node (PEER_NODE's to the peer; keep ca.key off both) and set "+
			"api.tls: {cert_file: /etc/director/pair/%s.crt, key_file: /etc/director/pair/%s.key, ca_file: /etc/director/pair/ca.crt}; "+
			"or, on a network you trust, set api.insecure: true to keep plain HTTP",
			node, host, peerHost, node, node, node, node)
		return
	case a.Insecure:
		return
	}
	for field, p := range map[string]string{"api.tls.cert_file": t.CertFile, "api.tls.key_file": t.KeyFile, "api.tls.ca_file": t.CAFile} {
		switch {
		case p == "":
			c.errf(field, "required in api.tls (director pair-cert makes the files)")
		case !filepath.IsAbs(p):
			c.errf(field, "%q must be an absolute path", p)
		}
	}
	if t.PeerSHA256 != "" {
		h := strings.ToLower(strings.ReplaceAll(t.PeerSHA256, ":", ""))
		if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
			c.errf("api.tls.peer_sha256", "%q is not a SHA-256 fingerprint (64 hex digits, as director pair-cert prints it)", t.PeerSHA256)
		}
	}
}

// apiListen refuses an api.listen that is not this node's own address: on
// a wildcard or a VIP, the master would answer on the public VIP. vips
// are the instances' addresses; services' VIPs are checked too.
func (c *checker) apiListen(cfg *Config, vips map[netip.Addr]string) {
	l := cfg.API.Listen
	if l == "" {
		return
	}
	host, _, err := net.SplitHostPort(l)
	if err != nil {
		return // reported by api
	}
	if host == "" {
		c.errf("api.listen", "%q is a wildcard: it would answer on every address, the VIPs included; give this node's own address, like 10.0.0.11:9310", l)
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		c.errf("api.listen", "%q: give this node's own IP address, not a name (a name may resolve to a VIP or a wildcard)", l)
		return
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		c.errf("api.listen", "%q is a wildcard: it would answer on every address, the VIPs included; give this node's own address, like 10.0.0.11:9310", l)
	case vips[a] != "":
		c.errf("api.listen", "%s is a VIP of %s: the master would answer on it; give this node's own address", a, vips[a])
	default:
		for i, s := range cfg.Services {
			if s.Addr == a {
				c.errf("api.listen", "%s is the VIP of services[%d] (%s): the master would answer on it; give this node's own address", a, i, s.Name)
				return
			}
		}
	}
}

func (c *checker) registration(f string, s *Service) {
	r := s.Registration
	if r.MaxWeight == 0 {
		r.MaxWeight = DefaultRegistrationMaxWeight
	} else if r.MaxWeight < 0 || r.MaxWeight > 65535 {
		c.errf(f+".max_weight", "must be 1-65535, got %d", r.MaxWeight)
	}
	switch {
	case !c.set(f + ".max_servers"):
		r.MaxServers = DefaultRegistrationServers
	case r.MaxServers < 1 || r.MaxServers > MaxDecisionEntries:
		c.errf(f+".max_servers", "must be 1-%d, got %d", MaxDecisionEntries, r.MaxServers)
	}
	switch {
	case s.FWMark != 0:
		c.errf(f, "a firewall-mark service has no port for registrations to match")
	case s.IsGroup() && s.Port == 0:
		c.errf(f, "the group's members have no one port for registrations to match")
	}
	if len(r.Allowed) == 0 {
		c.errf(f+".allowed", "list the prefixes registered real servers may use")
	}
	r.Prefixes = r.Prefixes[:0]
	for i, a := range r.Allowed {
		p, err := netip.ParsePrefix(a)
		switch {
		case err != nil:
			c.errf(fmt.Sprintf("%s.allowed[%d]", f, i), "%q is not a prefix like 10.0.0.0/24", a)
		case s.AddrFamily != 0 && family(p.Addr()) != s.AddrFamily:
			c.errf(fmt.Sprintf("%s.allowed[%d]", f, i), "%s is not the same address family as the service", p)
		default:
			r.Prefixes = append(r.Prefixes, p.Masked())
		}
	}
}

// PairHash is a digest of the part of the configuration both nodes of a
// pair must share: instances (without what is per node: priority,
// interface, unicast addresses, notify, tracking, EC2 identity), the
// services and the sync groups. Peers compare it to notice a pair that has
// drifted apart.
func PairHash(cfg *Config) string {
	type inst struct {
		Name, Version, AuthPass string
		VRID                    int
		Advert                  time.Duration
		VIPs                    []string
		Unicast                 bool
	}
	view := struct {
		Instances []inst
		Services  []Service
		Sysctl    map[string]int
		// Both nodes must group alike; omitted when empty so that the
		// hash of a configuration without groups is unchanged.
		SyncGroups []SyncGroup `json:",omitempty"`
	}{Services: cfg.Services, Sysctl: cfg.IPVS.Sysctl, SyncGroups: cfg.SyncGroups}
	for _, in := range cfg.Instances {
		view.Instances = append(view.Instances, inst{
			Name: in.Name, Version: fmt.Sprint(in.Version), AuthPass: in.AuthPass, VRID: in.VRID,
			Advert: in.AdvertInterval.D(), VIPs: in.VIPs, Unicast: in.Unicast != nil,
		})
	}
	// Marshalling plain structs, slices and maps cannot fail, and map
	// keys come out sorted, so equal configurations hash equal.
	b, _ := json.Marshal(view)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
