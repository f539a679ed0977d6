package ipvs

import (
	"net/netip"
	"slices"
)

// viewApply updates the reconciler's view of the kernel after o
// succeeded, as the kernel itself changed. It reports false when the view
// did not hold what the write needed (the service of a destination write),
// so the view of that service cannot be trusted.
func viewApply(view map[ServiceKey]*Service, o op) bool {
	s := view[o.key]
	switch o.kind {
	case opCreateService:
		c := *o.svc
		c.Destinations, c.Sorry = nil, nil
		view[o.key] = &c
	case opUpdateService:
		if s == nil {
			return false
		}
		c := *o.svc
		c.Destinations, c.Sorry = s.Destinations, nil
		view[o.key] = &c
	case opDeleteService:
		delete(view, o.key)
	case opCreateDest, opUpdateDest, opDrainDest:
		if s == nil {
			return false
		}
		d := o.dest
		if o.kind == opDrainDest {
			d.Weight = 0
		}
		i, found := destSearch(s, d.AddrPort())
		if found {
			// The kernel keeps the counters of an updated destination.
			d.ActiveConns, d.InactiveConns = s.Destinations[i].ActiveConns, s.Destinations[i].InactiveConns
			s.Destinations[i] = d
			return true
		}
		d.ActiveConns, d.InactiveConns = 0, 0
		s.Destinations = slices.Insert(s.Destinations, i, d)
		return o.kind == opCreateDest
	case opDeleteDest:
		if s != nil {
			if i, found := destSearch(s, o.dest.AddrPort()); found {
				s.Destinations = slices.Delete(s.Destinations, i, i+1)
			}
		}
	}
	return true
}

// destSearch finds dst in s's sorted destinations, or where it would go.
func destSearch(s *Service, dst netip.AddrPort) (int, bool) {
	return slices.BinarySearchFunc(s.Destinations, dst, func(d Destination, ap netip.AddrPort) int {
		return d.AddrPort().Compare(ap)
	})
}
