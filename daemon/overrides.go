package daemon

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/director-lb/director/decisions"
	"github.com/director-lb/director/ipvs"
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

// overrideLookup finds the live override of a real server of a service.
type overrideLookup func(service string, ap netip.AddrPort) (decisions.Decision, bool)

// applyOverrides changes the desired services per the operator's overrides.
// A failed server stays at weight 0 whatever its override says.
func applyOverrides(names []string, all []ipvs.Service, lookup overrideLookup) []ipvs.Service {
	out := make([]ipvs.Service, len(all))
	for i, s := range all {
		dests := make([]ipvs.Destination, 0, len(s.Destinations))
		for _, d := range s.Destinations {
			o, ok := lookup(names[i], d.AddrPort())
			switch {
			case !ok:
			case o.Action == decisions.ActionDisable:
				continue
			case o.Action == decisions.ActionDrain:
				d.Weight = 0
			case o.Action == decisions.ActionWeight && d.Weight > 0:
				d.Weight = int32(o.Weight)
			}
			dests = append(dests, d)
		}
		s.Destinations = dests
		out[i] = s
	}
	return out
}

// overridesFile is where runtime decisions (the operator's overrides and
// real servers' registrations) persist: beside the ownership file, so that
// they outlive reloads and restarts.
func overridesFile(stateFile string) string {
	if stateFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(stateFile), "overrides.json")
}

// describeOverride is the override as state shows it.
func describeOverride(o decisions.Decision) string {
	if o.Action == decisions.ActionWeight {
		return "weight " + strconv.Itoa(o.Weight)
	}
	return string(o.Action)
}
