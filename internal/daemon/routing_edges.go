package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/director-lb/director/internal/apiauth"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/internal/routing/gobgp"
)

// ensureRoutingDevice is the real EnsureRoutingDevice: in this network
// namespace, with /proc/sys for arp_ignore.
func ensureRoutingDevice(name string, addrs []netip.Addr) (RoutingDevice, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	d, err := routing.EnsureDevice(h, name, addrs, "/proc/sys")
	if err != nil {
		h.Close()
		return nil, err
	}
	return d, nil
}

// newAnnouncer is the real NewAnnouncer: GoBGP for mode bgp, a kernel
// table for mode table.
func newAnnouncer(ctx context.Context, r *config.Routing, log *slog.Logger) (routing.Announcer, error) {
	if r.Mode == "table" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return routing.NewTable(h, r, log), nil
	}
	sp, err := gobgp.New(ctx, r, gobgp.Options{Logger: log, ReadPassword: ReadBGPPassword})
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// maxPasswordFile bounds a password file: a TCP MD5 key is at most 80 bytes.
const maxPasswordFile = 1024

// ReadBGPPassword reads a peer's password file with the checks of every
// secret file (root's, mode 0600), trimming surrounding whitespace. The
// password itself appears in no error.
func ReadBGPPassword(path string) (string, error) {
	b, err := apiauth.ReadSecretFile(path, maxPasswordFile)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" || len(pw) > 80 {
		return "", fmt.Errorf("%s: a TCP MD5 password is 1-80 bytes, got %d", path, len(pw))
	}
	return pw, nil
}

// CheckRoutingSecrets reads every peer's password file as the daemon
// will, so that validate and a reload refuse what a start would.
func CheckRoutingSecrets(cfg *config.Config) error {
	r := cfg.Routing
	if r == nil || r.Mode != "bgp" {
		return nil
	}
	for i, p := range r.Peers {
		if p.PasswordFile == "" {
			continue
		}
		if _, err := ReadBGPPassword(p.PasswordFile); err != nil {
			return fmt.Errorf("routing.peers[%d].password_file: %w", i, err)
		}
	}
	return nil
}
