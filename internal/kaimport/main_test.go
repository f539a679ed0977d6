package kaimport

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainWritesStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-config-id", "lb1", "testdata/lvs-dr.conf"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want, err := os.ReadFile("testdata/golden/lvs-dr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("stdout differs from golden lvs-dr.yaml:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "testdata/lvs-dr.conf:22: note: state:") ||
		!strings.HasSuffix(stderr.String(), "0 errors, 0 warnings, 9 notes\n") {
		t.Errorf("stderr = %s", stderr.String())
	}
}

func TestMainWritesFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "director.yaml")
	var stdout, stderr bytes.Buffer
	// Flags may follow the file name.
	code := Main([]string{"testdata/grammar.conf", "-o", out, "-checks=false"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	mustParse(t, data)
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 (it may hold auth_pass)", fi.Mode().Perm())
	}
}

func TestMainErrorsWriteNothing(t *testing.T) {
	out := filepath.Join(t.TempDir(), "director.yaml")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-o", out, "testdata/errors.conf"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written despite errors: %v", err)
	}
	if !strings.Contains(stderr.String(), "testdata/errors.conf:2: error: vrrp_instnace: unknown block") ||
		!strings.Contains(stderr.String(), "nothing written") {
		t.Errorf("stderr = %s", stderr.String())
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"a.conf", "b.conf"},
		{"-bogus", "a.conf"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage: director import-keepalived") {
			t.Errorf("Main(%q) stderr = %q", args, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"testdata/no-such.conf"}, &stdout, &stderr); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}
