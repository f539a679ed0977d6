package privdir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mkdir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return dir
}

func TestCheckModes(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		want string // "" for accepted
	}{
		{0o700, ""},
		{0o755, ""},
		{0o750, ""},
		{0o770, "mode 0770 lets its group or others write it"},
		{0o757, "mode 0757 lets its group or others write it"},
		{0o777 | os.ModeSticky, "mode 1777 lets its group or others write it"},
	} {
		dir := mkdir(t, tc.mode)
		err := Check("state directory", dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("mode %v refused: %v", tc.mode, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "state directory "+dir+":")):
			t.Errorf("mode %v: error %v, want one naming %s and %q", tc.mode, err, dir, tc.want)
		}
	}
}

func TestCheckOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root to give a directory to another user")
	}
	dir := mkdir(t, 0o700)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Check("control socket directory", dir)
	if err == nil || !strings.Contains(err.Error(), "control socket directory "+dir+": owned by uid 65534, not by root") {
		t.Fatalf("directory of nobody: %v", err)
	}
}

func TestCheckNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check("state directory", f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file: %v", err)
	}
	if err := Check("state directory", filepath.Join(f, "x")); err == nil {
		t.Fatal("a path under a file accepted")
	}
}

func TestEnsureCreatesPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Ensure("state directory", dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v, %v; want a 0700 directory", fi.Mode(), err)
	}
	// An existing loose one is not tightened behind the operator's back.
	loose := mkdir(t, 0o777)
	if err := Ensure("state directory", loose); err == nil {
		t.Fatal("Ensure accepted a world-writable directory")
	}
}
