package kaimport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
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

// TestGoldenPassesConfigParse loads every converted configuration, with
// and without its checks: keys, with director's own loader.
func TestGoldenPassesConfigParse(t *testing.T) {
	for _, c := range goldenCases {
		if !c.ok {
			continue
		}
		for _, withChecks := range []bool{true, false} {
			opts := testOptions
			opts.Checks = withChecks
			data, _, err := ConvertWith(c.path, opts)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !withChecks && bytes.Contains(data, []byte("checks:")) {
				t.Errorf("%s: -checks=false output has checks: keys", c.name)
			}
			cfg, err := config.Parse(c.name+".yaml", data)
			if err != nil {
				t.Errorf("%s (checks %v): config.Parse: %v", c.name, withChecks, err)
				continue
			}
			if len(cfg.Instances)+len(cfg.Services) == 0 {
				t.Errorf("%s: nothing converted", c.name)
			}
		}
	}
}

// TestGoldenWithChecksIsTheSameConfig: the output with checks differs from
// the one without only by its checks: lists.
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
	if got := stripChecks(string(with)); got != string(without) {
		t.Errorf("without check blocks:\n%s\nwant\n%s", got, without)
	}
}

// stripChecks removes every "checks:" list from YAML text by indentation.
func stripChecks(s string) string {
	var out []string
	skip := -1
	for _, line := range strings.Split(s, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skip >= 0 && indent > skip {
			continue
		}
		skip = -1
		if strings.TrimSpace(line) == "checks:" {
			skip = indent
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
