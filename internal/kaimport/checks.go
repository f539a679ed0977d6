package kaimport

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ---- health checkers ----
//
// Every checker of a real server becomes one of its checks, and every url
// of an HTTP_GET or SSL_GET one http check: keepalived needs them all to
// pass, as director does. keepalived takes a server down at the first
// failed check (after its retries) and up at the first good one, so the
// checks get rise 1 and fall 1.

// checkerBlocks are the checkers a real_server block may hold.
var checkerBlocks = map[string]handler[*rsState]{
	"HTTP_GET":   func(c *converter, st *rsState, n *Node) { c.checker(st, n, "http") },
	"SSL_GET":    func(c *converter, st *rsState, n *Node) { c.checker(st, n, "https") },
	"TCP_CHECK":  func(c *converter, st *rsState, n *Node) { c.checker(st, n, "tcp") },
	"UDP_CHECK":  func(c *converter, st *rsState, n *Node) { c.checker(st, n, "udp") },
	"PING_CHECK": func(c *converter, st *rsState, n *Node) { c.checker(st, n, "ping") },
	"SMTP_CHECK": func(c *converter, st *rsState, n *Node) { c.checker(st, n, "smtp") },
	"FILE_CHECK": func(c *converter, st *rsState, n *Node) { c.fileCheck(st, n) },
}

// keepalived's retry defaults for UDP_CHECK, PING_CHECK and SMTP_CHECK are
// TCP_CHECK's; its UDP_CHECK compares at most max_reply_length bytes, 255
// unless set.
const kaUDPMaxReply = 255

type checkState struct {
	pos Pos
	// at records where settings were written, by output field
	// ("connect_port", "udp.expect_hex"), so that director's complaints
	// point at them.
	at          map[string]Pos
	keyword     string // HTTP_GET, SSL_GET, TCP_CHECK, ...
	kind        string // http, https, tcp, udp, ping, smtp, file
	own         checkDefaults
	connectIP   string
	connectPort int
	source      string
	urls        []*urlState
	version     string // http_protocol
	sni         string
	helo        string
	udp         udpState
	file        fileState
}

type urlState struct {
	pos     Pos
	at      map[string]Pos // as checkState's
	path    string
	status  string
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

type fileState struct {
	trackFile string
	namePos   Pos
	weight    *int
	reverse   bool
}

// resolvedCheck is one director check with every default applied, and
// where in keepalived.conf it came from. Equal checks on every real server
// of a service are written once, on the service.
type resolvedCheck struct {
	pos  Pos
	at   map[string]Pos
	spec checkOut
}

// checkOut is what a check writes; comparable, so that checks can be
// compared across real servers.
type checkOut struct {
	Type        string
	Timeout     time.Duration
	Interval    time.Duration
	Retries     int
	RetryDelay  time.Duration
	ConnectIP   string
	ConnectPort int
	Source      string
	// http, https
	Path, Status, Host, Digest, Body string
	BodyNoMatch                      bool
	Version, SNI                     string
	// udp
	SendHex, ExpectHex string
	RequireReply       bool
	MinReply, MaxReply int
	// smtp
	Helo string
	// file
	FilePath    string
	FileWeight  int
	FileReverse bool
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

var checkerBlock = &block[*checkState]{
	name: "a health checker",
	simple: merged(checkSettings(func(k *checkState) *checkDefaults { return &k.own }), map[string]handler[*checkState]{
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
				st.version = "1.0"
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
	}),
	blocks: map[string]handler[*checkState]{
		"url": func(c *converter, st *checkState, n *Node) { c.url(st, n) },
	},
	known: checkerKnown,
}

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
// regex_no_match }.
func (c *converter) url(st *checkState, n *Node) {
	c.args(n, 0, 0)
	u := &urlState{pos: n.Pos, at: map[string]Pos{}}
	st.urls = append(st.urls, u)
	flags := ""
	for _, it := range n.Block {
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
			c.unknown("url", []string{"digest", "path", "regex", "regex_no_match", "status_code", "virtualhost"}, it)
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

// regexFlags are the PCRE options of regex_options that RE2 has, as RE2
// flags.
var regexFlags = map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}

// statusCodes checks status_code values (200, 200-299) and joins them with
// commas.
func (c *converter) statusCodes(n *Node) (string, bool) {
	for _, a := range n.Args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			c.rep.add(n.Pos, Error, n.Key, "want status codes or ranges like 200 or 200-299, got %q", a)
			return "", false
		}
	}
	return strings.Join(n.Args, ","), true
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

// resolveChecks resolves a real server's checkers.
func (c *converter) resolveChecks(rs *rsState, vs checkDefaults) []*resolvedCheck {
	var out []*resolvedCheck
	for _, k := range rs.checks {
		out = append(out, c.resolve(k, rs.defaults, vs)...)
	}
	return out
}

// resolve applies the checker's, real server's, virtual server's and then
// keepalived's defaults. An HTTP_GET or SSL_GET gives a check per url.
func (c *converter) resolve(k *checkState, rs, vs checkDefaults) []*resolvedCheck {
	if k.kind == "file" {
		return c.resolveFile(k)
	}
	d := k.own.merge(rs).merge(vs)
	base := checkOut{
		Type:        k.kind,
		Timeout:     kaConnectTimeout,
		Interval:    kaDelayLoop,
		Retries:     kaRetry,
		RetryDelay:  kaTCPRetryDelay,
		ConnectIP:   k.connectIP,
		ConnectPort: k.connectPort,
		Source:      k.source,
	}
	if k.kind == "http" || k.kind == "https" {
		base.RetryDelay = kaHTTPRetryDelay
	}
	if d.connectTimeout != nil {
		base.Timeout = *d.connectTimeout
	}
	if d.interval != nil {
		base.Interval = *d.interval
	}
	if d.retries != nil {
		base.Retries = *d.retries
	}
	if d.retryDelay != nil {
		base.RetryDelay = *d.retryDelay
	}
	if base.Timeout > base.Interval {
		// keepalived waits delay_loop after a check ends; director starts
		// a round every interval, and a round's attempt must end first.
		c.rep.add(k.pos, Note, k.keyword, "connect_timeout %s is longer than delay_loop %s: director's timeout is %s",
			fmtDuration(base.Timeout), fmtDuration(base.Interval), fmtDuration(base.Interval))
		base.Timeout = base.Interval
	}
	switch k.kind {
	case "udp":
		base.SendHex, base.RequireReply, base.ExpectHex = k.udp.payload, k.udp.requireReply, k.udp.expect
		if k.udp.minLen != nil {
			base.MinReply = *k.udp.minLen
		}
		if k.udp.expect != "" {
			base.MaxReply = kaUDPMaxReply
			if k.udp.maxLen != nil {
				base.MaxReply = *k.udp.maxLen
			}
		}
		return []*resolvedCheck{{pos: k.pos, at: k.at, spec: base}}
	case "smtp":
		base.Helo = k.helo
		return []*resolvedCheck{{pos: k.pos, at: k.at, spec: base}}
	case "http", "https":
	default:
		return []*resolvedCheck{{pos: k.pos, at: k.at, spec: base}}
	}
	var out []*resolvedCheck
	for _, u := range k.urls {
		o := base
		o.Path, o.Status, o.Digest, o.Body, o.BodyNoMatch = u.path, u.status, u.digest, u.regex, u.noMatch
		o.Version, o.SNI = k.version, k.sni
		if o.Status == "" {
			o.Status = "200-299" // keepalived's default
		}
		switch {
		case u.host != nil:
			o.Host = *u.host
		case d.host != nil:
			o.Host = *d.host
		}
		at := maps.Clone(k.at)
		maps.Copy(at, u.at)
		out = append(out, &resolvedCheck{pos: u.pos, at: at, spec: o})
	}
	return out
}

// resolveFile finds a FILE_CHECK's track_file.
func (c *converter) resolveFile(k *checkState) []*resolvedCheck {
	for _, f := range c.trackFiles {
		if f.Name != k.file.trackFile {
			continue
		}
		o := checkOut{Type: "file", FilePath: f.Path, FileWeight: 1, FileReverse: f.WeightReverse}
		if f.Weight != nil {
			o.FileWeight = *f.Weight
		}
		if k.file.weight != nil {
			o.FileWeight, o.FileReverse = *k.file.weight, k.file.reverse
		}
		c.rep.add(k.pos, Note, k.keyword, "director reads the file every second where keepalived watches it with inotify")
		return []*resolvedCheck{{pos: k.pos, at: k.at, spec: o}}
	}
	c.rep.add(k.file.namePos, Warning, "track_file", "no track_file block is named %q: keepalived ignores this checker, and it is not converted", k.file.trackFile)
	return nil
}

// noteChecks records where each of a list of checks, written at path
// (services[0].checks), and its settings came from.
func (c *converter) noteChecks(path string, list []*resolvedCheck) {
	for i, k := range list {
		p := fmt.Sprintf("%s.checks[%d]", path, i)
		c.origin[p] = k.pos
		c.note(p, k.at)
	}
}

// sharedChecks reports whether every real server has the same checks (and
// there is more than one server to share them).
func sharedChecks(lists [][]*resolvedCheck) bool {
	if len(lists) < 2 || len(lists[0]) == 0 {
		return false
	}
	for _, l := range lists[1:] {
		if len(l) != len(lists[0]) {
			return false
		}
		for i := range l {
			if l[i].spec != lists[0][i].spec {
				return false
			}
		}
	}
	return true
}

// checksNode writes a list of checks in director.yaml's schema. It is the
// only place that names the checks' keys, so that it alone changes if the
// schema does.
func checksNode(list []*resolvedCheck) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, k := range list {
		seq.Content = append(seq.Content, checkNode(&k.spec))
	}
	return seq
}

func checkNode(ck *checkOut) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	str := func(m *yaml.Node, k, v string) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: v, Tag: "!!str"})
	}
	num := func(m *yaml.Node, k string, v int) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: strconv.Itoa(v), Tag: "!!int"})
	}
	boolean := func(m *yaml.Node, k string) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: "true", Tag: "!!bool"})
	}
	sub := func(k string) *yaml.Node {
		s := &yaml.Node{Kind: yaml.MappingNode}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, s)
		return s
	}
	str(m, "type", ck.Type)
	if ck.Type == "file" {
		f := sub("file")
		str(f, "path", ck.FilePath)
		num(f, "weight", ck.FileWeight)
		if ck.FileReverse {
			boolean(f, "reverse")
		}
		return m
	}
	str(m, "interval", fmtDuration(ck.Interval))
	str(m, "timeout", fmtDuration(ck.Timeout))
	num(m, "retries", ck.Retries)
	str(m, "retry_delay", fmtDuration(ck.RetryDelay))
	num(m, "rise", 1)
	num(m, "fall", 1)
	if ck.ConnectIP != "" {
		str(m, "connect_ip", ck.ConnectIP)
	}
	if ck.ConnectPort != 0 {
		num(m, "connect_port", ck.ConnectPort)
	}
	if ck.Source != "" {
		str(m, "source", ck.Source)
	}
	switch ck.Type {
	case "http", "https":
		h := sub("http")
		str(h, "path", ck.Path)
		if ck.Host != "" {
			str(h, "host", ck.Host)
		}
		if ck.Version != "" {
			str(h, "version", ck.Version)
		}
		st := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, code := range strings.Split(ck.Status, ",") {
			st.Content = append(st.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: code, Tag: "!!str"})
		}
		h.Content = append(h.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "status"}, st)
		if ck.Body != "" {
			str(h, "body", ck.Body)
			if ck.BodyNoMatch {
				boolean(h, "body_no_match")
			}
		}
		if ck.Digest != "" {
			str(h, "digest", ck.Digest)
		}
		if ck.SNI != "" {
			str(h, "sni", ck.SNI)
		}
	case "udp":
		if ck.SendHex == "" && !ck.RequireReply {
			break
		}
		u := sub("udp")
		if ck.SendHex != "" {
			str(u, "send_hex", ck.SendHex)
		}
		if ck.RequireReply {
			boolean(u, "require_reply")
		}
		if ck.ExpectHex != "" {
			str(u, "expect_hex", ck.ExpectHex)
		}
		if ck.MinReply != 0 {
			num(u, "min_reply_length", ck.MinReply)
		}
		if ck.MaxReply != 0 {
			num(u, "max_reply_length", ck.MaxReply)
		}
	case "smtp":
		if ck.Helo != "" {
			str(sub("smtp"), "helo_name", ck.Helo)
		}
	}
	return m
}
