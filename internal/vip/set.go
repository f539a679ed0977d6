package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Set is the vrrp.Mover for an instance whose addresses live on more than
// one interface: one Local per interface, moved together. Announcements go
// out on each address's own interface, from that interface's MAC.
//
// The Local for Config.Interface always exists, even without addresses,
// so that SetAddresses can add the first ones.
type Set struct {
	main   *Local
	others []*Local // one per other interface, in order of first mention
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
	base := cfg
	base.Elsewhere = nil
	main, err := NewLocal(base)
	if err != nil {
		return nil, err
	}
	s := &Set{main: main}
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
	return errors.Join(errs...)
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
	for i := len(all) - 1; i >= 0; i-- {
		errs = append(errs, all[i].Release(ctx))
	}
	return errors.Join(errs...)
}

// Present reports whether every address is on its interface now.
func (s *Set) Present(ctx context.Context) (bool, error) {
	for _, l := range s.all() {
		ok, err := l.Present(ctx)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
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
