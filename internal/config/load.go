package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration, placed by file, line and field.
type Problem struct {
	File  string
	Line  int    // 0 when the problem has no single place
	Field string // dotted path, e.g. instances[0].vrid; empty for syntax errors
	Msg   string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Field != "" {
		b.WriteString(": ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one configuration, in file order.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sortByLine() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

// Load reads and validates the configuration at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration. name is used in messages.
// The error, if any, is a Problems listing everything found, not just the
// first; a valid configuration's Warnings list what is likely wrong.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlProblems(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, Problems{{File: name, Msg: "configuration is empty"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlProblems(name, err)
	}
	cfg.File, cfg.Source = name, data
	pos := positions(root.Content[0])
	if ps := validate(&cfg, pos); len(ps) > 0 {
		ps.sortByLine()
		return nil, ps
	}
	cfg.Warnings.sortByLine()
	for i := range cfg.Instances {
		cfg.Instances[i].GroupTrack = cfg.GroupTracks(cfg.Instances[i].Name)
	}
	return &cfg, nil
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	notFoundRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlProblems turns yaml.v3's errors into Problems with the file name and a
// plainer wording of the common cases.
func yamlProblems(name string, err error) Problems {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var ps Problems
	for _, m := range msgs {
		p := Problem{File: name, Msg: m}
		if g := lineRE.FindStringSubmatch(m); g != nil {
			p.Line, _ = strconv.Atoi(g[1])
			p.Msg = g[2]
		}
		if g := notFoundRE.FindStringSubmatch(p.Msg); g != nil {
			p.Field = g[1]
			p.Msg = "unknown field (misspelled?)"
		}
		ps = append(ps, p)
	}
	return ps
}

// positions maps every field path in the document to the line it is on, so
// that semantic errors found after decoding can still name their line.
func positions(n *yaml.Node) map[string]int {
	pos := map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				pos[p] = k.Line
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				pos[p] = c.Line
				walk(c, p)
			}
		}
	}
	pos[""] = n.Line
	walk(n, "")
	return pos
}

// lineOf finds the line of path, or of its nearest ancestor that has one
// (a defaulted field has no line of its own, but its instance does).
func lineOf(pos map[string]int, path string) int {
	for p := path; ; {
		if l, ok := pos[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return pos[""]
		}
		p = p[:i]
	}
}
