package kaimport

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/ipvs"
)

// keepalived's LVS defaults, written out because director's differ.
const (
	kaScheduler      = "wlc"
	kaForwarding     = "nat" // director's default is dr
	kaPersistTimeout = 6 * time.Minute
)

// merged returns a copy of a with b's entries added.
func merged[T any](a, b map[string]handler[T]) map[string]handler[T] {
	m := make(map[string]handler[T], len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// ---- virtual_server ----

type svcState struct {
	pos      Pos
	out      outService
	at       map[string]Pos
	defaults checkDefaults
	flags    []schedFlag
	rss      []*rsState
	grainPos Pos
	grain    string
	persist  *time.Duration
	failed   map[string]bool
	// inhibit is inhibit_on_failure, the real servers' default.
	inhibit *bool
	// quorum and hysteresis as keepalived reads them, mapped in
	// finishService.
	quorum, hysteresis *int
	// group names the virtual_server_group of "virtual_server group NAME".
	group string
	// tunnel is the encapsulation of lvs_method TUN's options.
	tunnel *outTunnel
	// ops and pe (persistence_engine) are checked against the protocol
	// and persistence in finishService.
	opsPos, pePos Pos
	ops           bool
	pe            string
}

// serviceFields and realServerFields map keywords to the fields they set.
var serviceFields = map[string]string{
	"lvs_sched": "scheduler", "lb_algo": "scheduler", "lvs_method": "forwarding", "lb_kind": "forwarding",
	"protocol": "protocol", "persistence_timeout": "persistence", "persistence_granularity": "persistence",
	"sorry_server": "sorry_server", "ip_family": "family", "real_server": "real_servers",
	"quorum_up": "quorum_up", "quorum_down": "quorum_down", "quorum": "quorum", "hysteresis": "quorum",
	"ops": "ops", "persistence_engine": "persistence",
}

var realServerFields = map[string]string{
	"weight": "weight", "uthreshold": "upper_threshold", "lthreshold": "lower_threshold", "lvs_method": "forwarding",
	"notify_up": "notify_up", "notify_down": "notify_down",
	"HTTP_GET": "checks", "SSL_GET": "checks", "TCP_CHECK": "checks", "UDP_CHECK": "checks", "PING_CHECK": "checks",
	"SMTP_CHECK": "checks", "DNS_CHECK": "checks", "MISC_CHECK": "checks", "FILE_CHECK": "checks",
}

type schedFlag struct {
	name string
	pos  Pos
}

var serviceBlock = &block[*svcState]{
	name: "virtual_server",
	simple: merged(checkSettings(func(s *svcState) *checkDefaults { return &s.defaults }), map[string]handler[*svcState]{
		"lvs_sched":   scheduler,
		"lb_algo":     scheduler,
		"quorum_up":   addedArgsHook("quorum_up", "<service> UP", func(st *svcState, a []string) { st.out.QuorumUp = a }, func(st *svcState) map[string]Pos { return st.at }),
		"quorum_down": addedArgsHook("quorum_down", "<service> DOWN", func(st *svcState, a []string) { st.out.QuorumDown = a }, func(st *svcState) map[string]Pos { return st.at }),
		"lvs_method":  serviceForwarding,
		"lb_kind":     serviceForwarding,
		"protocol": func(c *converter, st *svcState, n *Node) {
			if !c.args(n, 1, 1) {
				return
			}
			switch p := strings.ToLower(n.Args[0]); p {
			case "tcp", "udp", "sctp":
				st.out.Protocol = p
				st.at["protocol"] = n.Pos
			default:
				c.rep.add(n.Pos, Error, n.Key, "want TCP, UDP or SCTP, got %q", n.Args[0])
			}
		},
		"persistence_timeout": func(c *converter, st *svcState, n *Node) {
			d := kaPersistTimeout // keepalived's default when no value is given
			if len(n.Args) > 0 {
				v, ok := c.intArg(n, 1, 1<<31-1)
				if !ok {
					return
				}
				d = time.Duration(v) * time.Second
			}
			st.persist = &d
			st.at["persistence"] = n.Pos
			st.at["persistence.timeout"] = n.Pos
		},
		"persistence_granularity": func(c *converter, st *svcState, n *Node) {
			if c.args(n, 1, 1) {
				st.grain, st.grainPos = n.Args[0], n.Pos
			}
		},
		"sorry_server": func(c *converter, st *svcState, n *Node) {
			if !c.args(n, 1, 2) {
				return
			}
			s := n.Args[0]
			if len(n.Args) == 2 {
				p, ok := c.parseInt(n, n.Args[1], 1, 65535)
				if !ok {
					return
				}
				s = joinHostPort(s, p)
			}
			st.out.SorryServer = s
			st.at["sorry_server"] = n.Pos
		},
		"ip_family": func(c *converter, st *svcState, n *Node) {
			if !c.args(n, 1, 1) {
				return
			}
			switch n.Args[0] {
			case "inet":
				st.out.Family = 4
			case "inet6":
				st.out.Family = 6
			default:
				c.rep.add(n.Pos, Error, n.Key, "want inet or inet6, got %q", n.Args[0])
				return
			}
			st.at["family"] = n.Pos
		},
		"inhibit_on_failure": func(c *converter, st *svcState, n *Node) {
			if v, ok := c.boolArg(n); ok {
				st.inhibit = &v
			}
		},
		"quorum": func(c *converter, st *svcState, n *Node) {
			if v, ok := c.intArg(n, 1, 1<<31-1); ok {
				st.quorum = &v
				st.at["quorum"] = n.Pos
			}
		},
		"hysteresis": func(c *converter, st *svcState, n *Node) {
			if v, ok := c.intArg(n, 0, 1<<31-1); ok {
				st.hysteresis = &v
				st.at["hysteresis"] = n.Pos
			}
		},
		"ops": func(c *converter, st *svcState, n *Node) {
			c.args(n, 0, 0)
			st.ops, st.opsPos = true, n.Pos
		},
		"persistence_engine": func(c *converter, st *svcState, n *Node) {
			if c.args(n, 1, 1) {
				st.pe, st.pePos = n.Args[0], n.Pos
			}
		},
		"flag-1":      schedFlagHandler,
		"flag-2":      schedFlagHandler,
		"flag-3":      schedFlagHandler,
		"sh-port":     schedFlagHandler,
		"sh-fallback": schedFlagHandler,
		"mh-port":     schedFlagHandler,
		"mh-fallback": schedFlagHandler,
	}),
	blocks: map[string]handler[*svcState]{
		"real_server": func(c *converter, st *svcState, n *Node) { c.realServer(st, n) },
	},
	known: serviceKnown,
}

func scheduler(c *converter, st *svcState, n *Node) {
	if c.args(n, 1, 1) {
		st.out.Scheduler = n.Args[0]
		st.at["scheduler"] = n.Pos
	}
}

func serviceForwarding(c *converter, st *svcState, n *Node) {
	if f, tun, ok := c.forwarding(n); ok {
		st.out.Forwarding, st.tunnel = f, tun
		st.at["forwarding"] = n.Pos
		if tun != nil {
			st.at["tunnel"] = n.Pos
		}
	}
}

func schedFlagHandler(c *converter, st *svcState, n *Node) {
	c.args(n, 0, 0)
	st.flags = append(st.flags, schedFlag{name: n.Key, pos: n.Pos})
}

// forwarding reads lvs_method/lb_kind NAT|DR|TUN [type ipip|gue|gre]
// [port N] [nocsum|csum|remcsum], checking the tunnel options as
// keepalived does. The tunnel is nil for anything but TUN.
func (c *converter) forwarding(n *Node) (string, *outTunnel, bool) {
	if !c.args(n, 1, -1) {
		return "", nil, false
	}
	switch strings.ToUpper(n.Args[0]) {
	case "NAT":
		c.args(n, 1, 1)
		return "nat", nil, true
	case "DR":
		c.args(n, 1, 1)
		return "dr", nil, true
	case "TUN":
		tun, ok := c.tunnelOptions(n)
		return "tunnel", tun, ok
	}
	c.rep.add(n.Pos, Error, n.Key, "want NAT, DR or TUN, got %q", n.Args[0])
	return "", nil, false
}

// tunnelOptions reads what follows TUN. keepalived refuses the same
// combinations as ipvsadm: gue needs a port and only gue has one, ipip has
// no checksum option, gre no remote checksum.
func (c *converter) tunnelOptions(n *Node) (*outTunnel, bool) {
	t := &outTunnel{Type: "ipip", Checksum: "nocsum"}
	args := n.Args[1:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "type", "port":
			if i+1 == len(args) {
				c.rep.add(n.Pos, Error, n.Key, "%s needs a value", a)
				return nil, false
			}
			i++
			if a == "type" {
				if !slices.Contains(config.TunnelTypes, args[i]) {
					c.rep.add(n.Pos, Error, n.Key, "tunnel type %q: want ipip, gue or gre", args[i])
					return nil, false
				}
				t.Type = args[i]
				continue
			}
			p, ok := c.parseInt(n, args[i], 1, 65535)
			if !ok {
				return nil, false
			}
			t.Port = p
		case "nocsum", "csum", "remcsum":
			t.Checksum = a
		default:
			c.rep.add(n.Pos, Error, n.Key, "unknown tunnel option %q: want type, port, nocsum, csum or remcsum", a)
			return nil, false
		}
	}
	switch {
	case (t.Type == "gue") != (t.Port != 0):
		c.rep.add(n.Pos, Error, n.Key, "a gue tunnel needs a port, and only a gue tunnel has one")
		return nil, false
	case t.Type == "ipip" && t.Checksum != "nocsum":
		c.rep.add(n.Pos, Error, n.Key, "an ipip tunnel has no checksum option")
		return nil, false
	case t.Type == "gre" && t.Checksum == "remcsum":
		c.rep.add(n.Pos, Error, n.Key, "a gre tunnel has no remote checksum offload")
		return nil, false
	}
	if t.Checksum == "nocsum" {
		t.Checksum = "" // the default, left unwritten
	}
	return t, true
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// virtualServer reads virtual_server ADDR PORT | fwmark N | group NAME.
func (c *converter) virtualServer(n *Node) {
	st := &svcState{pos: n.Pos, at: map[string]Pos{}}
	switch {
	case len(n.Args) >= 1 && n.Args[0] == "group":
		// The group may be defined further on: resolved in finish.
		if !c.args(n, 2, 2) {
			return
		}
		st.group = n.Args[1]
		st.at["members"] = n.Pos
	case len(n.Args) >= 1 && n.Args[0] == "fwmark":
		if !c.args(n, 2, 2) {
			return
		}
		v, err := strconv.ParseUint(n.Args[1], 10, 32)
		if err != nil || v == 0 {
			c.rep.add(n.Pos, Error, n.Key, "fwmark: want a number from 1 to 4294967295, got %q", n.Args[1])
			return
		}
		st.out.FWMark = int(v)
		st.out.Name = fmt.Sprintf("fwmark-%d", v)
		st.at["fwmark"] = n.Pos
	case len(n.Args) == 1:
		c.rep.add(n.Pos, Warning, n.Key, "a virtual server without a port (every port, persistent) is not supported: this service is skipped")
		return
	default:
		if !c.args(n, 2, 2) {
			return
		}
		port, ok := c.parseInt(n, n.Args[1], 1, 65535)
		if !ok {
			return
		}
		st.out.VIP, st.out.Port = n.Args[0], port
		st.at["vip"], st.at["port"] = n.Pos, n.Pos
	}
	st.at["name"] = n.Pos
	st.failed = walk(c, serviceBlock, st, n.Block)
	if len(st.rss) == 0 && !st.failed["real_server"] {
		c.rep.add(n.Pos, Warning, n.Key, "no real_server: keepalived ignores this service, and it is not converted")
		return
	}
	if st.group != "" {
		c.svcs = append(c.svcs, st)
		return
	}
	if st.out.FWMark == 0 {
		if st.out.Protocol == "" {
			// keepalived leaves the protocol 0, which the kernel takes as UDP.
			c.rep.add(n.Pos, Warning, n.Key, "no protocol: keepalived makes this a UDP service (the kernel's default), and so does the conversion; add protocol TCP if you meant TCP")
			st.out.Protocol = "udp"
		}
		// Names allow letters, digits, '.', '_' and '-': IPv6 colons become '_'.
		st.out.Name = fmt.Sprintf("%s-%s-%d", st.out.Protocol, strings.ReplaceAll(st.out.VIP, ":", "_"), st.out.Port)
	} else if st.out.Protocol != "" {
		c.rep.add(st.at["protocol"], Note, "protocol", "ignored: a firewall-mark service covers every protocol the mark is set on")
		st.out.Protocol = ""
	}
	c.svcs = append(c.svcs, st)
}

// ---- real_server ----

type rsState struct {
	pos      Pos
	out      outRealServer
	at       map[string]Pos
	defaults checkDefaults
	checks   []*checkState
	failed   map[string]bool
	inhibit  *bool // inhibit_on_failure
	// tunnel is the encapsulation of its own lvs_method TUN (keepalived
	// starts a real server's options afresh: plain TUN is ipip, whatever
	// the service's).
	tunnel *outTunnel
	tunPos Pos
}

var realServerBlock = &block[*rsState]{
	name: "real_server",
	simple: merged(checkSettings(func(r *rsState) *checkDefaults { return &r.defaults }), map[string]handler[*rsState]{
		"weight": func(c *converter, st *rsState, n *Node) {
			if v, ok := c.intArg(n, 0, 65535); ok {
				st.out.Weight = &v
				st.at["weight"] = n.Pos
			}
		},
		"uthreshold": func(c *converter, st *rsState, n *Node) {
			if v, ok := c.intArg(n, 0, 1<<31-1); ok {
				st.out.UpperThreshold = v
				st.at["upper_threshold"] = n.Pos
			}
		},
		"lthreshold": func(c *converter, st *rsState, n *Node) {
			if v, ok := c.intArg(n, 0, 1<<31-1); ok {
				st.out.LowerThreshold = v
				st.at["lower_threshold"] = n.Pos
			}
		},
		"lvs_method": func(c *converter, st *rsState, n *Node) {
			if f, tun, ok := c.forwarding(n); ok {
				st.out.Forwarding, st.tunnel, st.tunPos = f, tun, n.Pos
				st.at["forwarding"] = n.Pos
			}
		},
		"inhibit_on_failure": func(c *converter, st *rsState, n *Node) {
			if v, ok := c.boolArg(n); ok {
				st.inhibit = &v
			}
		},
		"notify_up":   addedArgsHook("notify_up", "<service> <address:port> UP", func(st *rsState, a []string) { st.out.NotifyUp = a }, func(st *rsState) map[string]Pos { return st.at }),
		"notify_down": addedArgsHook("notify_down", "<service> <address:port> DOWN", func(st *rsState, a []string) { st.out.NotifyDown = a }, func(st *rsState) map[string]Pos { return st.at }),
	}),
	blocks: checkerBlocks,
	known:  realServerKnown,
}

func (c *converter) realServer(svc *svcState, n *Node) {
	if !c.args(n, 1, 2) {
		return
	}
	st := &rsState{pos: n.Pos, at: map[string]Pos{"address": n.Pos}}
	st.out.Address = n.Args[0]
	if len(n.Args) == 2 {
		p, ok := c.parseInt(n, n.Args[1], 1, 65535)
		if !ok {
			return
		}
		st.out.Port = p
		st.at["port"] = n.Pos
	}
	st.failed = walk(c, realServerBlock, st, n.Block)
	svc.rss = append(svc.rss, st)
}

// finishService applies keepalived's defaults, resolves flags and checks,
// and records where each field came from.
func (c *converter) finishService(st *svcState, path string) outService {
	o := st.out
	c.origin[path] = st.pos
	c.markBad(path, st.failed, serviceFields)
	if o.Scheduler == "" {
		o.Scheduler = kaScheduler
	}
	if o.Forwarding == "" {
		o.Forwarding = kaForwarding
	}
	for _, f := range st.flags {
		name := f.name
		if strings.HasPrefix(name, "flag-") {
			name = flagName(o.Scheduler, name)
			if name == "" {
				c.rep.add(f.pos, Warning, f.name, "not supported with scheduler %s; ignored", o.Scheduler)
				continue
			}
		}
		st.at[fmt.Sprintf("scheduler_flags[%d]", len(o.SchedulerFlags))] = f.pos
		o.SchedulerFlags = append(o.SchedulerFlags, name)
	}
	if st.persist != nil {
		o.Persistence = &outPersistence{Timeout: fmtDuration(*st.persist), Netmask: st.grain}
		if st.grain != "" {
			st.at["persistence.netmask"] = st.grainPos
		}
	} else if st.grain != "" {
		c.rep.add(st.grainPos, Warning, "persistence_granularity", "has no effect without persistence_timeout; ignored")
	}
	c.opsAndEngine(st, &o)
	if o.Forwarding == "tunnel" && st.tunnel != nil && st.tunnel.Type != "ipip" {
		o.Tunnel = st.tunnel
	}
	// keepalived removes a real server listed twice (the second), with a
	// complaint; director's loader would refuse the list. With DR or TUN
	// forwarding keepalived gives IPVS the virtual service's port, so one
	// address on two ports is the same destination: the second add fails
	// in keepalived, and the loader refuses it too.
	seen := map[string]Pos{}
	routed := map[string]Pos{}
	rss := st.rss[:0:0]
	for _, rs := range st.rss {
		addr := rs.out.Address
		if a, err := netip.ParseAddr(addr); err == nil {
			addr = a.Unmap().String()
		}
		k := fmt.Sprintf("%s %d", addr, cmp.Or(rs.out.Port, st.out.Port))
		if first, dup := seen[k]; dup {
			c.rep.add(rs.pos, Warning, "real_server", "%s is listed twice (first on line %d): keepalived removes the second, and so does the conversion", strings.Replace(k, " ", " port ", 1), first.Line)
			continue
		}
		if fwd := cmp.Or(rs.out.Forwarding, st.out.Forwarding); fwd == "dr" || fwd == "tunnel" {
			if first, dup := routed[addr]; dup {
				kind := "DR"
				if fwd == "tunnel" {
					kind = "TUN"
				}
				c.rep.add(rs.pos, Warning, "real_server", "%s is already a real server of this service (line %d): with %s forwarding IPVS has one destination per address, so keepalived fails to add the second, and the conversion leaves it out", addr, first.Line, kind)
				continue
			}
			routed[addr] = rs.pos
		}
		seen[k] = rs.pos
		rss = append(rss, rs)
	}
	st.rss = rss
	lists := make([][]placedCheck, len(st.rss))
	removes, inhibits := 0, 0
	for j, rs := range st.rss {
		r := rs.out
		rp := fmt.Sprintf("%s.real_servers[%d]", path, j)
		c.origin[rp] = rs.pos
		c.markBad(rp, rs.failed, realServerFields)
		if r.Weight == nil {
			one := 1 // keepalived's default, and director's
			r.Weight = &one
		}
		// A real server's own lvs_method TUN brings its own encapsulation;
		// written when it is not the service's.
		if r.Forwarding == "tunnel" && rs.tunnel != nil {
			svcTun := &outTunnel{Type: "ipip"}
			if o.Forwarding == "tunnel" && o.Tunnel != nil {
				svcTun = o.Tunnel
			}
			if *rs.tunnel != *svcTun {
				r.Tunnel = rs.tunnel
				rs.at["tunnel"] = rs.tunPos
			}
		}
		lists[j] = c.resolveChecks(rs, st.defaults)
		if len(lists[j]) > 0 {
			if inhibit := cmp.Or(rs.inhibit, st.inhibit); inhibit != nil && *inhibit {
				inhibits++
			} else {
				removes++
			}
		}
		c.note(rp, rs.at)
		o.RealServers = append(o.RealServers, r)
	}
	if sameChecks(lists) {
		// Equal checks on every real server are written once, on the service.
		o.checks = bareChecks(lists[0])
		c.noteChecks(path, lists[0])
	} else {
		for j, l := range lists {
			if len(l) > 0 {
				o.RealServers[j].checks = bareChecks(l)
				c.noteChecks(fmt.Sprintf("%s.real_servers[%d]", path, j), l)
			}
		}
	}
	// Without inhibit_on_failure keepalived removes a failed real server;
	// with it, it sets its weight to 0 (director's drain, the default).
	switch {
	case removes > 0 && inhibits == 0:
		o.OnFailure = "remove"
	case removes > 0:
		c.rep.add(st.pos, Warning, "inhibit_on_failure", "set on some real servers only: director decides per service, and drains (weight 0) every failed server, where keepalived removed those without it")
	}
	c.quorum(st, &o)
	c.note(path, st.at)
	return o
}

// opsAndEngine converts ops and persistence_engine where keepalived and
// the kernel give them an effect: ops on UDP and firewall-mark services
// (keepalived resets it on TCP and SCTP), the sip engine with persistence
// on the same (the kernel's engine reads UDP only).
func (c *converter) opsAndEngine(st *svcState, o *outService) {
	udpOrMark := o.Protocol == "udp" || o.Protocol == ""
	if st.ops {
		if udpOrMark {
			o.OPS = true
			st.at["ops"] = st.opsPos
		} else {
			c.rep.add(st.opsPos, Warning, "ops", "one-packet scheduling is for UDP services: keepalived resets it on %s, and so does the conversion", strings.ToUpper(o.Protocol))
		}
	}
	if st.pe == "" {
		return
	}
	switch {
	case !slices.Contains(ipvs.PersistenceEngines(), st.pe):
		c.rep.add(st.pePos, Warning, "persistence_engine", "unknown engine %q (the kernel has %s): keepalived's writes would fail; ignored", st.pe, strings.Join(ipvs.PersistenceEngines(), ", "))
	case o.Persistence == nil:
		c.rep.add(st.pePos, Warning, "persistence_engine", "has no effect without persistence_timeout; ignored")
	case !udpOrMark:
		c.rep.add(st.pePos, Warning, "persistence_engine", "the %s engine reads UDP only: no effect on a %s service; ignored", st.pe, strings.ToUpper(o.Protocol))
	default:
		o.Persistence.Engine = st.pe
		st.at["persistence.engine"] = st.pePos
	}
}

// quorum maps keepalived's quorum and hysteresis. keepalived loses the
// quorum below quorum-hysteresis and regains it at quorum+hysteresis;
// director loses it below quorum and regains it at quorum+hysteresis.
func (c *converter) quorum(st *svcState, o *outService) {
	if st.quorum == nil && st.hysteresis == nil {
		return
	}
	q, h := 1, 0 // keepalived's defaults
	if st.quorum != nil {
		q = *st.quorum
	}
	if st.hysteresis != nil {
		h = *st.hysteresis
	}
	lose, gain := q-h, q+h
	pos := cmp.Or(st.at["hysteresis"], st.at["quorum"])
	if lose < 1 {
		c.rep.add(pos, Note, "hysteresis", "quorum %d - hysteresis %d is below 1: keepalived never loses this quorum, director loses it when no live weight is left", q, h)
		lose = 1
	}
	o.Quorum, o.Hysteresis = lose, gain-lose
	if h > 0 {
		c.rep.add(pos, Note, "hysteresis", "keepalived's quorum %d, hysteresis %d (lost below %d, regained at %d) is director's quorum: %d, hysteresis: %d", q, h, q-h, gain, o.Quorum, o.Hysteresis)
	}
	st.at["hysteresis"] = pos
}

// flagName maps ipvsadm's generic flag-N to the scheduler's own flag names.
func flagName(sched, flag string) string {
	switch sched + " " + flag {
	case "sh flag-1":
		return "sh-fallback"
	case "sh flag-2":
		return "sh-port"
	case "mh flag-1":
		return "mh-fallback"
	case "mh flag-2":
		return "mh-port"
	}
	return ""
}
