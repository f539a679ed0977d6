package apiauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef-secret"

func writeToken(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod explicitly: WriteFile's mode is filtered by the umask.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTokenFile(t *testing.T) {
	p := writeToken(t, "  "+testToken+"\n\n", 0o600)
	got, err := ReadTokenFile(p)
	if err != nil || got != testToken {
		t.Fatalf("got %q, %v; want %q", got, err, testToken)
	}
	p = writeToken(t, testToken, 0o400)
	if got, err := ReadTokenFile(p); err != nil || got != testToken {
		t.Fatalf("mode 0400: %q, %v", got, err)
	}
}

func TestReadTokenFileRefuses(t *testing.T) {
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // part of the error
	}{
		{"group readable", testToken, 0o640, "mode 0640"},
		{"world readable", testToken, 0o604, "mode 0604"},
		{"group writable only", testToken, 0o620, "mode 0620"},
		{"empty", "", 0o600, "empty"},
		{"whitespace only", " \n\t\n", 0o600, "empty"},
		{"short", "abc123\n", 0o600, "at least 16"},
		{"two lines", testToken + "\n" + testToken + "\n", 0o600, "single word"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeToken(t, c.content, c.mode)
			_, err := ReadTokenFile(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q should name %s and contain %q", err, p, c.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

func TestReadTokenFileMissingAndDir(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent")
	if _, err := ReadTokenFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// A token file must belong to the daemon's user (root): a file another
// user owns could be rewritten by that user, mode 0600 or not.
func TestReadTokenFileRefusesOtherOwner(t *testing.T) {
	p := writeToken(t, testToken, 0o600)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(p); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("a token file of uid 65534: %v, want it refused", err)
	}
}

// The digest matches the token and nothing else, however long.
func TestToken(t *testing.T) {
	tok, err := NewToken(testToken)
	if err != nil {
		t.Fatal(err)
	}
	for given, want := range map[string]bool{testToken: true, testToken + "x": false, testToken[:16]: false, "": false} {
		if tok.Matches(given) != want {
			t.Errorf("Matches(%q) = %v", given, !want)
		}
	}
	if _, err := NewToken("short"); err == nil {
		t.Error("a short token taken")
	}
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": ""} {
		if got, _ := Bearer(h); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}
