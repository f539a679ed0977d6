// Package vip moves a VRRP instance's virtual addresses onto or off this
// node and tells the segment about it.
//
// Local adds the addresses to the segment interface with netlink and
// announces them with gratuitous ARP (IPv4) and unsolicited Neighbour
// Advertisements (IPv6), so that neighbours which still point the VIP at the
// old master switch to this node at once. WatchCarrier reports the segment
// interface's carrier so that the VRRP side can react to a pulled cable.
package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Defaults applied by NewLocal to zero Config fields.
const (
	// DefaultCount matches keepalived's garp_master_repeat.
	DefaultCount = 5
	// DefaultSpacing leaves a little room between the announcements of a
	// burst, so that a congested switch port or a receiver that is busy
	// processing the first one does not drop the whole burst at once, while
	// a 5-packet burst still completes within 50 ms.
	DefaultSpacing = 10 * time.Millisecond
)

// Errors returned by Local.
var (
	// ErrNotHeld is returned by Announce when the addresses are not held:
	// announcing them would pull traffic to a node that does not accept it.
	ErrNotHeld = errors.New("vip: addresses not held")
	// ErrClosed is returned by Take and Announce after Close.
	ErrClosed = errors.New("vip: mover closed")
)

// Config describes the addresses of one VRRP instance and how to announce them.
type Config struct {
	// Interface is the segment interface the addresses live on.
	Interface string
	// Addresses are the virtual addresses with the prefix length they are
	// added with, e.g. 10.0.0.100/24 or 2001:db8::100/64. ParseAddress
	// turns a bare address into a /32 or /128.
	Addresses []netip.Prefix
	// Elsewhere are addresses on other interfaces than Interface, each
	// added to and announced on its own interface (keepalived's
	// "dev IFACE"). Only NewSet takes them.
	Elsewhere []Placed
	// Routes and Rules are installed after the addresses and removed
	// before them (keepalived's virtual_routes and virtual_rules). Only
	// NewSet takes them.
	Routes []Route
	Rules  []Rule
	// Count is the number of announcements per burst (DefaultCount if 0).
	Count int
	// Spacing is the pause between announcements of a burst
	// (DefaultSpacing if 0; there is no way to ask for back-to-back).
	Spacing time.Duration
	// Refresh, if > 0, makes Local re-announce every Refresh while it holds
	// the addresses (like keepalived's garp_master_refresh).
	Refresh time.Duration
	// Label is an optional IFA_LABEL for the IPv4 addresses, e.g. "eth0:vip".
	// The kernel expects it to start with the interface name; IPv6 has no
	// labels, so it is ignored there.
	Label string
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
}

// Placed is a virtual address on a named interface.
type Placed struct {
	Prefix    netip.Prefix
	Interface string
}

// ParseAddress parses "10.0.0.100/24" or "2001:db8::100/64"; a bare address
// becomes a /32 or /128. The host part is kept, since it is the address.
func ParseAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parse virtual address %q: %w", s, err)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse virtual address %q: %w", s, err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ifNameMax is IFNAMSIZ without the terminating NUL.
const ifNameMax = 15

// withDefaults validates cfg and returns a copy with defaults applied.
func (cfg Config) withDefaults() (Config, error) {
	if err := checkIfName(cfg.Interface); err != nil {
		return cfg, err
	}
	// No addresses is fine: an instance without VIPs (its hooks move
	// something else) still has a mover, and a reload may add some.
	seen := make(map[netip.Addr]bool, len(cfg.Addresses))
	addrs := make([]netip.Prefix, 0, len(cfg.Addresses))
	for _, p := range cfg.Addresses {
		if err := checkVIP(p); err != nil {
			return cfg, fmt.Errorf("vip on %s: %w", cfg.Interface, err)
		}
		// The kernel keys addresses by IP (IPv6) or IP+prefix (IPv4); the
		// same IP twice is a configuration mistake either way.
		if seen[p.Addr()] {
			return cfg, fmt.Errorf("vip on %s: address %s listed twice", cfg.Interface, p.Addr())
		}
		seen[p.Addr()] = true
		addrs = append(addrs, p)
	}
	cfg.Addresses = addrs
	switch {
	case cfg.Count < 0:
		return cfg, fmt.Errorf("vip on %s: negative count %d", cfg.Interface, cfg.Count)
	case cfg.Count == 0:
		cfg.Count = DefaultCount
	}
	switch {
	case cfg.Spacing < 0:
		return cfg, fmt.Errorf("vip on %s: negative spacing %s", cfg.Interface, cfg.Spacing)
	case cfg.Spacing == 0:
		cfg.Spacing = DefaultSpacing
	}
	if cfg.Refresh < 0 {
		return cfg, fmt.Errorf("vip on %s: negative refresh %s", cfg.Interface, cfg.Refresh)
	}
	if cfg.Label != "" {
		if len(cfg.Label) > ifNameMax {
			return cfg, fmt.Errorf("vip on %s: label %q longer than %d bytes", cfg.Interface, cfg.Label, ifNameMax)
		}
		// The kernel derives alias interfaces ("eth0:vip") from labels, and
		// ifconfig-era tools break on labels of other interfaces.
		if !strings.HasPrefix(cfg.Label, cfg.Interface) {
			return cfg, fmt.Errorf("vip on %s: label %q must start with the interface name", cfg.Interface, cfg.Label)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func checkIfName(name string) error {
	switch {
	case name == "":
		return errors.New("vip: no interface")
	case len(name) > ifNameMax:
		return fmt.Errorf("vip: interface name %q longer than %d bytes", name, ifNameMax)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("vip: invalid interface name %q", name)
	}
	return nil
}

func checkVIP(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid address %s", p)
	case a.Zone() != "":
		return fmt.Errorf("address %s: zones are not allowed", p)
	case a.Is4In6():
		return fmt.Errorf("address %s: use the plain IPv4 form", p)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return fmt.Errorf("address %s: not a unicast address", p)
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("address %s: not a unicast address", p)
	}
	return nil
}
