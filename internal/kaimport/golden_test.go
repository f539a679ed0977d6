package kaimport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/director-lb/director/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenCases are the test configurations; each has a golden report, and a
// golden director.yaml when it converts.
var goldenCases = []struct {
	name, path string
	ok         bool
}{
	{"lvs-dr", "testdata/lvs-dr.conf", true},
	{"grammar", "testdata/grammar.conf", true},
	{"ipv6", "testdata/ipv6.conf", true},
	{"groups", "testdata/groups.conf", true},
	{"include", "testdata/include/keepalived.conf", true},
	{"unsupported", "testdata/unsupported.conf", true},
	{"checkers", "testdata/checkers.conf", true},
	{"errors", "testdata/errors.conf", false},
	{"cycle", "testdata/cycle/keepalived.conf", false},
}

// testOptions fix the config id, which otherwise comes from the host name.
var testOptions = Options{Checks: true, ConfigID: "lb1"}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			data, rep, err := ConvertWith(c.path, testOptions)
			var b bytes.Buffer
			if err := rep.Write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".report", b.Bytes())
			if !c.ok {
				if err == nil || data != nil || rep.Count(Error) == 0 {
					t.Fatalf("converted with no error: err=%v, %d bytes", err, len(data))
				}
				return
			}
			if err != nil {
				t.Fatalf("ConvertWith: %v\n%s", err, b.String())
			}
			golden(t, c.name+".yaml", data)
		})
	}
}

// goldenInputs are every keepalived configuration under testdata that a
// test converts: the golden cases and the others.
func goldenInputs(t *testing.T) []string {
	t.Helper()
	in, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range goldenCases {
		if !slices.Contains(in, c.path) {
			in = append(in, c.path)
		}
	}
	return in
}

// TestEveryResultLoads: whatever the importer writes, with or without
// checks, director's own loader accepts; and so it does every golden
// director.yaml. The importer validates what it writes, so a conversion
// that succeeds and does not load is a bug.
func TestEveryResultLoads(t *testing.T) {
	converted := 0
	for _, path := range goldenInputs(t) {
		for _, checks := range []bool{true, false} {
			opts := testOptions
			opts.Checks = checks
			data, rep, err := ConvertWith(path, opts)
			if err != nil {
				if data != nil || rep.Count(Error) == 0 {
					t.Errorf("%s: error %v, yet %d bytes and %d errors", path, err, len(data), rep.Count(Error))
				}
				continue
			}
			converted++
			if _, err := config.Parse(path+".yaml", data); err != nil {
				t.Errorf("%s (checks %v): the converted result does not load:\n%v\n%s", path, checks, err, data)
			}
			if !checks && bytes.Contains(data, []byte("checks:")) {
				t.Errorf("%s: -checks=false output has checks", path)
			}
		}
	}
	goldens, err := filepath.Glob("testdata/golden/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(g, data); err != nil {
			t.Errorf("golden %s does not load: %v", g, err)
		}
	}
	if converted == 0 || len(goldens) == 0 {
		t.Fatalf("loaded %d conversions and %d golden files: the test tested nothing", converted, len(goldens))
	}
}

// TestGoldenWithChecksIsTheSameConfig: the output without checks loads as
// the one with them, less their checks.
func TestGoldenWithChecksIsTheSameConfig(t *testing.T) {
	with, _, err := ConvertWith("testdata/lvs-dr.conf", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions
	opts.Checks = false
	without, _, err := ConvertWith("testdata/lvs-dr.conf", opts)
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustParse(t, with), mustParse(t, without)
	n := 0
	for i := range a.Services {
		s := &a.Services[i]
		n += len(s.Checks)
		s.Checks = nil
		for j := range s.RealServers {
			if r := &s.RealServers[j]; r.Checks != nil {
				n += len(*r.Checks)
				r.Checks = nil
			}
		}
	}
	if n == 0 {
		t.Fatal("lvs-dr.conf converted without checks: nothing to compare")
	}
	a.File, b.File = "", ""
	a.Source, b.Source = nil, nil // the texts differ: that is the point
	if !reflect.DeepEqual(a, b) {
		t.Errorf("without checks:\n%s\nwant the same as\n%s", without, with)
	}
}
