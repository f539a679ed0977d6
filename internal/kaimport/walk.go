package kaimport

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handler converts one keyword of a block whose state has type T.
type handler[T any] func(c *converter, st T, n *Node)

// block is what the importer knows about one kind of keepalived block:
// keywords it converts (simple ones, and ones that open a block) and
// keywords it knows but does not convert. Anything else is unknown.
type block[T any] struct {
	name   string
	simple map[string]handler[T]
	blocks map[string]handler[T]
	known  map[string]known
}

// known is a recognised keyword that is not converted, and what to say.
type known struct {
	level Level
	msg   string
}

// walk converts nodes with b's handlers. It returns the keywords whose
// conversion failed with an error, so that director's own complaint about
// the missing value is not reported a second time.
func walk[T any](c *converter, b *block[T], st T, nodes []*Node) map[string]bool {
	failed := map[string]bool{}
	for _, n := range nodes {
		errs := c.rep.Count(Error)
		walkOne(c, b, st, n)
		if c.rep.Count(Error) > errs {
			failed[n.Key] = true
		}
	}
	return failed
}

func walkOne[T any](c *converter, b *block[T], st T, n *Node) {
	if h, ok := b.simple[n.Key]; ok {
		if n.HasBlock {
			c.rep.add(n.Pos, Error, n.Key, "takes no { } block; nothing in it was converted")
			return
		}
		h(c, st, n)
		return
	}
	if h, ok := b.blocks[n.Key]; ok {
		if !n.HasBlock {
			c.rep.add(n.Pos, Error, n.Key, "needs a { } block")
			return
		}
		h(c, st, n)
		return
	}
	if k, ok := b.known[n.Key]; ok {
		c.rep.add(n.Pos, k.level, n.Key, "%s", k.msg)
		return
	}
	c.unknown(b.name, b.names(), n)
}

func (b *block[T]) names() []string {
	var ns []string
	for k := range b.simple {
		ns = append(ns, k)
	}
	for k := range b.blocks {
		ns = append(ns, k)
	}
	for k := range b.known {
		ns = append(ns, k)
	}
	slices.Sort(ns)
	return ns
}

// unknown reports a keyword the importer does not know. An unknown block is
// an error: it is most likely a misspelling (vrrp_instnace) that keepalived
// itself skips, and a whole instance or service would silently vanish.
func (c *converter) unknown(where string, names []string, n *Node) {
	hint := "misspelled?"
	if s := suggest(n.Key, names); s != "" {
		hint = "did you mean " + s + "?"
	}
	if n.HasBlock {
		c.rep.add(n.Pos, Error, n.Key, "unknown block in %s (%s): nothing in it was converted", where, hint)
		return
	}
	c.rep.add(n.Pos, Warning, n.Key, "unknown keyword in %s (%s); ignored", where, hint)
}

// suggest returns the known name closest to key, if it is close enough to be
// a likely misspelling.
func suggest(key string, names []string) string {
	best, bestD := "", 3
	if len(key) <= 4 {
		bestD = 2
	}
	for _, n := range names {
		if d := editDistance(key, n, bestD); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau (optimal string alignment) distance between a
// and b, giving up at limit to bound the work on long words.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit || len(a) > 64 || len(b) > 64 {
		return limit
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// ---- argument helpers: each reports its own problems ----

// args checks n has between lo and hi arguments (hi < 0: any number). Too
// few is an error; too many is a warning and the rest are ignored.
func (c *converter) args(n *Node, lo, hi int) bool {
	if len(n.Args) < lo {
		if lo == 1 {
			c.rep.add(n.Pos, Error, n.Key, "needs a value")
		} else {
			c.rep.add(n.Pos, Error, n.Key, "needs %d values, got %d", lo, len(n.Args))
		}
		return false
	}
	if hi >= 0 && len(n.Args) > hi {
		c.rep.add(n.Pos, Warning, n.Key, "extra values ignored: %s", strings.Join(n.Args[hi:], " "))
	}
	return true
}

func (c *converter) intArg(n *Node, lo, hi int) (int, bool) {
	if !c.args(n, 1, 1) {
		return 0, false
	}
	return c.parseInt(n, n.Args[0], lo, hi)
}

func (c *converter) parseInt(n *Node, s string, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		c.rep.add(n.Pos, Error, n.Key, "want a whole number from %d to %d, got %q", lo, hi, s)
		return 0, false
	}
	return v, true
}

// secondsArg reads keepalived's <TIMER>: seconds, fractions allowed, to the
// microsecond.
func (c *converter) secondsArg(n *Node) (time.Duration, bool) {
	if !c.args(n, 1, 1) {
		return 0, false
	}
	return c.parseSeconds(n, n.Args[0])
}

func (c *converter) parseSeconds(n *Node, s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e6 || strings.ContainsAny(s, "xXpPeEiInN_") {
		c.rep.add(n.Pos, Error, n.Key, "want a time in seconds, like 1 or 0.5, got %q", s)
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

// boolArg reads an optional <BOOL>; a keyword alone means true.
func (c *converter) boolArg(n *Node) (bool, bool) {
	if len(n.Args) == 0 {
		return true, true
	}
	c.args(n, 1, 1)
	switch strings.ToLower(n.Args[0]) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	c.rep.add(n.Pos, Error, n.Key, "want on, off, true, false, yes or no, got %q", n.Args[0])
	return false, false
}
