package kaimport

import (
	"slices"
	"strings"
	"testing"
)

// words renders tokens as text, braces included, quoted words in <>.
func words(toks []token) string {
	var out []string
	for _, t := range toks {
		switch {
		case t.kind == tEOL:
			out = append(out, "\\n")
		case t.quoted:
			out = append(out, "<"+t.text+">")
		default:
			out = append(out, t.text)
		}
	}
	return strings.Join(out, " ")
}

func TestLexLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"priority 100", "priority 100"},
		{"  priority\t100  ", "priority 100"},
		{"# a comment", ""},
		{"! a comment", ""},
		{"priority 100 # the rest is a comment", "priority 100"},
		{"priority 100 ! so is this", "priority 100"},
		{"priority 100#glued", "priority 100"},
		{"vrrp_instance VI_1 {", "vrrp_instance VI_1 {"},
		{"virtual_ipaddress { 10.0.0.1/24 }", "virtual_ipaddress { 10.0.0.1/24 }"},
		{"a{b}c", "a { b } c"},
		{"} }", "} }"},
		{`router_id "lb one"`, "router_id <lb one>"},
		{`x 'single # not a comment'`, "x <single # not a comment>"},
		{`x "{ not a brace }"`, "x <{ not a brace }>"},
		{`abcd" efg h jkl "mnop`, "<abcd efg h jkl mnop>"},
		{`abcd "efg h jkl" mnop`, "abcd <efg h jkl> mnop"},
		{`x ""`, "x <>"},
		{`x "a\tb"`, "x <a\tb>"},
		{`x "\x41\101\cA\"\\"`, "x <AA\x01\"\\>"},
		{`x 'a\tb'`, `x <a\tb>`}, // no escapes in single quotes
		{`x a\tb`, `x a\tb`},     // nor outside quotes
	}
	for _, c := range cases {
		rep := &Report{}
		got := words(lexLine(c.in, Pos{File: "f", Line: 1}, rep))
		if got != c.want {
			t.Errorf("lexLine(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(rep.Findings) != 0 {
			t.Errorf("lexLine(%q) reported %v", c.in, rep.Findings)
		}
	}
}

func TestLexUnterminatedQuote(t *testing.T) {
	rep := &Report{}
	got := words(lexLine(`notify "/bin/x arg`, Pos{File: "k.conf", Line: 7}, rep))
	if got != "notify </bin/x arg>" {
		t.Errorf("tokens = %q", got)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Level != Error || rep.Findings[0].Pos.Line != 7 ||
		!strings.Contains(rep.Findings[0].Msg, "unterminated") {
		t.Errorf("findings = %v, want one unterminated-quote error at line 7", rep.Findings)
	}
}

func TestLexKeepsLineNumbers(t *testing.T) {
	rep := &Report{}
	lx := &lexer{fsys: memFS{"/k.conf": "a 1\n\n# c\nb {\n  c\n}\n"}, rep: rep, order: map[Pos]int{}}
	lx.lexFile("/k.conf", Pos{})
	var got []string
	for _, tk := range lx.toks {
		if tk.kind != tEOL {
			got = append(got, tk.pos.String()+"="+tk.text)
		}
	}
	want := []string{"/k.conf:1=a", "/k.conf:1=1", "/k.conf:4=b", "/k.conf:4={", "/k.conf:5=c", "/k.conf:6=}"}
	if !slices.Equal(got, want) {
		t.Errorf("tokens = %v, want %v", got, want)
	}
}

func TestConditional(t *testing.T) {
	cases := []struct {
		line, id, want string
	}{
		{"@lb1 priority 200", "lb1", "priority 200"},
		{"@lb1 priority 200", "lb2", ""},
		{"@^lb1 priority 100", "lb1", ""},
		{"@^lb1 priority 100", "lb2", "priority 100"},
		{"priority 100", "lb1", "priority 100"},
		{`"@lb1" x`, "lb2", "<@lb1> x"}, // quoted: not a condition
	}
	for _, c := range cases {
		got := words(conditional(lexLine(c.line, Pos{}, &Report{}), c.id))
		if got != c.want {
			t.Errorf("conditional(%q, %q) = %q, want %q", c.line, c.id, got, c.want)
		}
	}
}

func TestParamLinesAreErrors(t *testing.T) {
	rep := &Report{}
	lx := &lexer{fsys: memFS{"/k.conf": "$PRIO=100\n~SEQ(N,1,3) x\npriority $PRIO\n"}, rep: rep, order: map[Pos]int{}}
	lx.lexFile("/k.conf", Pos{})
	if rep.Count(Error) != 2 || rep.Findings[0].Pos.Line != 1 || rep.Findings[1].Pos.Line != 2 {
		t.Errorf("findings = %v, want errors at lines 1 and 2", rep.Findings)
	}
	if got := words(lx.toks); got != `priority $PRIO \n` {
		t.Errorf("tokens = %q", got)
	}
}

func TestIncludeLine(t *testing.T) {
	cases := []struct {
		line, kind, rest string
		ok               bool
	}{
		{"include conf.d/*.conf", "include", "conf.d/*.conf", true},
		{"  includea /etc/x.conf  # all checks", "includea", "/etc/x.conf", true},
		{`include "a b.conf"`, "include", "a b.conf", true},
		{"include services/{web,mail}.conf", "include", "services/{web,mail}.conf", true},
		{"include", "", "", false},
		{"includes x", "", "", false},
		{"# include x", "", "", false},
	}
	for _, c := range cases {
		kind, rest, ok := includeLine(c.line)
		if kind != c.kind || rest != c.rest || ok != c.ok {
			t.Errorf("includeLine(%q) = %q, %q, %v; want %q, %q, %v", c.line, kind, rest, ok, c.kind, c.rest, c.ok)
		}
	}
}

func TestExpandBraces(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a.conf", []string{"a.conf"}},
		{"a{b,c{d,e}}f", []string{"abf", "acdf", "acef"}},
		{"x{,.d}/y", []string{"x/y", "x.d/y"}},
		{"{a,b}{1,2}", []string{"a1", "a2", "b1", "b2"}},
		{"lit{x}{a,b}", []string{"lit{x}a", "lit{x}b"}},
		{"open{a,b", []string{"open{a,b"}},
	}
	for _, c := range cases {
		got, ok := expandBraces(c.in, maxBraceExpand)
		if !ok || !slices.Equal(got, c.want) {
			t.Errorf("expandBraces(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	// 2^10 alternatives are refused, not expanded.
	if _, ok := expandBraces(strings.Repeat("{a,b}", 10), maxBraceExpand); ok {
		t.Error("expandBraces accepted 1024 patterns")
	}
}
