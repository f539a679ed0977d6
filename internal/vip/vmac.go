package vip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VMACConfig describes the virtual-MAC interface of one VRRP instance
// (keepalived's use_vmac): a macvlan on Parent whose MAC is the VRRP
// virtual router MAC, so that a takeover changes no neighbour's ARP entry,
// only the switches' MAC tables.
type VMACConfig struct {
	Name   string // e.g. vrrp.51
	Parent string // the VRRP interface
	VRID   uint8
	IPv6   bool // the instance's family is IPv6 (the MAC is 00:00:5e:00:02:VRID)
	// KeepIPv6 leaves IPv6 on for an IPv4 instance (it has IPv6 VIPs);
	// otherwise IPv6 is off on the macvlan, so it sends nothing of its own.
	KeepIPv6 bool
	Logger   *slog.Logger
}

// VMACAddr is the VRRP virtual router MAC (RFC 5798 7.3):
// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
func VMACAddr(vrid uint8, ipv6 bool) net.HardwareAddr {
	fam := byte(1)
	if ipv6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, vrid}
}

// VMAC is a created (or adopted) virtual-MAC interface. It stays up from
// EnsureVMAC to Remove, across mastership changes: the VIPs on it come and
// go, as on any other interface.
type VMAC struct {
	cfg     VMACConfig
	restore map[string]string // parent sysctl path -> value before us
}

// EnsureVMAC creates the macvlan (mode private, as keepalived: it does not
// talk to its siblings on the parent), or adopts one of that name with the
// right parent and MAC, and brings it up. One of that name that is not a
// macvlan is refused; a macvlan with another parent or MAC is replaced.
//
// IPv4 needs these settings, which it makes: on the macvlan arp_ignore=1
// (answer ARP only for its own addresses, the VIPs), accept_local=1 and
// rp_filter=0 (it has no address of the subnet, yet receives adverts);
// on the parent arp_ignore=1 and arp_filter=1, so that the parent does not
// answer for the VIPs with its own MAC. Remove puts the parent's back.
func EnsureVMAC(cfg VMACConfig) (*VMAC, error) {
	if err := checkIfName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.VRID == 0 {
		return nil, errors.New("vmac: VRID 0")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	parent, err := netlink.LinkByName(cfg.Parent)
	if err != nil {
		return nil, fmt.Errorf("vmac %s: parent %s: %w", cfg.Name, cfg.Parent, err)
	}
	mac := VMACAddr(cfg.VRID, cfg.IPv6)
	link, err := netlink.LinkByName(cfg.Name)
	switch {
	case errors.As(err, new(netlink.LinkNotFoundError)):
		link = nil
	case err != nil:
		return nil, fmt.Errorf("vmac %s: %w", cfg.Name, err)
	default:
		mv, ok := link.(*netlink.Macvlan)
		if !ok {
			return nil, fmt.Errorf("vmac %s: an interface of that name exists and is a %s, not a macvlan", cfg.Name, link.Type())
		}
		if mv.ParentIndex != parent.Attrs().Index || !bytes.Equal(mv.HardwareAddr, mac) || mv.Mode != netlink.MACVLAN_MODE_PRIVATE {
			cfg.Logger.Warn("replacing a macvlan with another parent, MAC or mode", "vmac", cfg.Name)
			if err := netlink.LinkDel(link); err != nil {
				return nil, fmt.Errorf("vmac %s: remove the mismatched one: %w", cfg.Name, err)
			}
			link = nil
		}
	}
	if link == nil {
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: cfg.Name, ParentIndex: parent.Attrs().Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := netlink.LinkAdd(mv); err != nil {
			return nil, fmt.Errorf("vmac %s: create on %s: %w", cfg.Name, cfg.Parent, err)
		}
		if link, err = netlink.LinkByName(cfg.Name); err != nil {
			return nil, fmt.Errorf("vmac %s: %w", cfg.Name, err)
		}
		cfg.Logger.Info("created VMAC interface", "vmac", cfg.Name, "parent", cfg.Parent, "mac", mac)
	}
	v := &VMAC{cfg: cfg, restore: map[string]string{}}
	// No link-local address made from the shared virtual MAC: both nodes
	// would have it (RFC 5798 7.4). Set before up, when it would appear.
	if err := netlink.LinkSetIP6AddrGenMode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return nil, fmt.Errorf("vmac %s: IPv6 address generation off: %w", cfg.Name, err)
	}
	if err := v.sysctls(); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("vmac %s: up: %w", cfg.Name, err)
	}
	if cfg.IPv6 {
		if err := copyLinkLocal(parent, link); err != nil {
			return nil, fmt.Errorf("vmac %s: %w", cfg.Name, err)
		}
	}
	return v, nil
}

// Name is the macvlan's interface name.
func (v *VMAC) Name() string { return v.cfg.Name }

func (v *VMAC) sysctls() error {
	own := []struct{ path, val string }{
		{"ipv4/conf/" + v.cfg.Name + "/arp_ignore", "1"},
		{"ipv4/conf/" + v.cfg.Name + "/accept_local", "1"},
		{"ipv4/conf/" + v.cfg.Name + "/rp_filter", "0"},
	}
	if !v.cfg.IPv6 && !v.cfg.KeepIPv6 {
		own = append(own, struct{ path, val string }{"ipv6/conf/" + v.cfg.Name + "/disable_ipv6", "1"})
	}
	for _, s := range own {
		if err := writeSysctl(s.path, s.val); err != nil {
			return fmt.Errorf("vmac %s: %w", v.cfg.Name, err)
		}
	}
	if v.cfg.IPv6 {
		return nil
	}
	for _, name := range []string{"arp_ignore", "arp_filter"} {
		path := "ipv4/conf/" + v.cfg.Parent + "/" + name
		old, err := readSysctl(path)
		if err != nil {
			return fmt.Errorf("vmac %s: %w", v.cfg.Name, err)
		}
		if old == "1" {
			continue
		}
		if err := writeSysctl(path, "1"); err != nil {
			return fmt.Errorf("vmac %s: %w", v.cfg.Name, err)
		}
		v.restore[path] = old
	}
	return nil
}

// copyLinkLocal gives the macvlan the parent's IPv6 link-local address,
// the source of IPv6 adverts (keepalived does the same), so that adverts
// leave from the virtual MAC with the node's own address.
func copyLinkLocal(parent, link netlink.Link) error {
	addrs, err := netlink.AddrList(parent, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", parent.Attrs().Name, err)
	}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		if !ip.IsLinkLocalUnicast() {
			continue
		}
		ll := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(ip, 64)), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, ll); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add link-local %s: %w", ip, err)
		}
		return nil
	}
	return fmt.Errorf("parent %s has no IPv6 link-local address", parent.Attrs().Name)
}

// Remove deletes the macvlan (its VIPs go with it) and restores the
// parent's ARP settings if no other VRRP virtual-MAC interface remains on
// it. A macvlan already gone counts as removed.
func (v *VMAC) Remove() error {
	var errs []error
	link, err := netlink.LinkByName(v.cfg.Name)
	switch {
	case errors.As(err, new(netlink.LinkNotFoundError)):
	case err != nil:
		errs = append(errs, fmt.Errorf("vmac %s: %w", v.cfg.Name, err))
	default:
		// Only ours: a reload that changed the VRID may have replaced
		// it with the new instance's already.
		if mv, ok := link.(*netlink.Macvlan); ok && bytes.Equal(mv.HardwareAddr, VMACAddr(v.cfg.VRID, v.cfg.IPv6)) {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("vmac %s: remove: %w", v.cfg.Name, err))
			}
		}
	}
	if len(v.restore) > 0 && !otherVMACs(v.cfg.Parent) {
		for path, val := range v.restore {
			if err := writeSysctl(path, val); err != nil {
				errs = append(errs, fmt.Errorf("vmac %s: %w", v.cfg.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// otherVMACs reports whether a VRRP virtual-MAC macvlan is still on parent.
func otherVMACs(parent string) bool {
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return false
	}
	links, err := netlink.LinkList()
	if err != nil {
		return true // unknown: keep the parent's settings, the safe side
	}
	for _, l := range links {
		mv, ok := l.(*netlink.Macvlan)
		if ok && mv.ParentIndex == p.Attrs().Index && len(mv.HardwareAddr) == 6 &&
			bytes.Equal(mv.HardwareAddr[:4], []byte{0x00, 0x00, 0x5e, 0x00}) {
			return true
		}
	}
	return false
}

// Sysctls are read and written through /proc/sys/net of the calling
// thread's network namespace.
func readSysctl(path string) (string, error) {
	b, err := os.ReadFile("/proc/sys/net/" + path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(path, val string) error {
	if err := os.WriteFile("/proc/sys/net/"+path, []byte(val+"\n"), 0o644); err != nil {
		return fmt.Errorf("set %s=%s: %w", path, val, err)
	}
	return nil
}
