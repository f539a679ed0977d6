package kaimport

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
)

// keepalived's checker defaults (keepalived.conf(5)), written out because
// director's differ.
const (
	kaConnectTimeout = 5 * time.Second
	kaDelayLoop      = time.Minute
	kaRetry          = 1 // HTTP_GET, SSL_GET, TCP_CHECK
	kaDNSRetry       = 3
	kaMiscRetry      = 0
	kaHTTPRetryDelay = 3 * time.Second
	kaRetryDelay     = time.Second // TCP_CHECK; DNS_CHECK's is delay_loop
)

// checkDefaults are the check settings a virtual server, a real server or a
// checker may set; the nearest one wins.
type checkDefaults struct {
	connectTimeout *time.Duration
	interval       *time.Duration // delay_loop
	retries        *int
	retryDelay     *time.Duration
	host           *string // virtualhost
}

// merge fills d's unset fields from outer.
func (d checkDefaults) merge(outer checkDefaults) checkDefaults {
	if d.connectTimeout == nil {
		d.connectTimeout = outer.connectTimeout
	}
	if d.interval == nil {
		d.interval = outer.interval
	}
	if d.retries == nil {
		d.retries = outer.retries
	}
	if d.retryDelay == nil {
		d.retryDelay = outer.retryDelay
	}
	if d.host == nil {
		d.host = outer.host
	}
	return d
}

// checkSettings are the handlers for the settings shared by virtual server,
// real server and checker blocks.
func checkSettings[T any](get func(T) *checkDefaults) map[string]handler[T] {
	dur := func(set func(*checkDefaults, time.Duration)) handler[T] {
		return func(c *converter, st T, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				set(get(st), d)
			}
		}
	}
	retry := func(c *converter, st T, n *Node) {
		if v, ok := c.intArg(n, 0, 1000); ok {
			get(st).retries = &v
		}
	}
	return map[string]handler[T]{
		"connect_timeout":    dur(func(d *checkDefaults, v time.Duration) { d.connectTimeout = &v }),
		"delay_loop":         dur(func(d *checkDefaults, v time.Duration) { d.interval = &v }),
		"delay_before_retry": dur(func(d *checkDefaults, v time.Duration) { d.retryDelay = &v }),
		"retry":              retry,
		"nb_get_retry":       retry, // the old name, still common in HTTP_GET blocks
		"virtualhost": func(c *converter, st T, n *Node) {
			if c.args(n, 1, 1) {
				h := n.Args[0]
				get(st).host = &h
			}
		},
	}
}

// checkState is one checker block (HTTP_GET, SSL_GET, TCP_CHECK,
// DNS_CHECK, MISC_CHECK) as read.
type checkState struct {
	pos     Pos
	keyword string
	kind    string // director's check type: http, https, tcp, dns, exec
	own     checkDefaults

	connectIP   string // connect_ip
	source      string // bindto
	connectPort int
	at          map[string]Pos // output field (relative to the check) -> line

	urls []*urlState // HTTP_GET, SSL_GET
	sni  string      // SSL_GET sni_name

	dnsType, dnsName string // DNS_CHECK

	command     []string // MISC_CHECK misc_path
	miscTimeout *time.Duration
	dynamic     bool
}

// urlState is one url { } block: each becomes a check of its own, since
// keepalived needs every url to pass and director needs every check to.
type urlState struct {
	pos    Pos
	path   string
	status []string
	host   *string
	body   string // regex
	noBody bool   // regex_no_match: body must not match, which director cannot say
}

// checkerKinds maps keepalived's checker keywords to director's types.
var checkerKinds = map[string]string{
	"HTTP_GET": "http", "SSL_GET": "https", "TCP_CHECK": "tcp", "DNS_CHECK": "dns", "MISC_CHECK": "exec",
}

// networkSettings are the connection options every checker but MISC_CHECK has.
func networkSettings() map[string]handler[*checkState] {
	return map[string]handler[*checkState]{
		"connect_port": func(c *converter, st *checkState, n *Node) {
			if v, ok := c.intArg(n, 1, 65535); ok {
				st.connectPort = v
				st.at["connect_port"] = n.Pos
			}
		},
		"connect_ip": func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.connectIP = n.Args[0]
				st.at["connect_ip"] = n.Pos
			}
		},
		"bindto": func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.source = n.Args[0]
				st.at["source"] = n.Pos
			}
		},
	}
}

var (
	checkerCommon = checkSettings(func(k *checkState) *checkDefaults { return &k.own })

	httpCheckerBlock = &block[*checkState]{
		name: "HTTP_GET",
		simple: merged(merged(checkerCommon, networkSettings()), map[string]handler[*checkState]{
			"sni_name": func(c *converter, st *checkState, n *Node) {
				if c.args(n, 1, 1) {
					st.sni = n.Args[0]
					st.at["http.sni"] = n.Pos
				}
			},
			// director sends the host (virtualhost) as SNI already.
			"enable_sni": func(c *converter, _ *checkState, n *Node) { c.boolArg(n) },
		}),
		blocks: map[string]handler[*checkState]{
			"url": func(c *converter, st *checkState, n *Node) { c.url(st, n) },
		},
		known: union(checkerKnown, httpCheckerKnown),
	}
	tcpCheckerBlock = &block[*checkState]{
		name:   "TCP_CHECK",
		simple: merged(checkerCommon, networkSettings()),
		known:  checkerKnown,
	}
	dnsCheckerBlock = &block[*checkState]{
		name: "DNS_CHECK",
		simple: merged(merged(checkerCommon, networkSettings()), map[string]handler[*checkState]{
			"type": func(c *converter, st *checkState, n *Node) {
				if c.args(n, 1, 1) {
					st.dnsType = strings.ToUpper(n.Args[0])
					st.at["dns.type"] = n.Pos
				}
			},
			"name": func(c *converter, st *checkState, n *Node) {
				if c.args(n, 1, 1) {
					st.dnsName = n.Args[0]
					st.at["dns.name"] = n.Pos
				}
			},
		}),
		known: checkerKnown,
	}
	miscCheckerBlock = &block[*checkState]{
		name: "MISC_CHECK",
		simple: merged(checkerCommon, map[string]handler[*checkState]{
			"misc_path": func(c *converter, st *checkState, n *Node) {
				if !c.args(n, 1, -1) {
					return
				}
				argv := scriptArgv(strings.Join(n.Args, " "))
				if len(argv) == 0 {
					c.rep.add(n.Pos, Error, n.Key, "empty command")
					return
				}
				if argv[0] == "/bin/sh" && len(argv) == 3 {
					c.rep.add(n.Pos, Note, n.Key, "has shell syntax: run by /bin/sh -c")
				}
				st.command = argv
				st.at["exec.command"] = n.Pos
			},
			"misc_timeout": func(c *converter, st *checkState, n *Node) {
				if d, ok := c.secondsArg(n); ok {
					st.miscTimeout = &d
					st.at["timeout"] = n.Pos
				}
			},
			"misc_dynamic": func(c *converter, st *checkState, n *Node) {
				if v, ok := c.boolArg(n); ok {
					st.dynamic = v
				}
			},
		}),
		known: union(kw(Warning, "not supported: director runs the check command as its own user (root)", "user"),
			checkerKnown),
	}
)

// checkerBlocks are the converted checkers, by keyword.
var checkerBlocks = map[string]*block[*checkState]{
	"HTTP_GET": httpCheckerBlock, "SSL_GET": httpCheckerBlock, "TCP_CHECK": tcpCheckerBlock,
	"DNS_CHECK": dnsCheckerBlock, "MISC_CHECK": miscCheckerBlock,
}

func (c *converter) checker(rs *rsState, n *Node) {
	c.args(n, 0, 0)
	st := &checkState{pos: n.Pos, keyword: n.Key, kind: checkerKinds[n.Key], at: map[string]Pos{}}
	errs := c.rep.Count(Error)
	walk(c, checkerBlocks[n.Key], st, n.Block)
	switch st.kind {
	case "http", "https":
		if len(st.urls) == 0 {
			c.rep.add(n.Pos, Warning, n.Key, "no url block: converted as a check of /")
			st.urls = []*urlState{{pos: n.Pos, path: "/"}}
		}
	case "exec":
		if st.command == nil {
			if c.rep.Count(Error) == errs {
				c.rep.add(n.Pos, Error, n.Key, "no misc_path: nothing to run")
			}
			return
		}
	}
	if st.kind != "https" && st.sni != "" {
		c.rep.add(st.at["http.sni"], Warning, "sni_name", "only for SSL_GET; ignored")
		st.sni = ""
	}
	rs.checks = append(rs.checks, st)
}

// url reads url { path P  status_code C...  virtualhost H  regex R ... }.
func (c *converter) url(st *checkState, n *Node) {
	c.args(n, 0, 0)
	u := &urlState{pos: n.Pos, path: "/"}
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in url")
			continue
		}
		switch it.Key {
		case "path":
			if c.args(it, 1, 1) {
				u.path = it.Args[0]
			}
		case "status_code":
			if !c.args(it, 1, -1) {
				continue
			}
			if codes, ok := c.statusCodes(it); ok {
				u.status = codes
			}
		case "virtualhost":
			if c.args(it, 1, 1) {
				h := it.Args[0]
				u.host = &h
			}
		case "regex":
			if !c.args(it, 1, 1) {
				continue
			}
			if _, err := regexp.Compile(it.Args[0]); err != nil {
				c.rep.add(it.Pos, Warning, it.Key, "not converted: director's regular expressions (RE2) cannot read this one: %v", err)
				continue
			}
			u.body = it.Args[0]
		case "regex_no_match":
			u.noBody = true
		case "digest":
			c.rep.add(it.Pos, Warning, it.Key, "not supported: director does not compare a digest of the body; only the status is checked")
		default:
			if k, ok := urlKnown[it.Key]; ok {
				c.rep.add(it.Pos, k.level, it.Key, "%s", k.msg)
				continue
			}
			c.unknown("url", []string{"digest", "path", "regex", "regex_no_match", "status_code", "virtualhost"}, it)
		}
	}
	if u.noBody {
		if u.body != "" {
			c.rep.add(n.Pos, Warning, "regex_no_match", "not supported: director's body is a regex that must match; the regex is not checked")
		}
		u.body = ""
	}
	st.urls = append(st.urls, u)
}

// statusCodes checks status_code values (200, 200-299).
func (c *converter) statusCodes(n *Node) ([]string, bool) {
	for _, a := range n.Args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			c.rep.add(n.Pos, Error, n.Key, "want status codes or ranges like 200 or 200-299, got %q", a)
			return nil, false
		}
	}
	return append([]string(nil), n.Args...), true
}

// placedCheck is one resolved check and the lines its fields came from.
type placedCheck struct {
	check config.Check
	pos   Pos            // the checker (or url) block
	at    map[string]Pos // fields relative to the check
}

// resolve applies the checker's, real server's, virtual server's and then
// keepalived's defaults, giving one check per url (one for other kinds).
func (c *converter) resolve(k *checkState, rs, vs checkDefaults) []placedCheck {
	d := k.own.merge(rs).merge(vs)
	interval := kaDelayLoop
	if d.interval != nil {
		interval = *d.interval
	}
	retries, retryDelay := kaRetry, kaRetryDelay
	switch k.kind {
	case "http", "https":
		retryDelay = kaHTTPRetryDelay
	case "dns":
		retries, retryDelay = kaDNSRetry, interval
	case "exec":
		retries = kaMiscRetry
	}
	if d.retries != nil {
		retries = *d.retries
	}
	if d.retryDelay != nil {
		retryDelay = *d.retryDelay
	}
	timeout := kaConnectTimeout
	if d.connectTimeout != nil {
		timeout = *d.connectTimeout
	}
	if k.kind == "exec" {
		timeout = interval // misc_timeout's default is delay_loop
		if k.miscTimeout != nil && *k.miscTimeout > 0 {
			timeout = *k.miscTimeout
		}
	}
	if timeout > interval {
		// keepalived waits delay_loop after a check ends; director starts
		// a round every interval and refuses a longer timeout.
		c.rep.add(k.pos, Warning, k.keyword, "timeout %s is longer than delay_loop %s: director starts a check every interval, so the timeout is cut to %s",
			config.FormatDuration(timeout), config.FormatDuration(interval), config.FormatDuration(interval))
		timeout = interval
	}
	base := config.Check{
		Type:     k.kind,
		Interval: config.Duration(interval),
		Timeout:  config.Duration(timeout),
		Retries:  retries,
		// keepalived fails a server at the first failed round after its
		// retries, and takes it back at the first good one.
		Rise: 1, Fall: 1,
		ConnectIP:   k.connectIP,
		ConnectPort: k.connectPort,
		Source:      k.source,
	}
	if retries > 0 {
		base.RetryDelay = config.Duration(retryDelay)
		// keepalived retries a refused connection like any failure.
		base.RetryRefused = k.kind != "exec"
	}
	at := map[string]Pos{}
	for f, p := range k.at {
		at[f] = p
	}
	switch k.kind {
	case "dns":
		if k.dnsType != "" || k.dnsName != "" {
			base.DNS = &config.DNSCheck{Type: k.dnsType, Name: k.dnsName}
		}
	case "exec":
		base.Exec = &config.ExecCheck{Command: k.command, Dynamic: k.dynamic}
	case "http", "https":
		var out []placedCheck
		for _, u := range k.urls {
			ck := base
			h := &config.HTTPCheck{Path: u.path, Status: u.status, Body: u.body, SNI: k.sni}
			switch {
			case u.host != nil:
				h.Host = *u.host
			case d.host != nil:
				h.Host = *d.host
			}
			ck.HTTP = h
			out = append(out, placedCheck{check: ck, pos: u.pos, at: at})
		}
		return out
	}
	return []placedCheck{{check: base, pos: k.pos, at: at}}
}

// sameChecks reports whether every real server has the same non-empty
// checks (and there is more than one server to share them).
func sameChecks(lists [][]placedCheck) bool {
	if len(lists) < 2 || len(lists[0]) == 0 {
		return false
	}
	for _, l := range lists[1:] {
		if len(l) != len(lists[0]) {
			return false
		}
		for i := range l {
			if !reflect.DeepEqual(l[i].check, lists[0][i].check) {
				return false
			}
		}
	}
	return true
}

// bareChecks returns the checks of a list without their positions.
func bareChecks(l []placedCheck) []config.Check {
	out := make([]config.Check, len(l))
	for i, p := range l {
		out[i] = p.check
	}
	return out
}

// noteChecks records where each check (and its fields) came from, under
// path (services[0] or services[0].real_servers[1]).
func (c *converter) noteChecks(path string, l []placedCheck) {
	for i, p := range l {
		f := fmt.Sprintf("%s.checks[%d]", path, i)
		c.origin[f] = p.pos
		c.note(f, p.at)
	}
}
