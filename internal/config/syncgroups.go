package config

import (
	"fmt"
	"slices"
)

// SyncGroup is keepalived's vrrp_sync_group: VRRP instances that share one
// state, so that they fail over together (a NAT pair's outside and inside
// VIPs). See docs/design/sync-groups.md.
type SyncGroup struct {
	Name string `yaml:"name,omitempty"`
	// Instances are the names of the member instances, at least two; an
	// instance is in at most one group.
	Instances []string `yaml:"instances,omitempty"`
	// StateHooks run on the group's state changes (keepalived's group
	// notify), with GROUP <name> <STATE> for the generic notify.
	StateHooks `yaml:",inline"`
	// Track is keepalived's group tracking (track_script, track_file, ...
	// in vrrp_sync_group): every member tracks these, and one that is down
	// puts the whole group in FAULT (weight 0, the only weight allowed).
	Track []Track `yaml:"track,omitempty"`
}

// GroupTracks returns the tracks instance takes from its sync group, each
// with weight 0 (FAULT while down); nil if it is in no group.
func (cfg *Config) GroupTracks(instance string) []Track {
	g := cfg.GroupOf(instance)
	if g == nil || len(g.Track) == 0 {
		return nil // nil, not empty: a reload must not see a change
	}
	out := make([]Track, len(g.Track))
	for i, t := range g.Track {
		zero := 0
		t.Weight = &zero
		out[i] = t
	}
	return out
}

// GroupOf returns the sync group instance belongs to, or nil.
func (cfg *Config) GroupOf(instance string) *SyncGroup {
	for i := range cfg.SyncGroups {
		if slices.Contains(cfg.SyncGroups[i].Instances, instance) {
			return &cfg.SyncGroups[i]
		}
	}
	return nil
}

// syncGroups checks names, that members exist and that none is in two groups.
func (c *checker) syncGroups(cfg *Config) {
	instances := map[string]bool{}
	for _, in := range cfg.Instances {
		instances[in.Name] = true
	}
	names := map[string]string{}
	member := map[string]string{} // instance -> group field
	for i, g := range cfg.SyncGroups {
		f := fmt.Sprintf("sync_groups[%d]", i)
		c.uniqueName(f, "sync group", g.Name, names)
		c.stateHooks(f, &cfg.SyncGroups[i].StateHooks)
		if len(g.Instances) < 2 {
			// keepalived accepts one member with a warning; such a group
			// does nothing, so it is most likely a mistake.
			c.errf(f+".instances", "at least two instances are needed, got %d", len(g.Instances))
		}
		for j, n := range g.Instances {
			field := fmt.Sprintf("%s.instances[%d]", f, j)
			switch prev, dup := member[n]; {
			case !instances[n]:
				c.errf(field, "no instance named %q", n)
			case dup && prev == f:
				c.errf(field, "%q is listed twice", n)
			case dup:
				c.errf(field, "instance %q is already in %s: an instance is in at most one sync group", n, prev)
			default:
				member[n] = f
			}
		}
	}
}

// diffSyncGroups lists added, removed and re-membered sync groups.
func diffSyncGroups(old, new *Config) []Change {
	var out []Change
	oldG := map[string][]string{}
	for _, g := range old.SyncGroups {
		oldG[g.Name] = g.Instances
	}
	for _, g := range new.SyncGroups {
		what := "sync group " + g.Name
		o, ok := oldG[g.Name]
		delete(oldG, g.Name)
		switch {
		case !ok:
			out = append(out, Change{What: what, How: fmt.Sprintf("added with %v", g.Instances)})
		case !slices.Equal(o, g.Instances):
			out = append(out, Change{What: what, How: fmt.Sprintf("instances %v -> %v", o, g.Instances)})
		}
	}
	for _, g := range old.SyncGroups {
		if _, gone := oldG[g.Name]; gone {
			out = append(out, Change{What: "sync group " + g.Name, How: "removed (its instances fail over alone)"})
		}
	}
	return out
}
