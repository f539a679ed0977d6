package kaimport

// maxDepth bounds block nesting; keepalived's deepest real use is four
// (virtual_server, real_server, HTTP_GET, url).
const maxDepth = 32

// Node is one keyword line, "keyword args...", with an optional { block }.
// A list block (virtual_ipaddress, unicast_peer, ...) holds one Node per
// line, whose Key is the line's first word.
type Node struct {
	Key      string
	Args     []string
	Pos      Pos
	HasBlock bool
	Block    []*Node
}

type parser struct {
	toks []token
	i    int
	rep  *Report
}

// parse builds the keyword tree. Unbalanced braces are reported; parsing goes
// on so that one stray brace does not hide every other finding.
func parse(toks []token, rep *Report) []*Node {
	p := &parser{toks: toks, rep: rep}
	return p.block(0, Pos{})
}

func (p *parser) block(depth int, open Pos) []*Node {
	var nodes []*Node
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch t.kind {
		case tEOL:
			p.i++
		case tClose:
			p.i++
			if depth > 0 {
				return nodes
			}
			p.rep.add(t.pos, Error, "", "unexpected }: no block is open")
		case tOpen:
			p.i++
			p.rep.add(t.pos, Error, "", "unexpected {: a block must follow a keyword")
			p.sub(depth+1, t.pos) // consumed so that its } is not stray too
		case tWord:
			nodes = append(nodes, p.statement(depth))
		}
	}
	if depth > 0 {
		p.rep.add(open, Error, "", "unclosed {: the input ends first")
	}
	return nodes
}

// statement reads a keyword, its arguments up to the end of the line, and a
// block if one opens, on this line or (keepalived allows it) a later one.
func (p *parser) statement(depth int) *Node {
	t := p.toks[p.i]
	p.i++
	n := &Node{Key: t.text, Pos: t.pos}
	for p.i < len(p.toks) && p.toks[p.i].kind == tWord {
		n.Args = append(n.Args, p.toks[p.i].text)
		p.i++
	}
	j := p.i
	for j < len(p.toks) && p.toks[j].kind == tEOL {
		j++
	}
	if j < len(p.toks) && p.toks[j].kind == tOpen {
		p.i = j + 1
		n.HasBlock = true
		n.Block = p.sub(depth+1, p.toks[j].pos)
	}
	return n
}

// sub parses a block's contents, or skips them past maxDepth.
func (p *parser) sub(depth int, open Pos) []*Node {
	if depth <= maxDepth {
		return p.block(depth, open)
	}
	p.rep.add(open, Error, "", "blocks nested more than %d deep", maxDepth)
	for level := 1; p.i < len(p.toks); p.i++ {
		switch p.toks[p.i].kind {
		case tOpen:
			level++
		case tClose:
			level--
			if level == 0 {
				p.i++
				return nil
			}
		}
	}
	p.rep.add(open, Error, "", "unclosed {: the input ends first")
	return nil
}
