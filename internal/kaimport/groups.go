package kaimport

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/director-lb/director/internal/config"
)

// vsgState is one virtual_server_group: the members of the services that
// name it, which become director's service group members.
type vsgState struct {
	pos     Pos
	name    string
	members []vsgMember
	used    bool
}

type vsgMember struct {
	pos Pos
	out outMember
	fam int // 4 or 6; 0 for a mark without a family
}

// serverGroup reads virtual_server_group NAME { ADDR|RANGE [PORT] ...
// fwmark N [inet|inet6] ... }.
func (c *converter) serverGroup(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	g := &vsgState{pos: n.Pos, name: n.Args[0]}
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, n.Key, "unexpected { } block in virtual_server_group")
			continue
		}
		if m, ok := c.groupEntry(it); ok {
			g.members = append(g.members, m)
		}
	}
	if c.vsgs == nil {
		c.vsgs = map[string]*vsgState{}
	}
	if prev, dup := c.vsgs[g.name]; dup {
		c.rep.add(n.Pos, Warning, n.Key, "%s is defined again (first on line %d): this one is used", g.name, prev.pos.Line)
	}
	if len(g.members) == 0 {
		c.rep.add(n.Pos, Warning, n.Key, "%s has no entries: keepalived removes it, and the services that name it", g.name)
		delete(c.vsgs, g.name)
		return
	}
	c.vsgs[g.name] = g
	c.vsgOrder = append(c.vsgOrder, g)
}

// groupEntry reads one line of a virtual_server_group.
func (c *converter) groupEntry(it *Node) (vsgMember, bool) {
	const kw = "virtual_server_group"
	m := vsgMember{pos: it.Pos}
	if it.Key == "fwmark" {
		if len(it.Args) < 1 || len(it.Args) > 2 {
			c.rep.add(it.Pos, Error, kw, "want fwmark N [inet|inet6]")
			return m, false
		}
		v, err := strconv.ParseUint(it.Args[0], 10, 32)
		if err != nil || v == 0 {
			c.rep.add(it.Pos, Error, kw, "fwmark: want a number from 1 to 4294967295, got %q", it.Args[0])
			return m, false
		}
		m.out.FWMark = int(v)
		if len(it.Args) == 2 {
			switch it.Args[1] {
			case "inet":
				m.fam = 4
			case "inet6":
				m.fam = 6
			default:
				c.rep.add(it.Pos, Error, kw, "fwmark %d: want inet or inet6, got %q", v, it.Args[1])
				return m, false
			}
		}
		return m, true
	}
	if len(it.Args) > 1 {
		c.rep.add(it.Pos, Warning, kw, "extra values ignored: %s", strings.Join(it.Args[1:], " "))
	}
	// keepalived takes a port of 0 as none.
	if len(it.Args) == 0 || strings.Trim(it.Args[0], "0") == "" {
		c.rep.add(it.Pos, Warning, kw, "%s without a port (every port, persistent) is not supported: this entry is skipped", it.Key)
		return m, false
	}
	port, err := strconv.Atoi(it.Args[0])
	if err != nil || port < 1 || port > 65535 {
		c.rep.add(it.Pos, Error, kw, "%s: want a port from 1 to 65535, got %q", it.Key, it.Args[0])
		return m, false
	}
	addrs, err := config.ExpandRange(it.Key, config.MaxGroupEndpoints)
	if err != nil {
		c.rep.add(it.Pos, Error, kw, "%v", err)
		return m, false
	}
	m.out = outMember{VIP: it.Key, Port: port}
	m.fam = 4
	if addrs[0].Is6() {
		m.fam = 6
	}
	return m, true
}

// badNameChars are those director's names do not allow: letters, digits, '_', '.', '-'.
var badNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// resolveGroups gives the services of "virtual_server group NAME" their
// group's members, protocol, family and a name, and drops those whose
// group is not defined (keepalived ignores them). It returns the services
// to convert.
func (c *converter) resolveGroups() []*svcState {
	names := map[string]bool{}
	// marks maps each firewall mark to the service that has it: a mark
	// has no protocol, so a group used by a TCP and a UDP virtual_server
	// gives its marks to the first only.
	marks := map[int]string{}
	for _, st := range c.svcs {
		if st.group == "" {
			names[st.out.Name] = true
			if st.out.FWMark != 0 {
				marks[st.out.FWMark] = st.out.Name
			}
		}
	}
	var out []*svcState
	for _, st := range c.svcs {
		if st.group == "" {
			out = append(out, st)
			continue
		}
		g, ok := c.vsgs[st.group]
		if !ok {
			c.rep.add(st.pos, Warning, "virtual_server", "group %s is not defined (or has no entries): keepalived ignores this service, and it is not converted", st.group)
			continue
		}
		g.used = true
		c.groupService(st, g)
		st.out.Name = uniqueName(names, badNameChars.ReplaceAllString(g.name, "_"), st.out.Protocol)
		names[st.out.Name] = true
		kept := st.out.Members[:0]
		for _, m := range st.out.Members {
			if prev, dup := marks[m.FWMark]; m.FWMark != 0 && dup {
				c.rep.add(st.pos, Warning, "virtual_server", "fwmark %d of group %s is already the virtual service of %s (a mark has no protocol): left out of %s", m.FWMark, g.name, prev, st.out.Name)
				continue
			}
			if m.FWMark != 0 {
				marks[m.FWMark] = st.out.Name
			}
			kept = append(kept, m)
		}
		if len(kept) == 0 {
			continue
		}
		// Positions follow the kept members.
		if len(kept) != len(st.out.Members) {
			j := 0
			for i, m := range g.members {
				if j < len(kept) && m.out == kept[j] {
					st.at[fmt.Sprintf("members[%d]", j)] = g.members[i].pos
					j++
				}
			}
		}
		st.out.Members = kept
		out = append(out, st)
	}
	for _, g := range c.vsgOrder {
		if !g.used && c.vsgs[g.name] == g {
			c.rep.add(g.pos, Note, "virtual_server_group", "%s is used by no virtual_server: not converted", g.name)
		}
	}
	return out
}

// groupService fills in a group's members, protocol and family.
func (c *converter) groupService(st *svcState, g *vsgState) {
	fams := map[int]bool{}
	addrs := false
	for i, m := range g.members {
		st.out.Members = append(st.out.Members, m.out)
		st.at[fmt.Sprintf("members[%d]", i)] = m.pos
		if m.fam != 0 {
			fams[m.fam] = true
		}
		addrs = addrs || m.out.FWMark == 0
	}
	if len(fams) > 1 {
		// keepalived allows it with tunnelled real servers only; a
		// director service has one family.
		c.rep.add(g.pos, Error, "virtual_server_group", "%s has IPv4 and IPv6 members: director's service group has one family; split it in two", g.name)
	}
	if !addrs {
		if fams[6] && st.out.Family == 0 {
			st.out.Family = 6
			st.at["family"] = g.pos
		}
		if st.out.Protocol != "" {
			c.rep.add(st.at["protocol"], Note, "protocol", "ignored: a group of firewall marks only covers every protocol the marks are set on")
			st.out.Protocol = ""
		}
		return
	}
	if st.out.Protocol == "" {
		c.rep.add(st.pos, Warning, "virtual_server", "no protocol: keepalived makes this a UDP service (the kernel's default), and so does the conversion; add protocol TCP if you meant TCP")
		st.out.Protocol = "udp"
	}
}

// uniqueName is base if free, else base-proto, else with a number added.
func uniqueName(taken map[string]bool, base, proto string) string {
	if len(base) > 50 {
		base = base[:50]
	}
	if !taken[base] {
		return base
	}
	if proto == "" {
		proto = "fwm"
	}
	cands := []string{base + "-" + proto}
	for i := 2; i < 100; i++ {
		cands = append(cands, fmt.Sprintf("%s-%s-%d", base, proto, i))
	}
	if i := slices.IndexFunc(cands, func(n string) bool { return !taken[n] }); i >= 0 {
		return cands[i]
	}
	return base // the loader names the clash
}
