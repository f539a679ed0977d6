package kaimport

import (
	"fmt"
	"slices"
)

// syncGroupState is one vrrp_sync_group being read.
type syncGroupState struct {
	pos     Pos
	name    string
	members []string
	at      []Pos // where each member was listed
	out     outSyncGroup
	fields  map[string]Pos // where hooks and tracks came from
	// trackingWeight: sync_group_tracking_weight (or global_tracking)
	// was given, so members' track weights apply as written.
	trackingWeight bool
}

type outSyncGroup struct {
	Name          string   `yaml:"name"`
	Instances     []string `yaml:"instances"`
	outStateHooks `yaml:",inline"`
	Track         []outTrack `yaml:"track,omitempty"`
}

// groupHook is the handler of a sync group's notify_master, notify_backup,
// notify_fault and notify_stop.
func groupHook(field string, set func(*outSyncGroup, []string)) handler[*syncGroupState] {
	return func(c *converter, st *syncGroupState, n *Node) {
		if argv, ok := c.hookScript(n); ok {
			set(&st.out, argv)
			st.fields[field] = n.Pos
		}
	}
}

// groupTracks reads a group's track list: keepalived puts the whole group
// in FAULT when one of them is down, whatever its weight; director's group
// tracks are weight 0 alike, so a weight written here is dropped.
func groupTracks(c *converter, st *syncGroupState, n *Node) {
	for _, t := range c.trackList(n) {
		if t.track.Weight != nil && *t.track.Weight != 0 {
			c.rep.add(t.pos, Note, n.Key, "weight %d dropped: a sync group's track puts the whole group in FAULT while down, in keepalived as in director", *t.track.Weight)
		}
		t.track.Weight, t.track.WeightReverse = nil, nil
		st.fields[fmt.Sprintf("track[%d]", len(st.out.Track))] = t.pos
		st.out.Track = append(st.out.Track, t.track)
	}
}

var syncGroupBlock = &block[*syncGroupState]{
	name: "vrrp_sync_group",
	blocks: map[string]handler[*syncGroupState]{
		"group": func(c *converter, st *syncGroupState, n *Node) {
			c.args(n, 0, 0)
			for _, it := range n.Block {
				if it.HasBlock {
					c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in group")
					continue
				}
				// keepalived lists one instance a line, or several on one.
				for _, name := range append([]string{it.Key}, it.Args...) {
					st.members = append(st.members, name)
					st.at = append(st.at, it.Pos)
				}
			}
		},
		"track_script":    groupTracks,
		"track_interface": groupTracks,
		"track_file":      groupTracks,
		"track_process":   groupTracks,
	},
	simple: map[string]handler[*syncGroupState]{
		"notify_master": groupHook("notify_master", func(o *outSyncGroup, a []string) { o.NotifyMaster = a }),
		"notify_backup": groupHook("notify_backup", func(o *outSyncGroup, a []string) { o.NotifyBackup = a }),
		"notify_fault":  groupHook("notify_fault", func(o *outSyncGroup, a []string) { o.NotifyFault = a }),
		"notify_stop":   groupHook("notify_stop", func(o *outSyncGroup, a []string) { o.NotifyStop = a }),
		"notify": func(c *converter, st *syncGroupState, n *Node) {
			if cmd, ok := c.notifyCommand(n); ok {
				st.out.Notify = cmd
				st.fields["notify"] = n.Pos
			}
		},
		"sync_group_tracking_weight": func(c *converter, st *syncGroupState, n *Node) {
			c.args(n, 0, 0)
			st.trackingWeight = true
		},
		"global_tracking": func(c *converter, st *syncGroupState, n *Node) {
			c.args(n, 0, 0)
			c.rep.add(n.Pos, Note, n.Key, "deprecated in keepalived for sync_group_tracking_weight; carried as that: member track weights apply as written")
			st.trackingWeight = true
		},
	},
	known: union(
		kw(Note, "not carried over: director sends priority changes to no notify script (its notify FIFO and metrics show them)", "notify_priority_changes"),
		kw(Note, noEmail, "smtp_alert"),
		kw(Warning, "not supported: director has no BFD", "track_bfd"),
		kw(Warning, notifyHint, "notify_deleted"),
	),
}

// syncGroup reads vrrp_sync_group NAME { group { INSTANCE... } ... }.
func (c *converter) syncGroup(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	st := &syncGroupState{pos: n.Pos, name: n.Args[0], fields: map[string]Pos{}}
	walk(c, syncGroupBlock, st, n.Block)
	c.groups = append(c.groups, st)
}

// finishSyncGroups writes the groups; one with fewer than two members is
// left out, as it would change nothing (keepalived only warns).
func (c *converter) finishSyncGroups(out *outConfig) {
	for _, st := range c.groups {
		if len(st.members) < 2 {
			c.rep.add(st.pos, Warning, "vrrp_sync_group", "%s has %d member(s): a sync group needs two; left out, its instance fails over alone", st.name, len(st.members))
			continue
		}
		f := fmt.Sprintf("sync_groups[%d]", len(out.SyncGroups))
		c.origin[f] = st.pos
		c.origin[f+".name"] = st.pos
		c.origin[f+".instances"] = st.pos
		for j, p := range st.at {
			c.origin[fmt.Sprintf("%s.instances[%d]", f, j)] = p
		}
		for k, p := range st.fields {
			c.origin[f+"."+k] = p
		}
		g := st.out
		g.Name, g.Instances = st.name, st.members
		out.SyncGroups = append(out.SyncGroups, g)
		if !st.trackingWeight {
			c.zeroMemberWeights(out, st)
		}
	}
}

// zeroMemberWeights gives keepalived's meaning to the tracks of a group's
// members: without sync_group_tracking_weight keepalived ignores their
// weights and any failure puts the member (so the group) in FAULT, which
// is director's weight 0.
func (c *converter) zeroMemberWeights(out *outConfig, st *syncGroupState) {
	for i := range out.Instances {
		in := &out.Instances[i]
		if !slices.Contains(st.members, in.Name) {
			continue
		}
		changed := false
		for j := range in.Track {
			if w := in.Track[j].Weight; w == nil || *w != 0 {
				zero := 0
				in.Track[j].Weight, in.Track[j].WeightReverse = &zero, nil
				changed = true
			}
		}
		if changed {
			c.rep.add(st.pos, Note, "vrrp_sync_group", "%s: the tracks of member %s carried with weight 0 (FAULT while down): keepalived ignores track weights in a sync group without sync_group_tracking_weight", st.name, in.Name)
		}
	}
}
