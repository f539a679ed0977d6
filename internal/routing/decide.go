// Package routing is routed (active/active) mode: which of this node's VIPs
// are announced, and with what attributes, from its fitness (its services'
// quorum, its tracking) and the operator's drain. The decision is pure
// (Decide); an Announcer carries it out, by BGP (package routing/gobgp) or
// as routes in a kernel table (Table), and a fake stands in for tests.
package routing

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/director-lb/director/internal/config"
)

// Route is one announced VIP: a host route and its BGP attributes.
type Route struct {
	Prefix      netip.Prefix
	Communities []uint32
	// LocalPref and MED are sent when Has* is set.
	LocalPref    uint32
	HasLocalPref bool
	MED          uint32
	HasMED       bool
	// Prepend is how many times this node's ASN is prepended to the AS
	// path (deprefer), so that a router doing ECMP over equal AS paths
	// leaves this node out.
	Prepend int
}

func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Prefix.String())
	if len(r.Communities) > 0 {
		cs := make([]string, len(r.Communities))
		for i, c := range r.Communities {
			cs[i] = fmt.Sprintf("%d:%d", c>>16, c&0xffff)
		}
		fmt.Fprintf(&b, " communities %s", strings.Join(cs, ","))
	}
	if r.HasLocalPref {
		fmt.Fprintf(&b, " local_pref %d", r.LocalPref)
	}
	if r.HasMED {
		fmt.Fprintf(&b, " med %d", r.MED)
	}
	if r.Prepend > 0 {
		fmt.Fprintf(&b, " prepend %d", r.Prepend)
	}
	return b.String()
}

// Equal reports whether r and o announce the same thing.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && slices.Equal(r.Communities, o.Communities) &&
		r.HasLocalPref == o.HasLocalPref && r.LocalPref == o.LocalPref &&
		r.HasMED == o.HasMED && r.MED == o.MED && r.Prepend == o.Prepend
}

// Drain is the operator's (or a stop's) wish for the node's routes.
type Drain int

const (
	// Serving announces every fit VIP.
	Serving Drain = iota
	// Withdrawn announces nothing.
	Withdrawn
	// Depreferred announces every fit VIP, less preferred.
	Depreferred
)

func (d Drain) String() string {
	switch d {
	case Withdrawn:
		return "withdrawn"
	case Depreferred:
		return "depreferred"
	}
	return "serving"
}

// Deprefer's attributes: the lowest local preference, the highest MED
// short of the "infinity" some routers treat as unreachable, and the
// node's ASN three more times on the path.
const (
	DepreferLocalPref = 0
	DepreferMED       = 0xFFFFFFFE
	DepreferPrepend   = 3
)

// Inputs are what decides the announcements, gathered by the daemon.
type Inputs struct {
	// QuorumLost names, per VIP, its services that lost quorum; a VIP
	// without an entry has every service in quorum (or none).
	QuorumLost map[netip.Addr][]string
	// TracksDown names the routing tracks that are down (fault).
	TracksDown []string
	// Drain is the operator's drain, or a stop's.
	Drain Drain
}

// VIPView is one VIP as state shows it.
type VIPView struct {
	Addr      netip.Addr `json:"vip"`
	Announced bool       `json:"announced"`
	// Route is what is announced ("" when nothing is).
	Route string `json:"route,omitempty"`
	// Reason says why the VIP is (not) announced, in a few words.
	Reason string `json:"reason"`
}

// Decision is the set of routes to announce and why.
type Decision struct {
	Routes []Route
	VIPs   []VIPView
}

// Decide computes the routes for r from in. It is pure: the same inputs
// give the same routes, in the order of r.VIPs.
func Decide(r *config.Routing, in Inputs) Decision {
	var d Decision
	attrs := map[netip.Addr]*config.Announce{}
	for i := range r.Announce {
		attrs[r.Announce[i].Addr] = &r.Announce[i]
	}
	for _, a := range r.Addrs {
		v := VIPView{Addr: a}
		switch {
		case in.Drain == Withdrawn:
			v.Reason = "node drained: withdrawn"
		case len(in.TracksDown) > 0:
			v.Reason = "tracking down: " + strings.Join(in.TracksDown, ", ")
		case len(in.QuorumLost[a]) > 0:
			v.Reason = "quorum lost: " + strings.Join(in.QuorumLost[a], ", ")
		default:
			rt := Route{Prefix: netip.PrefixFrom(a, a.BitLen())}
			if x := attrs[a]; x != nil {
				rt.Communities = slices.Clone(x.Comms)
				if x.LocalPref != nil {
					rt.LocalPref, rt.HasLocalPref = *x.LocalPref, true
				}
				if x.MED != nil {
					rt.MED, rt.HasMED = *x.MED, true
				}
			}
			v.Reason = "fit"
			if in.Drain == Depreferred {
				rt.LocalPref, rt.HasLocalPref = DepreferLocalPref, true
				rt.MED, rt.HasMED = DepreferMED, true
				rt.Prepend = DepreferPrepend
				v.Reason = "node drained: depreferred"
			}
			v.Announced, v.Route = true, rt.String()
			d.Routes = append(d.Routes, rt)
		}
		d.VIPs = append(d.VIPs, v)
	}
	return d
}

// SameRoutes reports whether a and b announce the same routes, in any order.
func SameRoutes(a, b []Route) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.ContainsFunc(b, r.Equal) {
			return false
		}
	}
	return true
}
