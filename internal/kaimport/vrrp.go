package kaimport

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// keepalived's defaults where they differ from director's, written out so
// that the converted pair behaves as before.
const (
	kaVersion  = 2 // director's is 3
	kaPriority = 100
	kaAdvert   = time.Second
)

// topBlock is the top level of keepalived.conf.
var topBlock = &block[struct{}]{
	name: "the top level",
	blocks: map[string]handler[struct{}]{
		"global_defs":          func(c *converter, _ struct{}, n *Node) { c.globalDefs(n) },
		"vrrp_instance":        func(c *converter, _ struct{}, n *Node) { c.instance(n) },
		"vrrp_sync_group":      func(c *converter, _ struct{}, n *Node) { c.syncGroup(n) },
		"virtual_server":       func(c *converter, _ struct{}, n *Node) { c.virtualServer(n) },
		"virtual_server_group": func(c *converter, _ struct{}, n *Node) { c.serverGroup(n) },
		"vrrp_script":          func(c *converter, _ struct{}, n *Node) { c.script(n) },
		"track_file":           func(c *converter, _ struct{}, n *Node) { c.trackFile(n) },
		"vrrp_track_file":      func(c *converter, _ struct{}, n *Node) { c.trackFile(n) },
		"vrrp_track_process":   func(c *converter, _ struct{}, n *Node) { c.trackProcess(n) },
	},
	known: topKnown,
}

// ---- global_defs ----

var globalBlock = &block[*globals]{
	name: "global_defs",
	simple: map[string]handler[*globals]{
		"notify_fifo": func(c *converter, g *globals, n *Node) {
			if !c.args(n, 1, 3) {
				return
			}
			if len(n.Args) > 1 {
				c.rep.add(n.Pos, Note, n.Key, "user %s ignored: director creates the FIFO as its own user, mode 0600", strings.Join(n.Args[1:], " "))
			}
			if !filepath.IsAbs(n.Args[0]) {
				c.rep.add(n.Pos, Error, n.Key, "%s: director needs an absolute path", n.Args[0])
				return
			}
			g.notifyFIFO = n.Args[0]
			g.pos["notify_fifo"] = n.Pos
		},
		"vrrp_version": func(c *converter, g *globals, n *Node) {
			if v, ok := c.intArg(n, 2, 3); ok {
				g.version = v
				g.pos["version"] = n.Pos
			}
		},
		"vrrp_garp_master_repeat": func(c *converter, g *globals, n *Node) {
			if v, ok := c.intArg(n, 0, 1000); ok {
				g.garpCount = &v
				g.pos["garp.count"] = n.Pos
			}
		},
		"vrrp_min_garp": func(c *converter, g *globals, n *Node) {
			if on, ok := c.boolArg(n); ok && on {
				g.minGARP = true
				g.pos["garp.count"] = n.Pos
				c.rep.add(n.Pos, Note, n.Key, "converted to garp.count 1; director's re-announcements after a handover stay")
			}
		},
		"vrrp_garp_interval": func(c *converter, g *globals, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				g.garpInterval = &d
				g.pos["garp.interval4"] = n.Pos
			}
		},
		"vrrp_gna_interval": func(c *converter, g *globals, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				g.gnaInterval = &d
				g.pos["garp.interval6"] = n.Pos
			}
		},
		"vrrp_garp_master_refresh": func(c *converter, g *globals, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				g.garpRefresh = &d
				g.pos["garp.refresh"] = n.Pos
			}
		},
		"lvs_sync_daemon": func(c *converter, _ *globals, n *Node) { c.syncDaemon(n) },
	},
	known: globalKnown,
}

func (c *converter) globalDefs(n *Node) {
	if c.global.pos == nil {
		c.global.pos = map[string]Pos{}
	}
	c.args(n, 0, 0)
	walk(c, globalBlock, &c.global, n.Block)
}

// syncDaemon reads lvs_sync_daemon IF [[inst] NAME] [id N] [maxlen N]
// [port N] [ttl N] [group ADDR].
func (c *converter) syncDaemon(n *Node) {
	if !c.args(n, 1, -1) {
		return
	}
	s := &syncState{pos: n.Pos, iface: n.Args[0]}
	for i := 1; i < len(n.Args); i++ {
		a := n.Args[i]
		switch a {
		case "id", "maxlen", "port", "ttl", "group", "inst":
			if i+1 >= len(n.Args) {
				c.rep.add(n.Pos, Error, n.Key, "%s needs a value", a)
				return
			}
			v := n.Args[i+1]
			i++
			switch a {
			case "id":
				if id, ok := c.parseInt(n, v, 0, 255); ok {
					s.id, s.idSet = id, true
				}
			case "inst":
				s.instance, s.hasInst = v, true
			default:
				c.rep.add(n.Pos, Warning, n.Key, "%s %s not supported: director uses the kernel's default", a, v)
			}
		default:
			if s.hasInst {
				c.rep.add(n.Pos, Warning, n.Key, "unknown option %q ignored", a)
				continue
			}
			// The instance name may come without "inst" (older syntax).
			s.instance, s.hasInst = a, true
		}
	}
	c.sync = s
}

// ---- vrrp_instance ----

// instanceFields maps vrrp_instance keywords to the fields they set.
var instanceFields = map[string]string{
	"interface": "interface", "virtual_router_id": "vrid", "priority": "priority",
	"version": "version", "advert_int": "advert_interval", "preempt_delay": "preempt_delay",
	"unicast_src_ip": "unicast.source", "mcast_src_ip": "unicast.source", "unicast_peer": "unicast",
	"virtual_ipaddress": "vips", "authentication": "auth_pass", "notify": "notify",
	"notify_master": "notify_master", "notify_backup": "notify_backup", "notify_fault": "notify_fault", "notify_stop": "notify_stop",
	"virtual_ipaddress_excluded": "vips_excluded", "virtual_routes": "routes", "virtual_rules": "rules",
	"use_vmac": "vmac", "vmac_xmit_base": "vmac_xmit_base",
	"garp_master_repeat": "garp.count", "garp_master_refresh": "garp.refresh",
}

type instState struct {
	pos      Pos
	out      outInstance
	at       map[string]Pos // output field (relative) -> source line
	failed   map[string]bool
	version  int
	vipDevs  []vipDev // per entry of out.VIPs
	exclDevs []vipDev // per entry of out.VIPsExcluded
	// vipSeen is where each VIP address was first listed, in either list.
	vipSeen  map[netip.Addr]Pos
	srcIP    string
	srcPos   Pos
	mcastSrc bool // the source came from mcast_src_ip
	peers    []string
	peersPos Pos
	// routed: unicast_ttl below 255, so the peers are behind routers.
	routed   bool
	authType string
	authPass string
	authPos  Pos
	count    *int
	refresh  *time.Duration
}

type vipDev struct {
	dev string // empty: none given
	pos Pos
}

var instanceBlock = &block[*instState]{
	name: "vrrp_instance",
	simple: map[string]handler[*instState]{
		"state": func(c *converter, st *instState, n *Node) {
			c.args(n, 1, 1)
			c.rep.add(n.Pos, Note, n.Key, "ignored: every director node starts as BACKUP and the priorities decide")
		},
		"interface": func(c *converter, st *instState, n *Node) {
			if c.args(n, 1, 1) {
				st.out.Interface = n.Args[0]
				st.at["interface"] = n.Pos
			}
		},
		"virtual_router_id": func(c *converter, st *instState, n *Node) {
			if v, ok := c.intArg(n, 1, 255); ok {
				st.out.VRID = v
				st.at["vrid"] = n.Pos
			}
		},
		"priority": func(c *converter, st *instState, n *Node) {
			v, ok := c.intArg(n, 1, 255)
			if !ok {
				return
			}
			if v == 255 {
				c.rep.add(n.Pos, Warning, n.Key, "255 (address owner) is not allowed in director, whose VIPs always float: converted to 254")
				v = 254
			}
			st.out.Priority = v
			st.at["priority"] = n.Pos
		},
		"version": func(c *converter, st *instState, n *Node) {
			if v, ok := c.intArg(n, 2, 3); ok {
				st.version = v
				st.at["version"] = n.Pos
			}
		},
		"advert_int": func(c *converter, st *instState, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				st.out.AdvertInterval = fmtDuration(d)
				st.at["advert_interval"] = n.Pos
			}
		},
		"nopreempt": func(c *converter, st *instState, n *Node) {
			c.args(n, 0, 0)
			f := false
			st.out.Preempt = &f
			st.at["preempt"] = n.Pos
		},
		"preempt": func(c *converter, st *instState, n *Node) {
			c.args(n, 0, 0)
			st.out.Preempt = nil
		},
		"preempt_delay": func(c *converter, st *instState, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				st.out.PreemptDelay = fmtDuration(d)
				st.at["preempt_delay"] = n.Pos
			}
		},
		"unicast_src_ip": func(c *converter, st *instState, n *Node) {
			if c.args(n, 1, 1) {
				st.srcIP, st.srcPos, st.mcastSrc = n.Args[0], n.Pos, false
			}
		},
		"mcast_src_ip": func(c *converter, st *instState, n *Node) {
			if c.args(n, 1, 1) && st.srcIP == "" {
				st.srcIP, st.srcPos, st.mcastSrc = n.Args[0], n.Pos, true
			}
		},
		"notify":        func(c *converter, st *instState, n *Node) { c.notify(st, n) },
		"notify_master": stateScript("notify_master", func(o *outInstance, a []string) { o.NotifyMaster = a }),
		"notify_backup": stateScript("notify_backup", func(o *outInstance, a []string) { o.NotifyBackup = a }),
		"notify_fault":  stateScript("notify_fault", func(o *outInstance, a []string) { o.NotifyFault = a }),
		"notify_stop":   stateScript("notify_stop", func(o *outInstance, a []string) { o.NotifyStop = a }),
		"use_vmac": func(c *converter, st *instState, n *Node) {
			if c.args(n, 0, 1) {
				st.out.VMAC = true
				if len(n.Args) == 1 {
					st.out.VMACName = n.Args[0]
				}
				st.at["vmac"] = n.Pos
			}
		},
		"vmac_xmit_base": func(c *converter, st *instState, n *Node) {
			if c.args(n, 0, 0) {
				st.out.VMACXmitBase = true
				st.at["vmac_xmit_base"] = n.Pos
			}
		},
		"unicast_ttl": func(c *converter, st *instState, n *Node) {
			if v, ok := c.intArg(n, 1, 255); ok && v < 255 {
				st.routed = true
				c.rep.add(n.Pos, Note, n.Key, "carried as unicast.routed: true (accept the peers' adverts whatever their TTL); director itself always sends with TTL 255")
			}
		},
		"garp_master_repeat": func(c *converter, st *instState, n *Node) {
			if v, ok := c.intArg(n, 0, 1000); ok {
				st.count = &v
				st.at["garp.count"] = n.Pos
			}
		},
		// keepalived's old form of lvs_sync_daemon IF NAME.
		"lvs_sync_daemon_interface": func(c *converter, st *instState, n *Node) {
			if !c.args(n, 1, 1) {
				return
			}
			if c.sync != nil {
				c.rep.add(n.Pos, Warning, n.Key, "the sync daemon is already set (line %d): ignored, as keepalived ignores it", c.sync.pos.Line)
				return
			}
			c.sync = &syncState{pos: n.Pos, iface: n.Args[0], instance: st.out.Name, hasInst: true}
			c.rep.add(n.Pos, Note, n.Key, "converted as global_defs' lvs_sync_daemon %s %s, which keepalived reads it as", n.Args[0], st.out.Name)
		},
		"garp_master_refresh": func(c *converter, st *instState, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				st.refresh = &d
				st.at["garp.refresh"] = n.Pos
			}
		},
	},
	blocks: map[string]handler[*instState]{
		"track_script":      func(c *converter, st *instState, n *Node) { c.instanceTracks(st, n) },
		"track_interface":   func(c *converter, st *instState, n *Node) { c.instanceTracks(st, n) },
		"track_file":        func(c *converter, st *instState, n *Node) { c.instanceTracks(st, n) },
		"track_process":     func(c *converter, st *instState, n *Node) { c.instanceTracks(st, n) },
		"virtual_ipaddress": func(c *converter, st *instState, n *Node) { c.vips(st, n, "vips", &st.out.VIPs, &st.vipDevs) },
		"virtual_ipaddress_excluded": func(c *converter, st *instState, n *Node) {
			c.vips(st, n, "vips_excluded", &st.out.VIPsExcluded, &st.exclDevs)
		},
		"virtual_routes": func(c *converter, st *instState, n *Node) { c.routes(st, n) },
		"virtual_rules":  func(c *converter, st *instState, n *Node) { c.rules(st, n) },
		"unicast_peer":   func(c *converter, st *instState, n *Node) { c.peers(st, n) },
		"authentication": func(c *converter, st *instState, n *Node) { c.auth(st, n) },
	},
	known: instanceKnown,
}

func (c *converter) instance(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	st := &instState{pos: n.Pos, at: map[string]Pos{"name": n.Pos}}
	st.out.Name = n.Args[0]
	st.failed = walk(c, instanceBlock, st, n.Block)
	c.insts = append(c.insts, st)
}

// vips reads virtual_ipaddress (or _excluded) into *out and *devs, for
// field: ADDR[/LEN] [dev IF] [label L] [brd A] ...
func (c *converter) vips(st *instState, n *Node, field string, out *[]string, devs *[]vipDev) {
	c.args(n, 0, 0)
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in %s", n.Key)
			continue
		}
		if a, ok := vipAddr(it.Key); ok {
			if first, dup := st.vipSeen[a]; dup {
				// keepalived adds the address once and does not complain.
				c.rep.add(it.Pos, Warning, n.Key, "%s is listed twice (first on line %d): converted once; remove one", a, first.Line)
				continue
			}
			if st.vipSeen == nil {
				st.vipSeen = map[netip.Addr]Pos{}
			}
			st.vipSeen[a] = it.Pos
		}
		if i := len(*out); i == 0 {
			st.at[field] = it.Pos
		}
		st.at[fmt.Sprintf("%s[%d]", field, len(*out))] = it.Pos
		*out = append(*out, it.Key)
		*devs = append(*devs, vipDev{pos: it.Pos})
		dev := &(*devs)[len(*devs)-1]
		for i := 0; i < len(it.Args); i++ {
			opt := it.Args[i]
			val := ""
			if vipValueOpts[opt] {
				if i+1 >= len(it.Args) {
					c.rep.add(it.Pos, Error, "virtual_ipaddress", "%s needs a value", opt)
					break
				}
				i++
				val = it.Args[i]
			}
			switch {
			case opt == "dev":
				dev.dev = val
			case opt == "label":
				c.rep.add(it.Pos, Note, "virtual_ipaddress", "label %s ignored: director adds addresses without a label", val)
			case vipValueOpts[opt] || vipFlagOpts[opt]:
				c.rep.add(it.Pos, Warning, "virtual_ipaddress", "option %s not supported; ignored", strings.TrimSpace(opt+" "+val))
			default:
				c.rep.add(it.Pos, Warning, "virtual_ipaddress", "unknown option %q ignored", opt)
			}
		}
	}
}

// vipAddr is the address of a VIP entry (ADDR or ADDR/LEN), if it is one.
func vipAddr(s string) (netip.Addr, bool) {
	a, _, _ := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(a)
	return ip.Unmap(), err == nil && ip.Zone() == ""
}

// routes reads virtual_routes: [src ADDR] [to] DEST [via|gw ADDR] [dev IF]
// [table N] [metric|preference N] ...; other options are reported.
func (c *converter) routes(st *instState, n *Node) {
	c.args(n, 0, 0)
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in virtual_routes")
			continue
		}
		words := append([]string{it.Key}, it.Args...)
		var r outRoute
		ok := true
		for i := 0; i < len(words) && ok; i++ {
			w := words[i]
			val := func() string {
				if i+1 >= len(words) {
					c.rep.add(it.Pos, Error, "virtual_routes", "%s needs a value", w)
					ok = false
					return ""
				}
				i++
				return words[i]
			}
			switch w {
			case "src":
				r.Src = val()
			case "to":
				r.To = val()
			case "via", "gw":
				r.Via = val()
			case "dev", "oif":
				r.Dev = val()
			case "table":
				v := val()
				if ok {
					r.Table, ok = c.routeNumber(it, "table", v)
				}
			case "metric", "preference", "priority":
				v := val()
				if ok {
					r.Metric, ok = c.routeNumber(it, w, v)
				}
			case "no_track":
			case "blackhole", "unreachable", "prohibit", "throw", "local", "broadcast", "multicast", "nat", "unicast":
				if r.To == "" {
					c.rep.add(it.Pos, Warning, "virtual_routes", "route type %s not supported: route skipped", w)
					ok = false
				}
			default:
				if r.To == "" && isDest(w) {
					r.To = w
					continue
				}
				c.rep.add(it.Pos, Warning, "virtual_routes", "option %s not supported: route skipped", w)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if r.To == "" {
			c.rep.add(it.Pos, Error, "virtual_routes", "route without a destination")
			continue
		}
		st.at[fmt.Sprintf("routes[%d]", len(st.out.Routes))] = it.Pos
		st.out.Routes = append(st.out.Routes, r)
	}
}

// isDest reports whether w looks like a route destination.
func isDest(w string) bool {
	if w == "default" {
		return true
	}
	a, _, _ := strings.Cut(w, "/")
	_, err := netip.ParseAddr(a)
	return err == nil
}

func (c *converter) routeNumber(it *Node, what, v string) (int, bool) {
	if what == "table" {
		switch v {
		case "main":
			return 0, true
		case "local":
			return 255, true
		case "default":
			return 253, true
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		c.rep.add(it.Pos, Error, it.Key, "%s %q is not a number (named tables are not read from rt_tables)", what, v)
		return 0, false
	}
	return int(n), true
}

// rules reads virtual_rules: [from ADDR|all] [to ADDR|all] table N
// [priority|preference|pref N]; other options are reported.
func (c *converter) rules(st *instState, n *Node) {
	c.args(n, 0, 0)
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in virtual_rules")
			continue
		}
		words := append([]string{it.Key}, it.Args...)
		var r outRule
		ok := true
		for i := 0; i < len(words) && ok; i++ {
			w := words[i]
			if i+1 >= len(words) && w != "no_track" {
				c.rep.add(it.Pos, Warning, "virtual_rules", "option %s not supported: rule skipped", w)
				ok = false
				break
			}
			switch w {
			case "from":
				i++
				if words[i] != "all" {
					r.From = words[i]
				}
			case "to":
				i++
				if words[i] != "all" {
					r.To = words[i]
				}
			case "table", "lookup":
				i++
				r.Table, ok = c.routeNumber(it, "table", words[i])
			case "priority", "preference", "pref":
				i++
				r.Priority, ok = c.routeNumber(it, w, words[i])
			case "no_track":
			default:
				c.rep.add(it.Pos, Warning, "virtual_rules", "option %s not supported: rule skipped", w)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if r.Table == 0 {
			c.rep.add(it.Pos, Warning, "virtual_rules", "rule without a table (goto, nop and the like are not supported): skipped")
			continue
		}
		st.at[fmt.Sprintf("rules[%d]", len(st.out.Rules))] = it.Pos
		st.out.Rules = append(st.out.Rules, r)
	}
}

var vipValueOpts = map[string]bool{"dev": true, "label": true, "brd": true, "broadcast": true, "scope": true, "peer": true, "preferred_lft": true, "track_group": true}
var vipFlagOpts = map[string]bool{"home": true, "-nodad": true, "nodad": true, "mngtmpaddr": true, "noprefixroute": true, "autojoin": true, "no_track": true, "use_vmac": true}

// peers reads unicast_peer { ADDR [min_ttl N] [max_ttl N] ... }.
func (c *converter) peers(st *instState, n *Node) {
	c.args(n, 0, 0)
	st.peersPos = n.Pos
	if len(n.Block) == 0 {
		c.rep.add(n.Pos, Warning, n.Key, "empty: the instance stays multicast")
	}
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in unicast_peer")
			continue
		}
		if i := slices.Index(st.peers, it.Key); i >= 0 {
			c.rep.add(it.Pos, Warning, "unicast_peer", "%s is listed twice: converted once; remove one", it.Key)
			continue
		}
		st.at[fmt.Sprintf("unicast.peers[%d]", len(st.peers))] = it.Pos
		st.peers = append(st.peers, it.Key)
		if len(it.Args) > 0 {
			c.rep.add(it.Pos, Warning, "unicast_peer", "%s not supported; ignored (director accepts adverts from listed peers only, with TTL 255)", strings.Join(it.Args, " "))
		}
	}
}

// authKeywords are the keywords of an authentication block.
var authKeywords = []string{"auth_pass", "auth_type"}

func (c *converter) auth(st *instState, n *Node) {
	c.args(n, 0, 0)
	for _, it := range n.Block {
		switch it.Key {
		case "auth_type":
			if c.args(it, 1, 1) {
				st.authType = strings.ToUpper(it.Args[0])
			}
		case "auth_pass":
			if c.args(it, 1, 1) {
				st.authPass, st.authPos = it.Args[0], it.Pos
			}
		default:
			c.unknown("authentication", authKeywords, it)
		}
	}
	switch st.authType {
	case "PASS":
		if st.authPass == "" {
			c.rep.add(n.Pos, Error, n.Key, "auth_type PASS needs auth_pass")
		}
	case "AH":
		c.rep.add(n.Pos, Warning, n.Key, "auth_type AH not supported: the instance is converted without authentication, and will not interoperate with a keepalived peer that uses AH")
		st.authPass = ""
	case "":
		c.rep.add(n.Pos, Error, n.Key, "needs auth_type")
	default:
		c.rep.add(n.Pos, Error, n.Key, "unknown auth_type %q: want PASS or AH", st.authType)
		st.authPass = ""
	}
}

// notify reads notify SCRIPT [user [group]]. director runs the notify
// command itself, without a shell, with the same four arguments keepalived
// appends, so a script with no arguments of its own carries over unchanged.
func (c *converter) notify(st *instState, n *Node) {
	if cmd, ok := c.notifyCommand(n); ok {
		st.out.Notify = cmd
		st.at["notify"] = n.Pos
	}
}

// notifyCommand reads the generic notify command of an instance or group.
func (c *converter) notifyCommand(n *Node) (string, bool) {
	if !c.args(n, 1, 3) {
		return "", false
	}
	if len(n.Args) > 1 {
		c.rep.add(n.Pos, Note, n.Key, "user %s ignored: director runs notify as its own user", strings.Join(n.Args[1:], " "))
	}
	cmd := strings.Fields(n.Args[0])
	switch {
	case len(cmd) == 0:
		c.rep.add(n.Pos, Error, n.Key, "empty script")
	case len(cmd) > 1:
		c.rep.add(n.Pos, Warning, n.Key, "arguments not supported: director runs %s with only INSTANCE|GROUP <name> <state> [<priority>]; wrap the command and its arguments in a script, or use notify_master, notify_backup, notify_fault and notify_stop, which take arguments", cmd[0])
	case !filepath.IsAbs(cmd[0]):
		c.rep.add(n.Pos, Error, n.Key, "%s: director needs an absolute path", cmd[0])
	default:
		return cmd[0], true
	}
	return "", false
}

// finishInstance applies defaults that depend on the whole block and on
// global_defs, then records where each field came from.
func (c *converter) finishInstance(st *instState, path string) outInstance {
	o := st.out
	c.origin[path] = st.pos
	c.markBad(path, st.failed, instanceFields)
	if o.Interface == "" && !st.failed["interface"] {
		c.rep.add(st.pos, Error, "vrrp_instance", "%s has no interface: director needs one", o.Name)
		c.bad[path+".interface"] = true
	}
	if o.VRID == 0 && !st.failed["virtual_router_id"] {
		c.rep.add(st.pos, Error, "vrrp_instance", "%s has no virtual_router_id", o.Name)
		c.bad[path+".vrid"] = true
	}
	if o.Priority == 0 {
		o.Priority = kaPriority
	}
	if o.AdvertInterval == "" {
		o.AdvertInterval = fmtDuration(kaAdvert)
	}
	v6 := false
	if len(o.VIPs) > 0 {
		a, _, _ := strings.Cut(o.VIPs[0], "/")
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
			v6 = true
		}
	}
	// Version: the instance's, else global_defs', else keepalived's 2;
	// keepalived always runs IPv6 instances as version 3.
	o.Version = st.version
	if o.Version == 0 {
		o.Version = kaVersion
		if c.global.version != 0 {
			o.Version = c.global.version
			st.at["version"] = c.global.pos["version"]
		}
	}
	if v6 && o.Version == 2 {
		if p, set := st.at["version"]; set {
			c.rep.add(p, Note, "version", "%s has IPv6 VIPs: keepalived runs it as version 3, and so does director", o.Name)
		}
		o.Version = 3
	}
	if o.Preempt != nil && !*o.Preempt && o.PreemptDelay != "" {
		c.rep.add(st.at["preempt_delay"], Warning, "preempt_delay", "has no effect with nopreempt (keepalived ignores it too); dropped")
		o.PreemptDelay = ""
		delete(st.at, "preempt_delay")
	}
	// "dev" carries over where it changes where the address goes: another
	// interface, or the VRRP interface itself when the VIPs default to the
	// VMAC.
	withDev := func(vips []string, devs []vipDev) {
		for i, d := range devs {
			if d.dev != "" && (d.dev != o.Interface || o.VMAC) {
				vips[i] += " dev " + d.dev
			}
		}
	}
	withDev(o.VIPs, st.vipDevs)
	withDev(o.VIPsExcluded, st.exclDevs)
	c.finishUnicast(st, &o, path)
	if st.authPass != "" {
		switch {
		case o.Version != 2:
			c.rep.add(st.authPos, Warning, "authentication", "ignored: VRRP version 3 has no authentication (keepalived ignores it too)")
		default:
			if len(st.authPass) > 8 {
				c.rep.add(st.authPos, Note, "auth_pass", "only the first 8 characters are used, as keepalived does")
				st.authPass = st.authPass[:8]
			}
			o.AuthPass = st.authPass
			st.at["auth_pass"] = st.authPos
		}
	}
	o.GARP = c.finishGARP(st, v6)
	c.note(path, st.at)
	return o
}

func (c *converter) finishUnicast(st *instState, o *outInstance, path string) {
	if len(st.peers) == 0 {
		if st.srcIP != "" {
			kw := "unicast_src_ip"
			if st.mcastSrc {
				kw = "mcast_src_ip"
			}
			c.rep.add(st.srcPos, Warning, kw, "not supported without unicast_peer: director sends multicast adverts from the interface's primary address")
		}
		return
	}
	o.Unicast = &outUnicast{Source: st.srcIP, Peers: st.peers, Routed: st.routed}
	st.at["unicast"] = st.peersPos
	if st.srcIP == "" {
		return // director, like keepalived, takes the interface's address
	}
	st.at["unicast.source"] = st.srcPos
}

func (c *converter) finishGARP(st *instState, v6 bool) *outGARP {
	g := &outGARP{}
	set := false
	count := st.count
	if count == nil {
		count = c.global.garpCount
		if count != nil {
			st.at["garp.count"] = c.global.pos["garp.count"]
		}
	}
	if count == nil && c.global.minGARP {
		one := 1
		count = &one
		st.at["garp.count"] = c.global.pos["garp.count"]
	}
	if count != nil {
		g.Count, set = count, true
	}
	interval, key := c.global.garpInterval, "garp.interval4"
	if v6 {
		interval, key = c.global.gnaInterval, "garp.interval6"
	}
	if interval != nil {
		g.Interval, set = fmtDuration(*interval), true
		st.at["garp.interval"] = c.global.pos[key]
	}
	refresh := st.refresh
	if refresh == nil && c.global.garpRefresh != nil {
		refresh = c.global.garpRefresh
		st.at["garp.refresh"] = c.global.pos["garp.refresh"]
	}
	if refresh != nil && *refresh > 0 {
		g.Refresh, set = fmtDuration(*refresh), true
	}
	if !set {
		return nil
	}
	return g
}
