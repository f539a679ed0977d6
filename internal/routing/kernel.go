package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/config"
)

// Device is the interface routed VIPs live on, so that IPVS sees them as
// local addresses: lo (the default), or a dummy interface director
// creates and owns. On lo director adds and removes only the VIPs; a
// dummy interface holds the VIPs and nothing else. Neither answers ARP by
// itself, and director sets net.ipv4.conf.all.arp_ignore to 1
// (EnsureDevice's sysctlDir), so that no other interface answers ARP for
// them either: the router reaches them by the routes it learns.
type Device struct {
	h     *netlink.Handle
	name  string
	owned bool // a dummy of director's: every address on it is a VIP
	addrs []netip.Addr
}

// EnsureDevice prepares the interface name on h: lo is used as it is; any
// other name is a dummy interface, created if absent. It brings it up and
// gives it addrs as host addresses. With sysctlDir set (/proc/sys), it
// raises net.ipv4.conf.all.arp_ignore to 1.
func EnsureDevice(h *netlink.Handle, name string, addrs []netip.Addr, sysctlDir string) (*Device, error) {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case name == "lo" && err == nil:
	case errors.As(err, &notFound):
		d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := h.LinkAdd(d); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return nil, fmt.Errorf("create dummy interface %s: this kernel has no dummy interfaces (CONFIG_DUMMY); leave routing.device out to use lo", name)
			}
			return nil, fmt.Errorf("create dummy interface %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return nil, fmt.Errorf("dummy interface %s: %w", name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("interface %s: %w", name, err)
	case link.Type() != "dummy":
		return nil, fmt.Errorf("interface %s exists and is a %s, not a dummy: routing.device must be lo or a dummy director may own", name, link.Type())
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", name, err)
	}
	d := &Device{h: h, name: name, owned: name != "lo"}
	if err := d.SetAddresses(addrs); err != nil {
		return nil, err
	}
	if sysctlDir != "" {
		if err := raiseSysctl(filepath.Join(sysctlDir, "net/ipv4/conf/all/arp_ignore"), 1); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// raiseSysctl sets the integer at path to at least v.
func raiseSysctl(path string, v int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= v {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(v)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SetAddresses makes addrs the device's VIPs (host prefixes): on a dummy
// of director's, its only addresses; on lo, those added and the VIPs set
// before and not now removed.
func (d *Device) SetAddresses(addrs []netip.Addr) error {
	link, err := d.h.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", d.name, err)
	}
	have, err := d.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", d.name, err)
	}
	var errs []error
	present := map[netip.Addr]bool{}
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		if slices.Contains(addrs, ip) && ones == ip.BitLen() {
			present[ip] = true
			continue
		}
		if !d.owned && !slices.Contains(d.addrs, ip) {
			continue // lo's own, or someone else's
		}
		if err := d.h.AddrDel(link, &a); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", a.IPNet, d.name, err))
		}
	}
	for _, a := range addrs {
		if present[a] {
			continue
		}
		na := &netlink.Addr{IPNet: hostNet(a)}
		if a.Is6() {
			na.Flags = unix.IFA_F_NODAD // a host route, no neighbour to ask
		}
		if err := d.h.AddrAdd(link, na); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", a, d.name, err))
		}
	}
	d.addrs = slices.Clone(addrs)
	return errors.Join(errs...)
}

// Remove takes the VIPs off the device (a stop).
func (d *Device) Remove() error { return d.SetAddresses(nil) }

// Index is the interface's index now.
func (d *Device) Index() (int, error) {
	link, err := d.h.LinkByName(d.name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", d.name, err)
	}
	return link.Attrs().Index, nil
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// Table is the Announcer of mode table: the VIP routes, to the device, in
// a kernel routing table of their own with a protocol number of their own,
// for BIRD or FRR to export. Routes of that table and protocol that are not
// wanted are director's leftovers (a crash) and are removed.
type Table struct {
	h   *netlink.Handle
	log *slog.Logger

	mu     sync.Mutex
	cfg    tableConf
	routes []Route
}

type tableConf struct {
	table, proto, metric int
	dev                  string
}

func tableConfOf(r *config.Routing) tableConf {
	return tableConf{table: r.Table, proto: r.Protocol, metric: r.Metric, dev: r.Device}
}

// NewTable installs nothing yet; the first Announce does, and removes
// leftovers of a previous run.
func NewTable(h *netlink.Handle, r *config.Routing, log *slog.Logger) *Table {
	return &Table{h: h, log: log, cfg: tableConfOf(r)}
}

// Announce implements Announcer.
func (t *Table) Announce(_ context.Context, routes []Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.sync(t.cfg, routes); err != nil {
		return err
	}
	t.routes = slices.Clone(routes)
	return nil
}

// sync makes c's table hold exactly routes (of c's protocol).
func (t *Table) sync(c tableConf, routes []Route) error {
	link, err := t.h.LinkByName(c.dev)
	if err != nil {
		return fmt.Errorf("interface %s: %w", c.dev, err)
	}
	var errs []error
	want := map[netip.Prefix]bool{}
	for _, r := range routes {
		want[r.Prefix] = true
		nr := &netlink.Route{
			Dst: hostNet(r.Prefix.Addr()), LinkIndex: link.Attrs().Index, Table: c.table,
			Protocol: netlink.RouteProtocol(c.proto), Priority: c.metric, Scope: netlink.SCOPE_LINK,
		}
		if err := t.h.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("route %s table %d: %w", r.Prefix, c.table, err))
		}
	}
	have, err := t.list(c)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, nr := range have {
		p, ok := prefixOf(nr.Dst)
		if ok && want[p] {
			continue
		}
		if err := t.h.RouteDel(&nr); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s table %d: %w", nr.Dst, c.table, err))
		}
	}
	return errors.Join(errs...)
}

// list is every route of c's table and protocol.
func (t *Table) list(c tableConf) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := t.h.RouteListFiltered(fam, &netlink.Route{Table: c.table, Protocol: netlink.RouteProtocol(c.proto)}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("list routes of table %d: %w", c.table, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Routes lists the routes of the configured table and protocol now, for
// tests and state.
func (t *Table) Routes() ([]netip.Prefix, error) {
	t.mu.Lock()
	c := t.cfg
	t.mu.Unlock()
	rs, err := t.list(c)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range rs {
		if p, ok := prefixOf(r.Dst); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

// Configure implements Announcer: a changed table, protocol, metric or
// device moves the routes (the old ones are removed; the controller
// announces anew).
func (t *Table) Configure(_ context.Context, r *config.Routing) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := tableConfOf(r)
	if c == t.cfg {
		return nil
	}
	if err := t.sync(t.cfg, nil); err != nil {
		t.log.Warn("routing: removing the routes of the old table", "table", t.cfg.table, "err", err)
	}
	t.cfg, t.routes = c, nil
	return nil
}

// Sessions implements Announcer: a table has none.
func (t *Table) Sessions() []Session { return nil }

// Close implements Announcer: every route is removed.
func (t *Table) Close(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.routes = nil
	return t.sync(t.cfg, nil)
}
