package decisions

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary file contents (either format) to the decoder
// Open uses. Whatever it accepts must be valid, canonical and survive a
// write/read round trip unchanged; and merging it must be idempotent.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"decisions":[{"kind":"override","target":"web/10.0.0.1:80","action":"weight","weight":3,"at":"2026-01-01T00:00:00Z","node":"lb1"}]}`))
	f.Add([]byte(`{"svc/10.0.0.21:80": {"mode":"drain"}, "10.0.0.22:80": {"mode":"weight","weight":3}}`))
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := decodeAny(b, mtime)
		if err != nil {
			return
		}
		for _, d := range ds {
			n, err := d.normalize()
			if err != nil {
				t.Fatalf("accepted invalid %+v: %v", d, err)
			}
			if b, err := json.Marshal(d); err != nil || len(b) > MaxEncodedSize {
				t.Fatalf("%+v encodes to %d bytes (%v), over MaxEncodedSize", d, len(b), err)
			}
			if n != d {
				t.Fatalf("not canonical: %+v vs %+v", d, n)
			}
		}
		out, err := json.Marshal(file{Version: fileVersion, Decisions: ds})
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if !sameDecisions(again, ds) {
			t.Fatalf("round trip:\n%+v\n%+v", ds, again)
		}
		s, _ := Open(Options{})
		if _, err := s.Merge(ds, nil); err != nil {
			t.Fatal(err)
		}
		if ch, err := s.Merge(ds, nil); err != nil || len(ch) != 0 {
			t.Fatalf("second merge changed %v (%v)", ch, err)
		}
	})
}

// sameDecisions compares with time.Equal: a decoded time may carry a
// different *Location than the one it was encoded from.
func sameDecisions(a, b []Decision) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.At.Equal(y.At) {
			return false
		}
		x.At, y.At = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
}

// FuzzLoad feeds arbitrary file contents to Open, the loader the daemon
// starts with. Whatever the file holds, Open must succeed (a bad file is
// set aside, never a reason not to start), what it loads must be valid and
// canonical, and the rewritten file must reopen to the same decisions with
// nothing left to report.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"version":1,"decisions":[{"kind":"override","target":"web/10.0.0.1:80","action":"drain","at":"2026-01-01T00:00:00Z","node":"lb1"},{"kind":"override","target":"x","action":"drain","at":"2026-01-01T00:00:00Z","node":"lb1"}]}`))
	f.Add([]byte(`{"svc/10.0.0.21:80": {"mode":"drain"}, "10.0.0.22:80": {"mode":"explode"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "decisions.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Path: path})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		ds := s.Snapshot()
		for _, d := range ds {
			if n, err := d.normalize(); err != nil || n != d {
				t.Fatalf("loaded %+v: canonical %+v, %v", d, n, err)
			}
		}
		if rep := s.Report(); len(rep.Problems) > 0 && rep.SetAside == "" {
			t.Fatalf("problems %v but nothing set aside", rep.Problems)
		}
		again, err := Open(Options{Path: path})
		if err != nil || len(again.Report().Problems) != 0 {
			t.Fatalf("reopen: %v, problems %v", err, again.Report().Problems)
		}
		if !sameDecisions(again.Snapshot(), ds) {
			t.Fatalf("reopened:\n%+v\nwant\n%+v", again.Snapshot(), ds)
		}
	})
}
