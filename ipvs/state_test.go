package ipvs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var stateKeys = []ServiceKey{
	tcp("10.0.0.100", 80),
	key(UDP, "2001:db8::53", 53),
	key(SCTP, "10.0.0.100", 3868),
	{Family: 4, FWMark: 7},
	{Family: 6, FWMark: 7},
}

// The file format is read back by the next daemon version: keep it stable.
func TestStateFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "owned.json")
	owned := map[ServiceKey]bool{}
	for _, k := range stateKeys {
		owned[k] = true
	}
	if err := saveOwned(path, owned); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/owned-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("state file:\n%s\nwant (testdata/owned-v1.json):\n%s", got, want)
	}
	back, err := loadOwned("testdata/owned-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(stateKeys) {
		t.Errorf("loaded %v", back)
	}
	for _, k := range stateKeys {
		if !back[k] {
			t.Errorf("%s lost", k)
		}
	}
	// Only the state file is left: the temporary file was renamed.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
}

func TestLoadOwnedErrors(t *testing.T) {
	dir := t.TempDir()
	if owned, err := loadOwned(filepath.Join(dir, "missing.json")); err != nil || len(owned) != 0 {
		t.Errorf("missing file: %v %v", owned, err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"version":2,"owned":[]}`, "unknown version 2"},
		{`{"version":1,"owned":[{"family":4,"protocol":"icmp","addr":"10.0.0.1","port":1}]}`, `unknown protocol "icmp"`},
		{`{"version":1,"owned":[{"family":4,"protocol":"tcp","addr":"2001:db8::1","port":1}]}`, "is not IPv4"},
		{`[]`, "parse"},
	} {
		p := filepath.Join(dir, "s.json")
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		owned, err := loadOwned(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(owned) != 0 {
			t.Errorf("%s: %v %v", c.body, owned, err)
		}
	}
}
