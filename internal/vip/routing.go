package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is a route that follows mastership (keepalived's virtual_routes).
type Route struct {
	To     netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Via    netip.Addr   // invalid: a direct route on Dev
	Dev    string       // empty: the kernel picks by Via
	Table  int          // 0: main
	Metric int
	Src    netip.Addr // invalid: none
}

func (r Route) String() string {
	s := r.To.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return fmt.Sprintf("%s table %d metric %d", s, tableOf(r.Table), r.Metric)
}

// Rule is a policy routing rule that follows mastership (keepalived's
// virtual_rules).
type Rule struct {
	From, To netip.Prefix // invalid: any
	Table    int          // required
	Priority int          // 0: the kernel picks
	Family   int          // 4 or 6; used when From and To are both unset
}

func (r Rule) String() string {
	s := "from all"
	if r.From.IsValid() {
		s = "from " + r.From.String()
	}
	if r.To.IsValid() {
		s += " to " + r.To.String()
	}
	return fmt.Sprintf("%s table %d priority %d", s, r.Table, r.Priority)
}

func tableOf(t int) int {
	if t == 0 {
		return unix.RT_TABLE_MAIN
	}
	return t
}

// routing adds and removes an instance's routes and rules. Calls come
// from Set, which serialises them.
type routing struct {
	routes []Route
	rules  []Rule
	log    *slog.Logger
}

func (r Route) family() int {
	if r.To.Addr().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// netlinkRoute builds r for the kernel; dev is looked up now, since an
// interface may come and go.
func (r Route) netlinkRoute() (*netlink.Route, error) {
	nr := &netlink.Route{
		Family:   r.family(),
		Dst:      prefixToIPNet(r.To.Masked()),
		Table:    tableOf(r.Table),
		Priority: r.Metric,
	}
	if r.Via.IsValid() {
		nr.Gw = net.IP(r.Via.AsSlice())
	} else {
		// As ip(8) does for a route without a gateway.
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Src.IsValid() {
		nr.Src = net.IP(r.Src.AsSlice())
	}
	if r.Dev != "" {
		link, err := netlink.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	return nr, nil
}

func (r Rule) netlinkRule() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.Family == 6 || r.From.IsValid() && r.From.Addr().Is6() || r.To.IsValid() && r.To.Addr().Is6() {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Table = r.Table
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	if r.From.IsValid() {
		nr.Src = prefixToIPNet(r.From.Masked())
	}
	if r.To.IsValid() {
		nr.Dst = prefixToIPNet(r.To.Masked())
	}
	return nr
}

// add installs every route, then every rule; one that is already there
// counts as added.
func (rt *routing) add() error {
	var errs []error
	var added []string
	for _, r := range rt.routes {
		nr, err := r.netlinkRoute()
		if err == nil {
			err = netlink.RouteAdd(nr)
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add route %s: %w", r, err))
			continue
		}
		added = append(added, r.String())
	}
	for _, r := range rt.rules {
		err := netlink.RuleAdd(r.netlinkRule())
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add rule %s: %w", r, err))
			continue
		}
		added = append(added, "rule "+r.String())
	}
	if len(added) > 0 {
		rt.log.Info("took virtual routes", "routes", added)
	}
	return errors.Join(errs...)
}

// remove deletes the rules, then the routes, in reverse order; one that is
// already gone (or whose interface is) counts as removed.
func (rt *routing) remove() error {
	var errs []error
	for i := len(rt.rules) - 1; i >= 0; i-- {
		r := rt.rules[i]
		err := netlink.RuleDel(r.netlinkRule())
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove rule %s: %w", r, err))
		}
	}
	for i := len(rt.routes) - 1; i >= 0; i-- {
		r := rt.routes[i]
		nr, err := r.netlinkRoute()
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			continue // the interface went, and its routes with it
		}
		if err == nil {
			err = netlink.RouteDel(nr)
		}
		if err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", r, err))
		}
	}
	if len(rt.routes)+len(rt.rules) > 0 {
		rt.log.Info("released virtual routes", "routes", len(rt.routes), "rules", len(rt.rules))
	}
	return errors.Join(errs...)
}

// present reports whether every route and rule is installed now.
func (rt *routing) present() (bool, error) {
	for _, r := range rt.routes {
		nr, err := r.netlinkRoute()
		if err != nil {
			return false, nil
		}
		mask := uint64(netlink.RT_FILTER_TABLE | netlink.RT_FILTER_DST)
		if nr.Gw != nil {
			mask |= netlink.RT_FILTER_GW
		}
		if nr.LinkIndex != 0 {
			mask |= netlink.RT_FILTER_OIF
		}
		got, err := netlink.RouteListFiltered(nr.Family, nr, mask)
		if err != nil {
			return false, fmt.Errorf("list routes: %w", err)
		}
		if len(got) == 0 {
			return false, nil
		}
	}
	for _, r := range rt.rules {
		nr := r.netlinkRule()
		mask := uint64(netlink.RT_FILTER_TABLE)
		if nr.Src != nil {
			mask |= netlink.RT_FILTER_SRC
		}
		if nr.Dst != nil {
			mask |= netlink.RT_FILTER_DST
		}
		if nr.Priority > 0 {
			mask |= netlink.RT_FILTER_PRIORITY
		}
		got, err := netlink.RuleListFiltered(nr.Family, nr, mask)
		if err != nil {
			return false, fmt.Errorf("list rules: %w", err)
		}
		if len(got) == 0 {
			return false, nil
		}
	}
	return true, nil
}
