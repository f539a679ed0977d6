package kaimport

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
)

// ---- health checkers ----
//
// Every checker of a real server becomes one of its checks, and every url
// of an HTTP_GET or SSL_GET one http check: keepalived needs them all to
// pass, as director does. keepalived takes a server down at the first
// failed check (after its retries) and up at the first good one, so the
// checks get rise 1 and fall 1. The checks are config's own Check, so that
// the output can only name fields the loader knows.

// keepalived's checker defaults (keepalived.conf(5)), written out because
// director's differ. UDP_CHECK, PING_CHECK and SMTP_CHECK retry as
// TCP_CHECK does.
const (
	kaConnectTimeout = 5 * time.Second
	kaDelayLoop      = time.Minute
	kaRetry          = 1 // HTTP_GET, SSL_GET, TCP_CHECK, UDP_CHECK, PING_CHECK, SMTP_CHECK
	kaDNSRetry       = 3
	kaMiscRetry      = 0
	kaHTTPRetryDelay = 3 * time.Second
	kaRetryDelay     = time.Second // TCP_CHECK and the like; DNS_CHECK's is delay_loop
	// kaUDPMaxReply is how many bytes UDP_CHECK compares at most unless
	// max_reply_length says otherwise.
	kaUDPMaxReply = 255
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

// checkerBlocks are the checkers a real_server block may hold.
var checkerBlocks = map[string]handler[*rsState]{
	"HTTP_GET":   func(c *converter, st *rsState, n *Node) { c.checker(st, n, "http") },
	"SSL_GET":    func(c *converter, st *rsState, n *Node) { c.checker(st, n, "https") },
	"TCP_CHECK":  func(c *converter, st *rsState, n *Node) { c.checker(st, n, "tcp") },
	"UDP_CHECK":  func(c *converter, st *rsState, n *Node) { c.checker(st, n, "udp") },
	"PING_CHECK": func(c *converter, st *rsState, n *Node) { c.checker(st, n, "ping") },
	"SMTP_CHECK": func(c *converter, st *rsState, n *Node) { c.checker(st, n, "smtp") },
	"DNS_CHECK":  func(c *converter, st *rsState, n *Node) { c.checker(st, n, "dns") },
	"MISC_CHECK": func(c *converter, st *rsState, n *Node) { c.miscCheck(st, n) },
	"FILE_CHECK": func(c *converter, st *rsState, n *Node) { c.fileCheck(st, n) },
}

// checkState is one checker block as read.
type checkState struct {
	pos Pos
	// at records where settings were written, by output field relative to
	// the check ("connect_port", "udp.expect_hex"), so that director's
	// complaints point at them.
	at          map[string]Pos
	keyword     string // HTTP_GET, SSL_GET, TCP_CHECK, ...
	kind        string // director's check type: http, https, tcp, udp, ping, smtp, dns, exec, file
	own         checkDefaults
	connectIP   string
	connectPort int
	source      string // bindto
	urls        []*urlState
	version     string // http_protocol
	sni         string
	helo        string
	udp         udpState
	dns         dnsState
	misc        miscState
	file        fileState
}

// urlState is one url { } block: each becomes a check of its own, since
// keepalived needs every url to pass and director needs every check to.
type urlState struct {
	pos     Pos
	at      map[string]Pos // as checkState's
	path    string
	status  []string
	host    *string
	digest  string
	regex   string
	noMatch bool
}

type udpState struct {
	payload      string
	requireReply bool
	expect       string
	minLen       *int
	maxLen       *int
	lenPos       Pos
}

type dnsState struct {
	qtype, name string
}

type miscState struct {
	command []string // misc_path, split as director runs it
	timeout *time.Duration
	dynamic bool
}

type fileState struct {
	trackFile string
	namePos   Pos
	weight    *int
	reverse   bool
}

// onlyFor makes a handler that warns when a keyword is used in a checker
// it does not belong to.
func onlyFor(kinds string, h handler[*checkState]) handler[*checkState] {
	return func(c *converter, st *checkState, n *Node) {
		if !strings.Contains(" "+kinds+" ", " "+st.kind+" ") {
			c.rep.add(n.Pos, Warning, n.Key, "has no meaning in %s; ignored", st.keyword)
			return
		}
		h(c, st, n)
	}
}

// ownSettings are the timings a checker block may set for itself.
var ownSettings = checkSettings(func(k *checkState) *checkDefaults { return &k.own })

var checkerBlock = &block[*checkState]{
	name: "a health checker",
	simple: merged(ownSettings, map[string]handler[*checkState]{
		"connect_port": func(c *converter, st *checkState, n *Node) {
			if v, ok := c.intArg(n, 1, 65535); ok {
				if st.kind == "ping" {
					c.rep.add(n.Pos, Note, n.Key, "ignored: a ping has no port")
					return
				}
				st.connectPort, st.at["connect_port"] = v, n.Pos
			}
		},
		"connect_ip": func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.connectIP, st.at["connect_ip"] = n.Args[0], n.Pos
			}
		},
		"bindto": func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.source, st.at["source"] = n.Args[0], n.Pos
			}
		},
		"http_protocol": onlyFor("http https", func(c *converter, st *checkState, n *Node) {
			if !c.args(n, 1, 1) {
				return
			}
			switch n.Args[0] {
			case "1.0", "1.0C", "1.0c":
				// director always asks the server to close the connection.
				st.version, st.at["http.version"] = "1.0", n.Pos
			case "1.1":
				st.version = ""
			default:
				c.rep.add(n.Pos, Error, n.Key, "want 1.0, 1.0C or 1.1, got %q", n.Args[0])
			}
		}),
		"sni_name": onlyFor("https", func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.sni, st.at["http.sni"] = n.Args[0], n.Pos
			}
		}),
		"enable_sni": onlyFor("https", func(c *converter, _ *checkState, n *Node) {
			if on, ok := c.boolArg(n); ok && !on {
				c.rep.add(n.Pos, Note, n.Key, "director sends the virtual host as SNI whenever it is a name")
			}
		}),
		"helo_name": onlyFor("smtp", func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.helo, st.at["smtp.helo_name"] = n.Args[0], n.Pos
			}
		}),
		"payload": onlyFor("udp", func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, -1) {
				st.udp.payload, st.at["udp.send_hex"] = strings.Join(n.Args, " "), n.Pos
			}
		}),
		"require_reply": onlyFor("udp", func(c *converter, st *checkState, n *Node) {
			st.udp.requireReply = true
			st.udp.expect = strings.Join(n.Args, " ")
			st.at["udp.require_reply"], st.at["udp.expect_hex"] = n.Pos, n.Pos
			if st.udp.expect != "" {
				c.rep.add(n.Pos, Note, n.Key, "director fails a reply shorter than the pattern (keepalived compares only the bytes received)")
			}
		}),
		"min_reply_length": onlyFor("udp", func(c *converter, st *checkState, n *Node) {
			if v, ok := c.intArg(n, 0, 65535); ok {
				st.udp.minLen, st.udp.lenPos, st.at["udp.min_reply_length"] = &v, n.Pos, n.Pos
			}
		}),
		"max_reply_length": onlyFor("udp", func(c *converter, st *checkState, n *Node) {
			if v, ok := c.intArg(n, 0, 65535); ok {
				st.udp.maxLen, st.udp.lenPos, st.at["udp.max_reply_length"] = &v, n.Pos, n.Pos
			}
		}),
		"type": onlyFor("dns", func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.dns.qtype, st.at["dns.type"] = strings.ToUpper(n.Args[0]), n.Pos
			}
		}),
		"name": onlyFor("dns", func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.dns.name, st.at["dns.name"] = n.Args[0], n.Pos
			}
		}),
	}),
	blocks: map[string]handler[*checkState]{
		"url": func(c *converter, st *checkState, n *Node) { c.url(st, n) },
	},
	known: checkerKnown,
}

// checker reads a checker that talks to the real server over the network.
func (c *converter) checker(rs *rsState, n *Node, kind string) {
	c.args(n, 0, 0)
	st := &checkState{pos: n.Pos, keyword: n.Key, kind: kind, at: map[string]Pos{}}
	walk(c, checkerBlock, st, n.Block)
	if kind != "http" && kind != "https" && len(st.urls) > 0 {
		c.rep.add(n.Pos, Warning, n.Key, "url blocks belong to HTTP_GET and SSL_GET; ignored")
		st.urls = nil
	}
	if (kind == "http" || kind == "https") && len(st.urls) == 0 {
		c.rep.add(n.Pos, Warning, n.Key, "no url block: converted as a check of /")
		st.urls = []*urlState{{pos: n.Pos, path: "/"}}
	}
	if kind == "udp" {
		if st.udp.payload == "" {
			c.rep.add(n.Pos, Note, n.Key, "no payload: director sends an empty datagram where keepalived sends random bytes")
		}
		if (st.udp.minLen != nil || st.udp.maxLen != nil) && st.udp.expect == "" {
			// keepalived checks the length only against a require_reply pattern.
			c.rep.add(st.udp.lenPos, Note, "min_reply_length", "ignored, as keepalived ignores it without a require_reply pattern")
			st.udp.minLen, st.udp.maxLen = nil, nil
		}
	}
	rs.checks = append(rs.checks, st)
}

// url reads url { path P  status_code C...  digest D  virtualhost H  regex R
// regex_no_match regex_options O... }.
func (c *converter) url(st *checkState, n *Node) {
	c.args(n, 0, 0)
	u := &urlState{pos: n.Pos, at: map[string]Pos{}, path: "/"}
	st.urls = append(st.urls, u)
	flags := ""
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in url")
			continue
		}
		switch it.Key {
		case "path":
			if c.args(it, 1, 1) {
				u.path, u.at["http.path"] = it.Args[0], it.Pos
			}
		case "status_code":
			if !c.args(it, 1, -1) {
				continue
			}
			if codes, ok := c.statusCodes(it); ok {
				u.status, u.at["http.status"] = codes, it.Pos
			}
		case "virtualhost":
			if c.args(it, 1, 1) {
				h := it.Args[0]
				u.host, u.at["http.host"] = &h, it.Pos
			}
		case "digest":
			if c.args(it, 1, 1) {
				u.digest, u.at["http.digest"] = strings.ToLower(it.Args[0]), it.Pos
			}
		case "regex":
			if !c.args(it, 1, 1) {
				continue
			}
			// keepalived's expressions are PCRE, director's RE2: most
			// health-check patterns are both.
			if _, err := regexp.Compile(it.Args[0]); err != nil {
				c.rep.add(it.Pos, Warning, it.Key, "not converted: %q is not an RE2 expression (%v); only the status is checked", it.Args[0], err)
				continue
			}
			u.regex, u.at["http.body"] = it.Args[0], it.Pos
		case "regex_no_match":
			c.args(it, 0, 0)
			u.noMatch = true
		case "regex_options":
			for _, o := range it.Args {
				if f, ok := regexFlags[o]; ok {
					flags += f
					continue
				}
				c.rep.add(it.Pos, Warning, it.Key, "option %q not supported: director's regex is RE2", o)
			}
		default:
			if k, ok := urlKnown[it.Key]; ok {
				c.rep.add(it.Pos, k.level, it.Key, "%s", k.msg)
				continue
			}
			c.unknown("url", urlKeywords, it)
		}
	}
	if flags != "" && u.regex != "" {
		u.regex = "(?" + flags + ")" + u.regex
	}
	if u.noMatch && u.regex == "" {
		c.rep.add(n.Pos, Warning, "regex_no_match", "has no effect without a regex; ignored")
		u.noMatch = false
	}
}

// urlKeywords are the url keywords the switch in url converts.
var urlKeywords = []string{"digest", "path", "regex", "regex_no_match", "regex_options", "status_code", "virtualhost"}

// regexFlags are the PCRE options of regex_options that RE2 has, as RE2
// flags.
var regexFlags = map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}

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

var miscCheckBlock = &block[*checkState]{
	name: "MISC_CHECK",
	simple: merged(ownSettings, map[string]handler[*checkState]{
		"misc_path": func(c *converter, st *checkState, n *Node) {
			if !c.args(n, 1, -1) {
				return
			}
			cmd := strings.Join(n.Args, " ")
			argv := scriptArgv(cmd)
			if len(argv) == 0 {
				c.rep.add(n.Pos, Error, n.Key, "empty command")
				return
			}
			// Not "argv is /bin/sh and two more": a script run by the
			// shell with one argument has no shell syntax.
			if needsShell(cmd) {
				c.rep.add(n.Pos, Note, n.Key, "has shell syntax: run by /bin/sh -c")
			}
			st.misc.command, st.at["exec.command"] = argv, n.Pos
		},
		"misc_timeout": func(c *converter, st *checkState, n *Node) {
			if d, ok := c.secondsArg(n); ok {
				st.misc.timeout, st.at["timeout"] = &d, n.Pos
			}
		},
		"misc_dynamic": func(c *converter, st *checkState, n *Node) {
			if v, ok := c.boolArg(n); ok {
				st.misc.dynamic = v
			}
		},
	}),
	known: union(kw(Warning, "not supported: director runs the check command as its own user (root)", "user"),
		checkerKnown),
}

// miscCheck reads MISC_CHECK { misc_path CMD  misc_timeout T  misc_dynamic }.
func (c *converter) miscCheck(rs *rsState, n *Node) {
	c.args(n, 0, 0)
	st := &checkState{pos: n.Pos, keyword: n.Key, kind: "exec", at: map[string]Pos{}}
	errs := c.rep.Count(Error)
	walk(c, miscCheckBlock, st, n.Block)
	if st.misc.command == nil {
		if c.rep.Count(Error) == errs {
			c.rep.add(n.Pos, Error, n.Key, "no misc_path: nothing to run")
		}
		return
	}
	rs.checks = append(rs.checks, st)
}

var fileCheckBlock = &block[*checkState]{
	name: "FILE_CHECK",
	simple: map[string]handler[*checkState]{
		"track_file": func(c *converter, st *checkState, n *Node) {
			if c.args(n, 1, 1) {
				st.file.trackFile, st.file.namePos, st.at["file.path"] = n.Args[0], n.Pos, n.Pos
			}
		},
		"weight": func(c *converter, st *checkState, n *Node) {
			if !c.args(n, 1, 2) {
				return
			}
			w, ok := c.parseInt(n, n.Args[0], -(1<<31 - 1), 1<<31-1)
			if !ok {
				return
			}
			st.file.weight, st.at["file.weight"] = &w, n.Pos
			if len(n.Args) == 2 {
				switch n.Args[1] {
				case "reverse", "noreverse":
					st.file.reverse = n.Args[1] == "reverse"
				default:
					c.rep.add(n.Pos, Warning, n.Key, "unknown weight option %q ignored", n.Args[1])
				}
			}
		},
	},
	known: kw(Warning, "not supported: director adds value × weight to the real server's weight", "dynamic"),
}

// fileCheck reads FILE_CHECK { track_file NAME  weight W [reverse] }; the
// file's path, and by default its weight, come from the track_file block,
// looked up when the service is finished.
func (c *converter) fileCheck(rs *rsState, n *Node) {
	c.args(n, 0, 0)
	st := &checkState{pos: n.Pos, keyword: n.Key, kind: "file", at: map[string]Pos{}}
	walk(c, fileCheckBlock, st, n.Block)
	if st.file.trackFile == "" {
		c.rep.add(n.Pos, Warning, n.Key, "no track_file: keepalived ignores this checker, and it is not converted")
		return
	}
	rs.checks = append(rs.checks, st)
}

// placedCheck is one resolved check and the lines it came from.
type placedCheck struct {
	check config.Check
	pos   Pos            // the checker (or url) block
	at    map[string]Pos // fields relative to the check
}

// resolveChecks resolves a real server's checkers.
func (c *converter) resolveChecks(rs *rsState, vs checkDefaults) []placedCheck {
	var out []placedCheck
	for _, k := range rs.checks {
		out = append(out, c.resolve(k, rs.defaults, vs)...)
	}
	return out
}

// resolve applies the checker's, real server's, virtual server's and then
// keepalived's defaults, giving one check per url (one for other kinds).
func (c *converter) resolve(k *checkState, rs, vs checkDefaults) []placedCheck {
	if k.kind == "file" {
		return c.resolveFile(k)
	}
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
		if k.misc.timeout != nil && *k.misc.timeout > 0 {
			timeout = *k.misc.timeout
		}
	}
	if timeout > interval {
		// keepalived waits delay_loop after a check ends; director starts
		// a round every interval and refuses a longer timeout. A timeout
		// written in keepalived.conf says the server may answer slowly;
		// keepalived's default one says nothing.
		level := Note
		if d.connectTimeout != nil || k.misc.timeout != nil {
			level = Warning
		}
		c.rep.add(k.pos, level, k.keyword, "timeout %s is longer than delay_loop %s: director starts a check every interval, so the timeout is cut to %s",
			fmtDuration(timeout), fmtDuration(interval), fmtDuration(interval))
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
	one := func(ck config.Check) []placedCheck { return []placedCheck{{check: ck, pos: k.pos, at: k.at}} }
	switch k.kind {
	case "udp":
		u := &config.UDPCheck{SendHex: k.udp.payload, RequireReply: k.udp.requireReply, ExpectHex: k.udp.expect}
		if k.udp.minLen != nil {
			u.MinReplyLength = *k.udp.minLen
		}
		if k.udp.expect != "" {
			u.MaxReplyLength = kaUDPMaxReply
			if k.udp.maxLen != nil {
				u.MaxReplyLength = *k.udp.maxLen
			}
		}
		if *u != (config.UDPCheck{}) {
			base.UDP = u
		}
		return one(base)
	case "smtp":
		if k.helo != "" {
			base.SMTP = &config.SMTPCheck{HeloName: k.helo}
		}
		return one(base)
	case "dns":
		if k.dns != (dnsState{}) {
			base.DNS = &config.DNSCheck{Type: k.dns.qtype, Name: k.dns.name}
		}
		return one(base)
	case "exec":
		base.Exec = &config.ExecCheck{Command: k.misc.command, Dynamic: k.misc.dynamic}
		return one(base)
	case "http", "https":
	default:
		return one(base)
	}
	var out []placedCheck
	for _, u := range k.urls {
		ck := base
		h := &config.HTTPCheck{Path: u.path, Version: k.version, Status: u.status, Body: u.regex,
			BodyNoMatch: u.noMatch, Digest: u.digest, SNI: k.sni}
		switch {
		case u.host != nil:
			h.Host = *u.host
		case d.host != nil:
			h.Host = *d.host
		}
		ck.HTTP = h
		at := maps.Clone(k.at)
		maps.Copy(at, u.at)
		out = append(out, placedCheck{check: ck, pos: u.pos, at: at})
	}
	return out
}

// resolveFile finds a FILE_CHECK's track_file.
func (c *converter) resolveFile(k *checkState) []placedCheck {
	for _, f := range c.trackFiles {
		if f.Name != k.file.trackFile {
			continue
		}
		weight, reverse := 1, f.WeightReverse // keepalived's default weight
		if f.Weight != nil {
			weight = *f.Weight
		}
		if k.file.weight != nil {
			weight, reverse = *k.file.weight, k.file.reverse
		}
		fc := &config.FileCheck{Path: f.Path, Weight: &weight, Reverse: reverse}
		c.rep.add(k.pos, Note, k.keyword, "director reads the file every second where keepalived watches it with inotify")
		return []placedCheck{{check: config.Check{Type: "file", File: fc}, pos: k.pos, at: k.at}}
	}
	c.rep.add(k.file.namePos, Warning, "track_file", "no track_file block is named %q: keepalived ignores this checker, and it is not converted", k.file.trackFile)
	return nil
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
