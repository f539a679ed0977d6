package kaimport

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Pos is a place in a keepalived configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Level is how much a finding matters.
type Level int

const (
	// Note: ignored, with no effect on how the pair behaves.
	Note Level = iota
	// Warning: not converted (unsupported or unknown); director will behave
	// differently from keepalived here.
	Warning
	// Error: the configuration is wrong or cannot be converted safely; no
	// output is produced.
	Error
)

func (l Level) String() string {
	switch l {
	case Note:
		return "note"
	case Warning:
		return "warning"
	default:
		return "error"
	}
}

// Finding is one thing the importer has to say about the input.
type Finding struct {
	Pos     Pos
	Level   Level
	Keyword string // the keepalived keyword concerned; may be empty
	Msg     string
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: ", f.Pos, f.Level)
	if f.Keyword != "" {
		b.WriteString(f.Keyword)
		b.WriteString(": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

// Report is every finding of one conversion, in the order of the input.
type Report struct {
	Findings []Finding
}

func (r *Report) add(pos Pos, l Level, kw, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Pos: pos, Level: l, Keyword: kw, Msg: fmt.Sprintf(format, args...)})
}

// sort puts the findings in the order of the lines they are about; order
// numbers the lines as they were read. Findings with no line go last.
func (r *Report) sort(order map[Pos]int) {
	key := func(f Finding) int {
		if n, ok := order[f.Pos]; ok {
			return n
		}
		return math.MaxInt
	}
	slices.SortStableFunc(r.Findings, func(a, b Finding) int { return cmp.Compare(key(a), key(b)) })
}

// Count returns how many findings have level l.
func (r Report) Count(l Level) int {
	n := 0
	for _, f := range r.Findings {
		if f.Level == l {
			n++
		}
	}
	return n
}

// Write prints one finding per line, then a one-line summary.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%s, %s, %s\n", plural(r.Count(Error), "error"), plural(r.Count(Warning), "warning"), plural(r.Count(Note), "note"))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
