package dataplane

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/director-lb/director/internal/decisions"
)

// overrideKey is "service/addr:port" for one service, or "addr:port" for
// every service that has that real server.
type overrideKey string

func parseOverrideTarget(s string) (overrideKey, error) {
	svc, addr, found := strings.Cut(s, "/")
	if !found {
		addr, svc = s, ""
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: want ADDRESS:PORT or SERVICE/ADDRESS:PORT", s)
	}
	if svc != "" {
		return overrideKey(svc + "/" + ap.String()), nil
	}
	return overrideKey(ap.String()), nil
}

// OverrideSet is the live operator overrides by target, parsed once per
// pass so that Desired looks them up without building strings.
type OverrideSet map[OverrideTarget]decisions.Decision

// OverrideTarget is a real server of one service, or of every service
// when Service is "".
type OverrideTarget struct {
	Service string
	Server  netip.AddrPort
}

// Overrides picks the live overrides out of decisions (a store's snapshot).
func Overrides(ds []decisions.Decision) OverrideSet {
	out := OverrideSet{}
	for _, d := range ds {
		if d.Kind != decisions.KindOverride || d.Tombstone() {
			continue
		}
		k, err := parseOverrideTarget(d.Target)
		if err != nil {
			continue
		}
		svc, addr, found := strings.Cut(string(k), "/")
		if !found {
			svc, addr = "", string(k)
		}
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			continue
		}
		out[OverrideTarget{svc, ap}] = d
	}
	return out
}

// lookup is the override of a real server of a service: the service's
// own first, then the one for every service (as decisions.Store.Override).
func (o OverrideSet) lookup(service string, ap netip.AddrPort) (decisions.Decision, bool) {
	if d, ok := o[OverrideTarget{service, ap}]; ok {
		return d, true
	}
	d, ok := o[OverrideTarget{"", ap}]
	return d, ok
}

// overrideWeight is what override o makes of a real server's weight w, and
// whether the server stays in the table at all (disable takes it out). A
// failed server (w 0) stays at 0 whatever weight o asks for.
func overrideWeight(o decisions.Decision, w int) (int, bool) {
	switch o.Action {
	case decisions.ActionDisable:
		return 0, false
	case decisions.ActionDrain:
		return 0, true
	case decisions.ActionWeight:
		if w > 0 {
			return o.Weight, true
		}
	}
	return w, true
}

// describeOverride is the override as state shows it.
func describeOverride(o decisions.Decision) string {
	if o.Action == decisions.ActionWeight {
		return "weight " + strconv.Itoa(o.Weight)
	}
	return string(o.Action)
}
