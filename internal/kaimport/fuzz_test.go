package kaimport

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/director-lb/director/internal/config"
)

// FuzzParse runs the whole import on arbitrary input: it never panics, the
// work stays bounded (includes, nesting, tokens), conversion is
// deterministic, and whatever converts, checks included, is accepted by
// director's loader.
// The input may include itself or a second file, which includes it back.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.conf")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("include other.conf\n" + instance))
	f.Add([]byte("a {\n{\n}\n}\n}\n{"))
	f.Add([]byte(`x "unterminated` + "\n" + `y "\x4"` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := memFS{
			"/k/keepalived.conf": string(data),
			"/k/other.conf":      "include keepalived.conf\ninclude {a,b}{c,d}.conf\n",
		}
		rep := &Report{}
		lx := &lexer{fsys: fs, configID: "lb1", rep: rep, order: map[Pos]int{}}
		out, err := convertLexer(lx, "/k/keepalived.conf", Options{Checks: true, ConfigID: "lb1"})
		if lx.files > maxFiles || lx.bytes > maxBytes+len(data) {
			t.Fatalf("read %d files, %d bytes", lx.files, lx.bytes)
		}
		// Each file is read at most a few times here (cycles stop it), so
		// tokens are bounded by a small multiple of the input.
		if limit := 4*(len(data)+64) + 64; len(lx.toks) > limit {
			t.Fatalf("%d tokens from %d bytes", len(lx.toks), len(data))
		}
		if err != nil {
			if out != nil || rep.Count(Error) == 0 {
				t.Fatalf("error %v with output %d bytes and %d errors", err, len(out), rep.Count(Error))
			}
			return
		}
		if _, perr := config.Parse("out.yaml", out); perr != nil {
			var ps config.Problems
			if !errors.As(perr, &ps) {
				t.Fatalf("config.Parse: %v", perr)
			}
			t.Fatalf("converted output refused: %v\n%s", perr, out)
		}
		again, _, err2 := convertFS(fs, "/k/keepalived.conf", Options{Checks: true, ConfigID: "lb1"})
		if err2 != nil || !bytes.Equal(out, again) {
			t.Fatalf("conversion not deterministic")
		}
	})
}

// FuzzConvertValidates holds the importer to its promise: if it says a
// conversion succeeded, director's loader accepts exactly what it wrote,
// health checks included; if not, it wrote nothing and every error names
// its file and, where one line is to blame, the line and keyword. Seeds
// are testdata/*.conf and testdata/fuzz/FuzzConvertValidates (LVS and
// check edge cases).
func FuzzConvertValidates(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.conf")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := memFS{"/k/keepalived.conf": string(data)}
		out, rep, err := convertFS(fs, "/k/keepalived.conf", Options{Checks: true, ConfigID: "lb1"})
		if err != nil {
			if out != nil || rep.Count(Error) == 0 {
				t.Fatalf("error %v with output %d bytes and %d errors", err, len(out), rep.Count(Error))
			}
			for _, fd := range rep.Findings {
				if fd.Level == Error && fd.Pos.File == "" {
					t.Fatalf("error without a file: %v", fd)
				}
				if fd.Level == Error && fd.Pos.Line > 0 && strings.HasPrefix(fd.Msg, "director refuses") && fd.Keyword == "" {
					t.Fatalf("director's refusal at a line names no keyword: %v", fd)
				}
			}
			return
		}
		if _, perr := config.Parse("out.yaml", out); perr != nil {
			t.Fatalf("converted, yet the loader refuses it: %v\n%s", perr, out)
		}
	})
}
