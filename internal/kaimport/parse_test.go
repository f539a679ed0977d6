package kaimport

import (
	"fmt"
	"strings"
	"testing"
)

// parseString lexes and parses one in-memory file.
func parseString(src string) ([]*Node, *Report) {
	rep := &Report{}
	lx := &lexer{fsys: memFS{"/k.conf": src}, rep: rep, order: map[Pos]int{}}
	lx.lexFile("/k.conf", Pos{})
	return parse(lx.toks, rep), rep
}

// dump renders a tree as key(args){children} with line numbers.
func dump(nodes []*Node) string {
	var b strings.Builder
	for i, n := range nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n.Key)
		for _, a := range n.Args {
			b.WriteString(" " + a)
		}
		fmt.Fprintf(&b, "@%02d", n.Pos.Line)
		if n.HasBlock {
			b.WriteString("{" + dump(n.Block) + "}")
		}
	}
	return b.String()
}

func TestParseBraceStyles(t *testing.T) {
	src := `vrrp_instance A {
  interface eth0
}
vrrp_instance B
{
  virtual_ipaddress
  {
    10.0.0.1/24 dev eth0
  }
}
vrrp_instance C { unicast_peer { 10.0.0.2 } }
authentication { auth_type PASS
auth_pass x }
`
	nodes, rep := parseString(src)
	if len(rep.Findings) != 0 {
		t.Fatalf("findings: %v", rep.Findings)
	}
	want := "vrrp_instance A@01{interface eth0@02} " +
		"vrrp_instance B@04{virtual_ipaddress@06{10.0.0.1/24 dev eth0@08}} " +
		"vrrp_instance C@11{unicast_peer@11{10.0.0.2@11}} " +
		"authentication@12{auth_type PASS@12 auth_pass x@13}"
	if got := dump(nodes); got != want {
		t.Errorf("tree =\n%s\nwant\n%s", got, want)
	}
}

func TestParseUnbalanced(t *testing.T) {
	cases := []struct {
		src, want string
		line      int
	}{
		{"a {\n b\n}\n}\n", "unexpected }", 4},
		{"a {\n b {\n c\n}\n", "unclosed {", 1},
		{"a 1\n{ b }\n{ c }\n", "unexpected {", 3},
	}
	for _, c := range cases {
		_, rep := parseString(c.src)
		if rep.Count(Error) != 1 || !strings.Contains(rep.Findings[0].Msg, c.want) || rep.Findings[0].Pos.Line != c.line {
			t.Errorf("parse(%q) findings = %v, want one %q error at line %d", c.src, rep.Findings, c.want, c.line)
		}
	}
}

func TestParseDepthLimit(t *testing.T) {
	src := strings.Repeat("a {\n", 100) + strings.Repeat("}\n", 100) + "after 1\n"
	nodes, rep := parseString(src)
	if rep.Count(Error) != 1 || !strings.Contains(rep.Findings[0].Msg, "nested more than") {
		t.Fatalf("findings = %v, want one nesting error", rep.Findings)
	}
	// Parsing resumes after the skipped block.
	if len(nodes) != 2 || nodes[1].Key != "after" {
		t.Errorf("top level = %s, want the nest and then after", dump(nodes[1:]))
	}
}
