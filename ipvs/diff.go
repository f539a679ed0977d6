package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// opKind is one step of a plan.
type opKind uint8

const (
	opCreateService opKind = iota
	opUpdateService
	opDeleteService
	opCreateDest
	opUpdateDest
	opDrainDest // UpdateDestination to weight 0
	opDeleteDest
	opMarkDrain // no kernel write: start the drain clock of a destination already at weight 0
)

// op is one planned change. svc is the desired service for service creates
// and updates; dest is the desired (or, for drains and deletes, the current)
// destination.
type op struct {
	kind   opKind
	key    ServiceKey
	svc    *Service
	dest   Destination
	repair bool // the desired state of this object did not change since the previous Apply
}

// describe names the change for error messages:
// "create destination 10.0.0.21:80 in TCP 10.0.0.100:80".
func (o op) describe() string {
	switch o.kind {
	case opCreateService:
		return "create service " + o.key.String()
	case opUpdateService:
		return "update service " + o.key.String()
	case opDeleteService:
		return "delete service " + o.key.String()
	case opCreateDest:
		return fmt.Sprintf("create destination %s in %s", o.dest.AddrPort(), o.key)
	case opUpdateDest:
		return fmt.Sprintf("update destination %s in %s", o.dest.AddrPort(), o.key)
	case opDrainDest:
		return fmt.Sprintf("drain destination %s in %s (weight 0)", o.dest.AddrPort(), o.key)
	case opDeleteDest:
		return fmt.Sprintf("delete destination %s in %s", o.dest.AddrPort(), o.key)
	case opMarkDrain:
		return fmt.Sprintf("wait for destination %s in %s to drain", o.dest.AddrPort(), o.key)
	}
	return fmt.Sprintf("op %d", o.kind)
}

// svcPlan is the list of changes for one service key.
type svcPlan struct {
	key  ServiceKey
	want *Service // nil when the service is no longer desired
	ops  []op
	// forget: owned, undesired and already absent from the kernel.
	forget bool
}

// differ computes plans. It reads the reconciler's bookkeeping and changes nothing.
type differ struct {
	prev         map[ServiceKey]*Service
	drains       map[drainID]time.Time
	owned        map[ServiceKey]bool
	drainTimeout time.Duration
	now          time.Time
}

// drainID names one destination of one service.
type drainID struct {
	svc ServiceKey
	dst netip.AddrPort
}

// plan diffs the kernel (cur, indexed by key) against want (normalized,
// sorted). Desired services come first, then owned services that are no
// longer desired. Services that are neither desired nor owned are absent.
func (d *differ) plan(cur map[ServiceKey]*Service, want []Service) []svcPlan {
	plans := make([]svcPlan, 0, len(want))
	wanted := make(map[ServiceKey]bool, len(want))
	for i := range want {
		w := &want[i]
		wanted[w.Key] = true
		if ops := d.service(w.Key, cur[w.Key], w); len(ops) > 0 {
			plans = append(plans, svcPlan{key: w.Key, want: w, ops: ops})
		}
	}
	var gone []ServiceKey
	for k := range d.owned {
		if !wanted[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, ServiceKey.Compare)
	for _, k := range gone {
		c := cur[k]
		if c == nil {
			plans = append(plans, svcPlan{key: k, forget: true})
			continue
		}
		if ops := d.service(k, c, nil); len(ops) > 0 {
			plans = append(plans, svcPlan{key: k, ops: ops})
		}
	}
	return plans
}

// service plans one key. cur is the kernel's service (nil if absent), want
// the desired one (nil if no longer desired). cur's destinations must be
// sorted by address (sortDests); want's are, being normalized.
func (d *differ) service(key ServiceKey, cur, want *Service) []op {
	if want == nil {
		return d.removed(key, cur)
	}
	prev := d.prev[key]
	if cur == nil {
		ops := make([]op, 0, 1+len(want.Destinations))
		ops = append(ops, op{kind: opCreateService, key: key, svc: want, repair: prev != nil && prev.sameConfig(want)})
		for _, w := range want.Destinations {
			ops = append(ops, op{kind: opCreateDest, key: key, dest: w, repair: prevHas(prev, &w)})
		}
		return ops
	}

	var ops, drains []op
	if !cur.sameConfig(want) {
		ops = append(ops, op{kind: opUpdateService, key: key, svc: want, repair: prev != nil && prev.sameConfig(want)})
	}
	// Merge the two sorted destination lists.
	cs, ws := cur.Destinations, want.Destinations
	for i, j := 0, 0; i < len(cs) || j < len(ws); {
		c := cmpDest(cs, ws, i, j)
		switch {
		case c < 0: // in the kernel only
			if o, del := d.drain(key, &cs[i]); del {
				drains = append(drains, op{kind: opDeleteDest, key: key, dest: cs[i]})
			} else if o != nil {
				drains = append(drains, *o)
			}
			i++
		case c > 0: // desired only
			ops = append(ops, op{kind: opCreateDest, key: key, dest: ws[j], repair: prevHas(prev, &ws[j])})
			j++
		default:
			if !cs[i].sameConfig(&ws[j]) {
				ops = append(ops, op{kind: opUpdateDest, key: key, dest: ws[j], repair: prevHas(prev, &ws[j])})
			}
			i++
			j++
		}
	}
	// Additions and weight changes first, so capacity never dips while
	// removed destinations drain.
	return append(ops, drains...)
}

// removed plans an owned service that is no longer desired: drain every
// destination, and delete the whole service in one request once all of
// them may go.
func (d *differ) removed(key ServiceKey, cur *Service) []op {
	var waits, dels []op
	for i := range cur.Destinations {
		c := &cur.Destinations[i]
		if o, del := d.drain(key, c); del {
			dels = append(dels, op{kind: opDeleteDest, key: key, dest: *c})
		} else if o != nil {
			waits = append(waits, *o)
		}
	}
	if len(dels) == len(cur.Destinations) {
		return []op{{kind: opDeleteService, key: key}}
	}
	return append(waits, dels...)
}

// drain decides about one destination that is not desired: delete it now
// (del), or return the step that drains it (nil while it is just waiting).
func (d *differ) drain(key ServiceKey, c *Destination) (o *op, del bool) {
	if d.drainTimeout < 0 {
		return nil, true
	}
	start, draining := d.drains[drainID{key, c.AddrPort()}]
	if c.Weight > 0 {
		// Someone raised the weight of a destination we were draining: drift.
		return &op{kind: opDrainDest, key: key, dest: *c, repair: draining}, false
	}
	if c.ActiveConns == 0 || (draining && d.now.Sub(start) >= d.drainTimeout) {
		return nil, true
	}
	if !draining {
		return &op{kind: opMarkDrain, key: key, dest: *c}, false
	}
	return nil, false
}

// cmpDest compares cs[i] with ws[j], treating an exhausted list as +inf.
func cmpDest(cs, ws []Destination, i, j int) int {
	switch {
	case i >= len(cs):
		return 1
	case j >= len(ws):
		return -1
	}
	return cs[i].AddrPort().Compare(ws[j].AddrPort())
}

// prevHas reports whether the previous desired state held w unchanged.
func prevHas(prev *Service, w *Destination) bool {
	if prev == nil {
		return false
	}
	i, ok := slices.BinarySearchFunc(prev.Destinations, w.AddrPort(), func(d Destination, ap netip.AddrPort) int {
		return d.AddrPort().Compare(ap)
	})
	return ok && prev.Destinations[i].sameConfig(w)
}

// hasDest reports whether s (destinations sorted) holds dst.
func hasDest(s *Service, dst netip.AddrPort) bool {
	_, ok := slices.BinarySearchFunc(s.Destinations, dst, func(d Destination, ap netip.AddrPort) int {
		return d.AddrPort().Compare(ap)
	})
	return ok
}

func sortDests(s *Service) {
	slices.SortFunc(s.Destinations, func(a, b Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
}
