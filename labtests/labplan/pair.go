package labplan

import (
	"fmt"
	"path"
	"strings"
)

// The pair API in the lab: each director listens on its own eth0 address
// and syncs with the other; the HTTP service takes registrations from the
// segment.
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

// WriteTokensArgv is a shell command, run in the guest before the daemons
// start, that writes node's token files with mode 0600.
func WriteTokensArgv(node string) []string {
	return []string{"sh", "-c", fmt.Sprintf("mkdir -p /run/%s && umask 077 && printf %%s %s > %s && printf %%s %s > %s",
		node, PeerToken, TokenFile(node, "peer"), RegisterToken, TokenFile(node, "register"))}
}

// directorPair renders node's pairing: name, API listener, peer and tokens.
func directorPair(b *strings.Builder, node string) {
	fmt.Fprintf(b, "node: %s\napi:\n  listen: %s\n  peer: %s\n", node, APIAddr(node), APIAddr(peer(node)))
	fmt.Fprintf(b, "  peer_token_file: %s\n  registration_token_file: %s\n  sync_interval: 1s\n", TokenFile(node, "peer"), TokenFile(node, "register"))
}
