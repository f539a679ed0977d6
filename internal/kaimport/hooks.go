package kaimport

import (
	"path/filepath"
	"strings"
)

// shellMeta are the characters that make a keepalived script string need
// a shell: quoting, expansion, redirection, pipes, globs, lists.
const shellMeta = "\"'`$\\|&;<>()*?[]{}~#=%\n\t!"

// scriptArgv turns a keepalived script string ("/path/script.sh arg") into
// an argv: simple words are split on spaces; anything a shell would
// interpret runs under /bin/sh -c, as keepalived itself would run it.
func scriptArgv(s string) []string {
	s = strings.TrimSpace(s)
	if needsShell(s) {
		return []string{"/bin/sh", "-c", s}
	}
	return strings.Fields(s)
}

// needsShell reports whether scriptArgv runs s under /bin/sh -c.
func needsShell(s string) bool { return strings.ContainsAny(s, shellMeta) }

// hookScript reads KEYWORD SCRIPT [user [group]] into an argv, or reports why
// it cannot; field is the output field it sets (for errors).
func (c *converter) hookScript(n *Node) ([]string, bool) {
	if !c.args(n, 1, 3) {
		return nil, false
	}
	if len(n.Args) > 1 {
		c.rep.add(n.Pos, Note, n.Key, "user %s ignored: director runs hooks as its own user", strings.Join(n.Args[1:], " "))
	}
	argv := scriptArgv(n.Args[0])
	switch {
	case len(argv) == 0:
		c.rep.add(n.Pos, Error, n.Key, "empty script")
		return nil, false
	case !filepath.IsAbs(argv[0]):
		c.rep.add(n.Pos, Error, n.Key, "%s: director needs an absolute path (hooks run with only a minimal PATH)", argv[0])
		return nil, false
	}
	return argv, true
}

// stateScript is the handler for notify_master, notify_backup,
// notify_fault and notify_stop: keepalived runs them with no added
// arguments, and so does director.
func stateScript(field string, set func(*outInstance, []string)) handler[*instState] {
	return func(c *converter, st *instState, n *Node) {
		if argv, ok := c.hookScript(n); ok {
			set(&st.out, argv)
			st.at[field] = n.Pos
		}
	}
}

// addedArgsHook is the handler of a hook to which director appends
// arguments of its own (quorum_up/down, notify_up/down): it converts the
// command, records where it came from, and notes what is appended.
func addedArgsHook[T any](field, args string, set func(T, []string), at func(T) map[string]Pos) handler[T] {
	return func(c *converter, st T, n *Node) {
		if argv, ok := c.hookScript(n); ok {
			set(st, argv)
			at(st)[field] = n.Pos
			c.rep.add(n.Pos, Note, n.Key, "director adds the arguments %s to the command", args)
		}
	}
}
