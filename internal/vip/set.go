package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Set is the vrrp.Mover for an instance whose addresses live on more than
// one interface: one Local per interface, moved together. Announcements go
// out on each address's own interface, from that interface's MAC.
//
// The Local for Config.Interface always exists, even without addresses,
// so that SetAddresses can add the first ones.
//
// Routes and rules follow the addresses: added after them on Take (a
// route's src must be present), removed before them on Release.
type Set struct {
	main    *Local
	others  []*Local // one per other interface, in order of first mention
	routing *routing // nil without routes and rules

	mu sync.Mutex // serialises the routing calls
}

// NewSet validates cfg and applies defaults. It does not touch the system.
func NewSet(cfg Config) (*Set, error) {
	byIf := map[string][]netip.Prefix{}
	var order []string
	seen := map[netip.Addr]bool{}
	for _, p := range cfg.Addresses {
		seen[p.Addr()] = true
	}
	for _, e := range cfg.Elsewhere {
		if seen[e.Prefix.Addr()] {
			return nil, fmt.Errorf("vip: address %s listed twice", e.Prefix.Addr())
		}
		seen[e.Prefix.Addr()] = true
		if e.Interface == cfg.Interface {
			cfg.Addresses = append(cfg.Addresses, e.Prefix)
			continue
		}
		if _, ok := byIf[e.Interface]; !ok {
			order = append(order, e.Interface)
		}
		byIf[e.Interface] = append(byIf[e.Interface], e.Prefix)
	}
	if err := checkRouting(cfg); err != nil {
		return nil, err
	}
	base := cfg
	base.Elsewhere, base.Routes, base.Rules = nil, nil, nil
	main, err := NewLocal(base)
	if err != nil {
		return nil, err
	}
	s := &Set{main: main}
	if len(cfg.Routes)+len(cfg.Rules) > 0 {
		s.routing = &routing{routes: cfg.Routes, rules: cfg.Rules, log: main.cfg.Logger}
	}
	for _, name := range order {
		c := base
		c.Interface, c.Addresses, c.Label = name, byIf[name], ""
		c.Logger = main.cfg.Logger.With("interface", name)
		l, err := NewLocal(c)
		if err != nil {
			return nil, err
		}
		s.others = append(s.others, l)
	}
	return s, nil
}

func (s *Set) all() []*Local { return append([]*Local{s.main}, s.others...) }

// Take takes every interface's addresses; an error names each failure, and
// what was taken is held (see Local.Take).
func (s *Set) Take(ctx context.Context) error {
	var errs []error
	for _, l := range s.all() {
		errs = append(errs, l.Take(ctx))
	}
	if s.routing != nil {
		s.mu.Lock()
		errs = append(errs, s.routing.add())
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Quiet stops announcing on every interface, keeping the addresses (see
// Local.Quiet).
func (s *Set) Quiet() {
	for _, l := range s.all() {
		l.Quiet()
	}
}

// Announce restarts the announcement burst on every interface.
func (s *Set) Announce(ctx context.Context) error {
	var errs []error
	for _, l := range s.all() {
		errs = append(errs, l.Announce(ctx))
	}
	return errors.Join(errs...)
}

// Release removes every interface's addresses, the other interfaces'
// first (the reverse of Take).
func (s *Set) Release(ctx context.Context) error {
	all := s.all()
	var errs []error
	if s.routing != nil {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("release routes: %w", err)
		}
		s.mu.Lock()
		errs = append(errs, s.routing.remove())
		s.mu.Unlock()
	}
	for i := len(all) - 1; i >= 0; i-- {
		errs = append(errs, all[i].Release(ctx))
	}
	return errors.Join(errs...)
}

// Present reports whether every address is on its interface and every
// route and rule installed now. With none of them, nothing shows that
// this node was master, so it reports false.
func (s *Set) Present(ctx context.Context) (bool, error) {
	n := 0
	for _, l := range s.all() {
		n += len(l.cfg.Addresses)
	}
	if s.routing != nil {
		n += len(s.routing.routes) + len(s.routing.rules)
	}
	if n == 0 {
		return false, nil
	}
	for _, l := range s.all() {
		ok, err := l.Present(ctx)
		if err != nil || !ok {
			return false, err
		}
	}
	if s.routing != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.routing.present()
	}
	return true, nil
}

// checkRouting checks what the kernel would refuse anyway, so that a
// mistake shows at start rather than at the first takeover.
func checkRouting(cfg Config) error {
	for _, r := range cfg.Routes {
		switch {
		case !r.To.IsValid():
			return fmt.Errorf("vip: route without a destination")
		case r.Via.IsValid() && r.Via.Is4() != r.To.Addr().Is4(), r.Src.IsValid() && r.Src.Is4() != r.To.Addr().Is4():
			return fmt.Errorf("vip: route %s mixes address families", r)
		case !r.Via.IsValid() && r.Dev == "":
			return fmt.Errorf("vip: route %s needs via or dev", r)
		case r.Table < 0 || r.Metric < 0:
			return fmt.Errorf("vip: route %s: negative table or metric", r)
		}
		if r.Dev != "" {
			if err := checkIfName(r.Dev); err != nil {
				return err
			}
		}
	}
	for _, r := range cfg.Rules {
		switch {
		case r.Table <= 0:
			return fmt.Errorf("vip: rule %s needs a table", r)
		case r.Priority < 0:
			return fmt.Errorf("vip: rule %s: negative priority", r)
		case r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4():
			return fmt.Errorf("vip: rule %s mixes address families", r)
		}
	}
	return nil
}

// SetAddresses changes the addresses on Config.Interface live (see
// Local.SetAddresses); those on other interfaces change only with a new Set.
func (s *Set) SetAddresses(ctx context.Context, addrs []netip.Prefix) error {
	return s.main.SetAddresses(ctx, addrs)
}

// Close closes every interface's Local; see Local.Close.
func (s *Set) Close() error {
	var errs []error
	for _, l := range s.all() {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
