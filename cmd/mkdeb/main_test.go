package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{nil, 2, "-version and -time are required"},
		{[]string{"-version", "v1.0.0"}, 2, "-version and -time are required"},
		{[]string{"-version", "v1.0.0", "-time", "1", "extra"}, 2, "-version and -time are required"},
		{[]string{"-version", "devel", "-time", "1", "-o", t.TempDir()}, 1, `version "devel"`},
		{[]string{"-version", "v1.0.0", "-time", "1", "-binary", "/nonexistent", "-o", t.TempDir()}, 1, "/nonexistent"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.says) {
			t.Errorf("mkdeb %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut.String(), tc.code, tc.says)
		}
		if out.Len() != 0 {
			t.Errorf("mkdeb %q printed %q; want nothing on failure", tc.args, out.String())
		}
	}
}
