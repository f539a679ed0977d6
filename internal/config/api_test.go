package config

import (
	"strings"
	"testing"
)

func TestAPIConfig(t *testing.T) {
	y := svcBase + `    registration: {allowed: [10.0.0.0/24]}
node: lb1
api:
  listen: 10.0.0.11:9310
  peer: 10.0.0.12:9310
  peer_token_file: /etc/director/peer.token
  registration_token_file: /etc/director/register.token
  tls: {cert_file: /etc/director/pair/lb1.crt, key_file: /etc/director/pair/lb1.key, ca_file: /etc/director/pair/ca.crt, peer_sha256: "AB:cd:000000000000000000000000000000000000000000000000000000000000"}
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Services[0].Registration
	if cfg.Node != "lb1" || cfg.API.SyncInterval.D() != DefaultSyncInterval || r.MaxWeight != DefaultRegistrationMaxWeight || len(r.Prefixes) != 1 || r.Prefixes[0].String() != "10.0.0.0/24" {
		t.Errorf("api = %+v node %q registration %+v", cfg.API, cfg.Node, r)
	}
	// A pool that fills itself needs no configured real server.
	empty := strings.Replace(svcBase, "    real_servers:\n      - {address: 10.0.0.21, weight: 3}\n      - {address: 10.0.0.22}\n", "    registration: {allowed: [10.0.0.0/24]}\n", 1)
	if _, err := Parse("d.yaml", []byte(empty)); err != nil {
		t.Errorf("registration pool without real servers: %v", err)
	}
}

func TestAPIConfigBad(t *testing.T) {
	cases := []struct{ add, want string }{
		{"api: {peer: 10.0.0.12:9310}\n", "d.yaml:11: api.peer: needs api.listen"},
		{"api: {listen: 10.0.0.11:9310, peer: 10.0.0.12:9310}\n", "api.peer_token_file: required with api.peer"},
		{"api: {listen: 10.0.0.11:9310, insecure: true, tls: {}}\n", "api.insecure: set api.tls or api.insecure, not both"},
		{"api: {listen: 10.0.0.11:9310, tls: {cert_file: c.crt}}\n", `api.tls.cert_file: "c.crt" must be an absolute path`},
		{"api: {listen: 10.0.0.11:9310, tls: {cert_file: /c.crt}}\n", "api.tls.key_file: required in api.tls"},
		{"api: {listen: 10.0.0.11:9310, tls: {peer_sha256: abc}}\n", `api.tls.peer_sha256: "abc" is not a SHA-256 fingerprint`},
		{"api: {insecure: true}\n", "api.listen: api.tls and api.insecure need api.listen"},
		{"api: {listen: 10.0.0.11}\n", `api.listen: "10.0.0.11" is not host:port`},
		{"api: {listen: '10.0.0.11:9310', registration_token_file: token}\n", `api.registration_token_file: "token" must be an absolute path`},
		{"api: {registration_token_file: /t}\n", "api.registration_token_file: needs api.listen"},
		{"api: {listen: '10.0.0.11:1', sync_interval: 1ms}\n", "api.sync_interval: 1ms is shorter than 100ms"},
		{"node: 'lb 1'\n", `node: "lb 1": use 1-255 letters`},
	}
	for _, tc := range cases {
		_, err := Parse("d.yaml", []byte(svcBase+tc.add))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want %q", tc.add, err, tc.want)
		}
	}
	reg := []struct{ reg, want string }{
		{"{}", "services[0].registration.allowed: list the prefixes"},
		{"{allowed: [10.0.0.0/33]}", `services[0].registration.allowed[0]: "10.0.0.0/33" is not a prefix`},
		{"{allowed: ['fd00::/64']}", "is not the same address family as the service"},
		{"{allowed: [10.0.0.0/24], max_weight: -2}", "registration.max_weight: must be 1-65535"},
	}
	for _, tc := range reg {
		_, err := Parse("d.yaml", []byte(svcBase+"    registration: "+tc.reg+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.reg, err, tc.want)
		}
	}
}

// The pair hash ignores what differs between the two nodes and sees what
// must not.
func TestPairHash(t *testing.T) {
	lb1 := `instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, vips: [10.0.0.100/24], unicast: {source: 10.0.0.11, peers: [10.0.0.12]}}
services:
  - {name: http, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.21}]}
node: lb1
`
	lb2 := strings.NewReplacer("priority: 150", "priority: 100", "source: 10.0.0.11", "source: 10.0.0.12", "peers: [10.0.0.12]", "peers: [10.0.0.11]", "node: lb1", "node: lb2", "eth0", "ens5").Replace(lb1)
	drifted := strings.Replace(lb2, "10.0.0.21", "10.0.0.22", 1)
	hash := func(y string) string {
		cfg, err := Parse("d.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return PairHash(cfg)
	}
	if hash(lb1) != hash(lb2) {
		t.Error("per-node settings changed the pair hash")
	}
	if hash(lb1) == hash(drifted) {
		t.Error("a different real server left the pair hash unchanged")
	}
}

// The example pair's files differ only where a pair may differ.
func TestExamplePairHash(t *testing.T) {
	var hashes []string
	for _, f := range []string{"../../configs/dsr-lb1.yaml", "../../configs/dsr-lb2.yaml"} {
		cfg, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, PairHash(cfg))
	}
	if hashes[0] != hashes[1] {
		t.Error("configs/dsr-lb1.yaml and dsr-lb2.yaml hash differently: the peer check would report them")
	}
}

// Runtime decisions outlive a reboot: they are kept under systemd's
// StateDirectory, not beside the IPVS ownership file on the /run tmpfs.
func TestDecisionsLiveInStateDirectory(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(svcBase))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.DecisionsFile(); got != "/var/lib/director/decisions.json" {
		t.Errorf("decisions file %q, want /var/lib/director/decisions.json", got)
	}
}

// registration.max_servers and decisions.max_entries have defaults and bounds.
func TestDecisionLimits(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(svcBase+"    registration: {allowed: [10.0.0.0/24]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Decisions.MaxEntries != DefaultDecisionEntries || cfg.Services[0].Registration.MaxServers != DefaultRegistrationServers {
		t.Errorf("defaults: %+v, max_servers %d", cfg.Decisions, cfg.Services[0].Registration.MaxServers)
	}
	for add, want := range map[string]string{
		"    registration: {allowed: [10.0.0.0/24], max_servers: 0}\n": "registration.max_servers: must be 1-6000",
		"decisions: {max_entries: 7000}\n":                             "decisions.max_entries: must be 1-6000",
		"decisions: {file: decisions.json}\n":                          `decisions.file: "decisions.json" must be an absolute path`,
	} {
		if _, err := Parse("d.yaml", []byte(svcBase+add)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", add, err, want)
		}
	}
}

// The API must listen on this node's own address: a wildcard, or a VIP,
// would have the master answer on the public VIP.
func TestAPIListenNotWildcardOrVIP(t *testing.T) {
	for listen, want := range map[string]string{
		":9310":           "wildcard",
		"0.0.0.0:9310":    "wildcard",
		"[::]:9310":       "wildcard",
		"10.0.0.100:9310": "VIP",
		"lb1.local:9310":  "IP address",
	} {
		_, err := Parse("d.yaml", []byte(svcBase+"api: {listen: '"+listen+"'}\n"))
		if err == nil || !strings.Contains(err.Error(), "api.listen") || !strings.Contains(err.Error(), want) {
			t.Errorf("listen %s: %v, want an api.listen error mentioning %q", listen, err, want)
		}
	}
}

// The pair API is not plain HTTP unless asked for: a peer needs
// certificates (api.tls) or an explicit api.insecure, and the error says
// exactly what to do.
func TestAPINeedsTLSOrInsecure(t *testing.T) {
	y := svcBase + "node: lb1\napi: {listen: '10.0.0.11:9310', peer: '10.0.0.12:9310', peer_token_file: /etc/director/peer.token}\n"
	_, err := Parse("d.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "director pair-cert") || !strings.Contains(err.Error(), "insecure: true") {
		t.Errorf("plain HTTP pair: %v, want an error naming director pair-cert and insecure: true", err)
	}
}

// A host name outside the node alphabet is made to fit, never an error:
// a machine without a host name says "(none)".
func TestNodeNameFromHost(t *testing.T) {
	for host, want := range map[string]string{"lb1": "lb1", "(none)": "-none-", "": "director", "a b.c": "a-b.c"} {
		got := nodeNameFrom(host)
		if got != want || !nodeNameRE.MatchString(got) {
			t.Errorf("nodeNameFrom(%q) = %q, want %q in the alphabet", host, got, want)
		}
	}
	if got := nodeNameFrom(strings.Repeat("x", 300)); len(got) != 255 {
		t.Errorf("a 300-byte host name gives %d bytes", len(got))
	}
}
