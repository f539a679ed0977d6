package kaimport

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Limits that keep the work bounded whatever the input: includes can nest,
// repeat and fan out, and the fuzzer will find every way to make them.
const (
	maxIncludeDepth = 16
	maxFiles        = 256
	maxBytes        = 32 << 20
	maxBraceExpand  = 64
)

// fileSystem is what the lexer reads through; tests and the fuzzer use an
// in-memory one.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	// Glob returns the names matching pattern in lexical order, like filepath.Glob.
	Glob(pattern string) ([]string, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// includeKinds are keepalived's include keywords. They differ only in which
// failures keepalived itself treats as errors; the importer reports every
// failure, as an error for the strict variants and as a warning for the
// lenient ones, since in both cases part of the configuration is missing.
var includeKinds = map[string]Level{
	"include":  Warning,
	"includer": Warning,
	"includem": Error,
	"includew": Error,
	"includeb": Error,
	"includea": Error,
	"includet": Error,
}

// lexer turns a file and everything it includes into one token stream.
type lexer struct {
	fsys     fileSystem
	configID string
	rep      *Report
	toks     []token
	stack    []string // canonical names of the files being read, for cycles
	names    []string // the same files as named in messages
	files    int
	bytes    int
	limited  bool // a limit was hit and reported; read nothing more
	// order numbers each line in reading order, includes in their place,
	// so that findings made later can be sorted into the order of the input.
	order map[Pos]int
}

// lexFile reads name and splices in its includes. from is where it was
// included (zero for the top file).
func (lx *lexer) lexFile(name string, from Pos) {
	if lx.limited {
		return
	}
	canon := canonical(name)
	if i := slices.Index(lx.stack, canon); i >= 0 {
		lx.rep.add(from, Error, "include", "include cycle: %s", strings.Join(append(slices.Clone(lx.names[i:]), name), " -> "))
		return
	}
	if len(lx.stack) >= maxIncludeDepth {
		lx.rep.add(from, Error, "include", "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	if lx.files >= maxFiles {
		lx.rep.add(from, Error, "include", "more than %d files included; stopping", maxFiles)
		lx.limited = true
		return
	}
	data, err := lx.fsys.ReadFile(name)
	if err != nil {
		lx.rep.add(orFile(from, name), Error, "", "read configuration: %v", err)
		return
	}
	lx.files++
	lx.bytes += len(data)
	if lx.bytes > maxBytes {
		lx.rep.add(orFile(from, name), Error, "", "more than %d MiB of configuration; stopping", maxBytes>>20)
		lx.limited = true
		return
	}
	lx.stack = append(lx.stack, canon)
	lx.names = append(lx.names, name)
	defer func() {
		lx.stack = lx.stack[:len(lx.stack)-1]
		lx.names = lx.names[:len(lx.names)-1]
	}()

	for i, line := range strings.Split(string(data), "\n") {
		pos := Pos{File: name, Line: i + 1}
		if _, seen := lx.order[pos]; !seen {
			lx.order[pos] = len(lx.order)
		}
		if kind, rest, ok := includeLine(line); ok {
			lx.include(name, kind, rest, pos)
			continue
		}
		toks := conditional(lexLine(line, pos, lx.rep), lx.configID)
		if len(toks) == 0 {
			continue
		}
		if t := toks[0]; t.kind == tWord && !t.quoted && isParamLine(t.text) {
			lx.rep.add(pos, Error, t.text, "parameter substitution and ~SEQ/~LST are not supported: expand them first (the output of keepalived -d shows the expanded configuration)")
			continue
		}
		lx.toks = append(lx.toks, toks...)
		lx.toks = append(lx.toks, token{kind: tEOL, pos: pos})
	}
}

func orFile(p Pos, name string) Pos {
	if p.File == "" {
		return Pos{File: name}
	}
	return p
}

func canonical(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return filepath.Clean(name)
}

// isParamLine recognises keepalived's "$NAME=value" definitions and its
// ~SEQ(...) and ~LST(...) generators, which the importer does not expand.
func isParamLine(w string) bool {
	if strings.HasPrefix(w, "~SEQ") || strings.HasPrefix(w, "~LST") {
		return true
	}
	return strings.HasPrefix(w, "$") && strings.Contains(w, "=")
}

// includeLine recognises "include PATTERN" (and its variants) and returns the
// pattern. It works on the raw line because a pattern may hold braces.
func includeLine(line string) (kind, rest string, ok bool) {
	s := strings.TrimLeft(line, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return "", "", false
	}
	if _, known := includeKinds[s[:i]]; !known {
		return "", "", false
	}
	rest = strings.TrimSpace(stripComment(s[i:]))
	if n := len(rest); n >= 2 && (rest[0] == '"' || rest[0] == '\'') && rest[n-1] == rest[0] {
		rest = rest[1 : n-1]
	}
	return s[:i], rest, true
}

func (lx *lexer) include(from, kind, pattern string, pos Pos) {
	if pattern == "" {
		lx.rep.add(pos, Error, kind, "no file named")
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	patterns, ok := expandBraces(pattern, maxBraceExpand)
	if !ok {
		lx.rep.add(pos, Error, kind, "brace expression expands to more than %d patterns", maxBraceExpand)
		return
	}
	var matches []string
	for _, p := range patterns {
		m, err := lx.fsys.Glob(p)
		if err != nil {
			lx.rep.add(pos, Error, kind, "bad pattern %q: %v", p, err)
			return
		}
		for _, f := range m {
			if !slices.Contains(matches, f) {
				matches = append(matches, f)
			}
		}
	}
	if len(matches) == 0 {
		lx.rep.add(pos, includeKinds[kind], kind, "%s: no such file", pattern)
		return
	}
	for _, m := range matches {
		lx.lexFile(m, pos)
	}
}

// expandBraces expands csh-style alternatives, "a{b,c{d,e}}f" giving abf,
// acdf, acef, as keepalived's glob does. It fails past limit patterns.
func expandBraces(s string, limit int) ([]string, bool) {
	open := -1
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 {
				continue
			}
			alts := splitTopLevel(s[open+1 : i])
			if len(alts) < 2 {
				// "{x}" is not an alternative list: keep it literally
				// and look for one further on.
				rest, ok := expandBraces(s[i+1:], limit)
				if !ok {
					return nil, false
				}
				out := make([]string, len(rest))
				for j, r := range rest {
					out[j] = s[:i+1] + r
				}
				return out, true
			}
			var out []string
			for _, a := range alts {
				sub, ok := expandBraces(s[:open]+a+s[i+1:], limit)
				if !ok || len(out)+len(sub) > limit {
					return nil, false
				}
				out = append(out, sub...)
			}
			return out, true
		}
	}
	return []string{s}, true
}

// splitTopLevel splits s at commas not inside nested braces.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// memFS is an in-memory fileSystem for tests and fuzzing.
type memFS map[string]string

func (m memFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := filepath.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
