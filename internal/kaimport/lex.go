package kaimport

import (
	"strings"
)

type tokKind int

const (
	tWord  tokKind = iota
	tOpen          // {
	tClose         // }
	tEOL           // end of a line: keepalived's grammar is line based
)

type token struct {
	kind   tokKind
	text   string
	quoted bool // some of the word was quoted, so it is never a brace or a comment
	pos    Pos
}

// lexLine splits one physical line into words and braces. Comments start at
// an unquoted '#' or '!' anywhere in the line. Quotes (" or ') may start and
// end inside a word, as in the shell: a"b c"d is the one word "ab cd". Inside
// double quotes keepalived's escapes apply (\n, \t, \x41, \101, \cC, ...).
// An unterminated quote runs to the end of the line and is reported.
func lexLine(line string, pos Pos, rep *Report) []token {
	var toks []token
	var word strings.Builder
	inWord, quoted := false, false
	flush := func() {
		if inWord {
			toks = append(toks, token{kind: tWord, text: word.String(), quoted: quoted, pos: pos})
		}
		word.Reset()
		inWord, quoted = false, false
	}
	var quote byte // the open quote character, or 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		if quote != 0 {
			switch {
			case c == quote:
				quote = 0
			case c == '\\' && quote == '"' && i+1 < len(line):
				var s string
				s, i = unescape(line, i+1)
				word.WriteString(s)
			default:
				word.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\v', '\f':
			flush()
		case '#', '!':
			flush()
			return toks
		case '{', '}':
			flush()
			k := tOpen
			if c == '}' {
				k = tClose
			}
			toks = append(toks, token{kind: k, text: string(c), pos: pos})
		case '"', '\'':
			quote = c
			inWord, quoted = true, true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		rep.add(pos, Error, "", "unterminated %c quote", quote)
	}
	flush()
	return toks
}

// unescape decodes the escape whose first character (after the backslash) is
// at s[i]. It returns the decoded text and the index of the last byte used.
func unescape(s string, i int) (string, int) {
	switch c := s[i]; c {
	case 'a':
		return "\a", i
	case 'b':
		return "\b", i
	case 'E':
		return "\x1b", i
	case 'f':
		return "\f", i
	case 'n':
		return "\n", i
	case 'r':
		return "\r", i
	case 't':
		return "\t", i
	case 'v':
		return "\v", i
	case 'c':
		if i+1 < len(s) {
			return string(s[i+1] & 0x1f), i + 1
		}
		return "c", i
	case 'x':
		v, j := 0, i+1
		for ; j < len(s) && j < i+3 && isHex(s[j]); j++ {
			v = v*16 + hexVal(s[j])
		}
		if j == i+1 {
			return "x", i
		}
		return string([]byte{byte(v)}), j - 1
	default:
		if c >= '0' && c <= '7' {
			v, j := 0, i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				v = v*8 + int(s[j]-'0')
			}
			return string([]byte{byte(v)}), j - 1
		}
		return string(c), i
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// conditional applies keepalived's "@id rest" and "@^id rest" line prefixes:
// the line is kept (without its prefix) only if id matches (or, with ^, does
// not match) the configuration id.
func conditional(toks []token, configID string) []token {
	if len(toks) == 0 || toks[0].kind != tWord || toks[0].quoted || !strings.HasPrefix(toks[0].text, "@") {
		return toks
	}
	id := toks[0].text[1:]
	want := true
	if strings.HasPrefix(id, "^") {
		id, want = id[1:], false
	}
	if (id == configID) != want {
		return nil
	}
	return toks[1:]
}

// stripComment cuts a raw line at its first unquoted '#' or '!'.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' || c == '!':
			return line[:i]
		}
	}
	return line
}
