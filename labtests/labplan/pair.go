package labplan

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/director-lb/director/internal/pairtls"
	"github.com/director-lb/director/labtests/uml"
)

// The pair API in the lab: each director listens on its own eth0 address
// over mutual TLS and syncs with the other; the HTTP service takes
// registrations from the segment (over TLS, trusting the pair's CA).
const (
	APIPort       = 9310
	PeerToken     = "lab-peer-secret-0123456789"
	RegisterToken = "lab-register-secret-0123456789"
)

// APIAddr is node's api.listen.
func APIAddr(node string) string {
	h, _ := HostByName(node)
	return fmt.Sprintf("%s:%d", h.IPv4.Addr(), APIPort)
}

// TokenFile is where node's daemon reads the named token (peer, register).
func TokenFile(node, name string) string { return path.Join("/run", node, name+".token") }

// PairDir is where node's daemon reads its TLS files: ca.crt, NODE.crt,
// NODE.key.
func PairDir(node string) string { return path.Join("/run", node, "pair") }

// pairCerts is the lab pair's CA and the directors' certificates, made
// once per process by director pair-cert's own code, for the address each
// listens on.
var pairCerts = sync.OnceValues(func() (pairtls.PairFiles, error) {
	var nodes []pairtls.Node
	for _, n := range []string{LB1, LB2} {
		h, _ := HostByName(n)
		nodes = append(nodes, pairtls.Node{Name: n, Hosts: []string{h.IPv4.Addr().String()}})
	}
	return pairtls.Generate(nil, nil, nodes, time.Now(), 7*24*time.Hour)
})

// PairCAFile is the pair's CA certificate in the guest's run directory,
// for clients that register (curl --cacert).
func PairCAFile() string { return path.Join(uml.GuestOut, "pair-ca.crt") }

// PairFiles are the plan files holding the pair's certificates and keys
// (written into the run directory; WriteTokensArgv installs each node's
// own, mode 0600, before the daemons start).
func PairFiles() (map[string]string, error) {
	pf, err := pairCerts()
	if err != nil {
		return nil, fmt.Errorf("pair certificates: %w", err)
	}
	out := map[string]string{"pair-ca.crt": string(pf.CACert)}
	for _, n := range pf.Nodes {
		out["pair-"+n.Name+".crt"], out["pair-"+n.Name+".key"] = string(n.Cert), string(n.Key)
	}
	return out, nil
}

// WriteTokensArgv is a shell command, run in the guest before the daemons
// start, that writes node's token files and installs its TLS files from
// the run directory, all mode 0600.
func WriteTokensArgv(node string) []string {
	dir, out := PairDir(node), uml.GuestOut
	return []string{"sh", "-c", fmt.Sprintf("mkdir -p %s && umask 077 && printf %%s %s > %s && printf %%s %s > %s && "+
		"install -m 600 %s/pair-ca.crt %s/ca.crt && install -m 600 %s/pair-%s.crt %s/%s.crt && install -m 600 %s/pair-%s.key %s/%s.key",
		dir, PeerToken, TokenFile(node, "peer"), RegisterToken, TokenFile(node, "register"),
		out, dir, out, node, dir, node, out, node, dir, node)}
}

// directorPair renders node's pairing: name, API listener, peer, tokens
// and TLS files.
func directorPair(b *strings.Builder, node string) {
	fmt.Fprintf(b, "node: %s\napi:\n  listen: %s\n  peer: %s\n", node, APIAddr(node), APIAddr(peer(node)))
	fmt.Fprintf(b, "  peer_token_file: %s\n  registration_token_file: %s\n  sync_interval: 1s\n", TokenFile(node, "peer"), TokenFile(node, "register"))
	dir := PairDir(node)
	fmt.Fprintf(b, "  tls:\n    cert_file: %s/%s.crt\n    key_file: %s/%s.key\n    ca_file: %s/ca.crt\n", dir, node, dir, node, dir)
}

// DecisionsFile is node's runtime decision store inside the guest: the
// nodes share the guest's file system, so each needs its own path.
func DecisionsFile(node string) string { return "/run/" + node + "/decisions.json" }
