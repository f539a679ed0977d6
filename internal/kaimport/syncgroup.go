package kaimport

import "fmt"

// syncGroupState is one vrrp_sync_group being read.
type syncGroupState struct {
	pos     Pos
	name    string
	members []string
	at      []Pos // where each member was listed
}

type outSyncGroup struct {
	Name      string   `yaml:"name"`
	Instances []string `yaml:"instances"`
}

const (
	groupNotify = "not carried over yet: director's sync groups run no notify scripts of their own in this version; the member instances' notify scripts still run"
	groupTrack  = "not supported in a sync group: track it in the member instances instead"
)

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
	},
	known: union(
		kw(Warning, groupNotify, "notify_master notify_backup notify_fault notify_stop notify notify_priority_changes"),
		kw(Note, noEmail, "smtp_alert"),
		kw(Warning, groupTrack, "track_interface track_script track_file track_process track_bfd"),
		kw(Note, "ignored: director applies track weights in sync group members as anywhere else (what this keyword asks); give the members of a group the same ranking of the two nodes", "sync_group_tracking_weight global_tracking"),
	),
}

// syncGroup reads vrrp_sync_group NAME { group { INSTANCE... } ... }.
func (c *converter) syncGroup(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	st := &syncGroupState{pos: n.Pos, name: n.Args[0]}
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
		out.SyncGroups = append(out.SyncGroups, outSyncGroup{Name: st.name, Instances: st.members})
	}
}
