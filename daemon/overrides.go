package daemon

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/director-lb/director/ipvs"
)

// An override is an operator's runtime decision about a real server
// (director drain/disable/weight). It outlives reloads and restarts: it is
// kept in a file beside the IPVS ownership file.
type override struct {
	Mode   string `json:"mode"` // drain | disable | weight
	Weight int    `json:"weight,omitempty"`
}

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

// lookup finds the override for a real server of a service: the
// service-specific one first.
func lookupOverride(m map[overrideKey]override, service string, ap netip.AddrPort) (override, bool) {
	if o, ok := m[overrideKey(service+"/"+ap.String())]; ok {
		return o, true
	}
	o, ok := m[overrideKey(ap.String())]
	return o, ok
}

// applyOverrides changes the desired services per the operator's overrides.
// A failed server stays at weight 0 whatever its override says.
func applyOverrides(names []string, all []ipvs.Service, m map[overrideKey]override) []ipvs.Service {
	if len(m) == 0 {
		return all
	}
	out := make([]ipvs.Service, len(all))
	for i, s := range all {
		dests := make([]ipvs.Destination, 0, len(s.Destinations))
		for _, d := range s.Destinations {
			o, ok := lookupOverride(m, names[i], d.AddrPort())
			switch {
			case !ok:
			case o.Mode == "disable":
				continue
			case o.Mode == "drain":
				d.Weight = 0
			case o.Mode == "weight" && d.Weight > 0:
				d.Weight = int32(o.Weight)
			}
			dests = append(dests, d)
		}
		s.Destinations = dests
		out[i] = s
	}
	return out
}

// overridesFile is where overrides persist: beside the ownership file.
func overridesFile(stateFile string) string {
	if stateFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(stateFile), "overrides.json")
}

func loadOverrides(path string) (map[overrideKey]override, error) {
	m := map[overrideKey]override{}
	if path == "" {
		return m, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read overrides: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read overrides %s: %w", path, err)
	}
	return m, nil
}

func saveOverrides(path string, m map[overrideKey]override) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write overrides: %w", err)
	}
	return os.Rename(tmp, path)
}

// describeOverride is the override as state shows it.
func describeOverride(o override) string {
	if o.Mode == "weight" {
		return "weight " + strconv.Itoa(o.Weight)
	}
	return o.Mode
}

// sortedKeys lists overrides for logs and tests.
func sortedKeys(m map[overrideKey]override) []string {
	out := make([]string, 0, len(m))
	for k, o := range m {
		out = append(out, string(k)+"="+describeOverride(o))
	}
	sort.Strings(out)
	return out
}
