package decisions

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func ov(target string, a Action, w int, at time.Time, node string) Decision {
	return Decision{Kind: KindOverride, Target: target, Action: a, Weight: w, At: at, Node: node}
}

func reg(target string, a Action, w int, at time.Time, node string) Decision {
	return Decision{Kind: KindRegistration, Target: target, Action: a, Weight: w, At: at, Node: node}
}

func mem(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPut(t *testing.T, s *Store, d Decision) bool {
	t.Helper()
	ch, err := s.Put(d)
	if err != nil {
		t.Fatalf("put %+v: %v", d, err)
	}
	return ch
}

func TestLastWriterWins(t *testing.T) {
	const rs = "web/10.0.0.21:80"
	tests := []struct {
		name   string
		local  Decision
		remote Decision
		want   Decision
	}{
		{"older remote loses", ov(rs, ActionDrain, 0, t0, "lb1"), ov(rs, ActionDisable, 0, t0.Add(-time.Second), "lb2"), ov(rs, ActionDrain, 0, t0, "lb1")},
		{"newer remote wins", ov(rs, ActionDrain, 0, t0, "lb1"), ov(rs, ActionWeight, 7, t0.Add(time.Nanosecond), "lb2"), ov(rs, ActionWeight, 7, t0.Add(time.Nanosecond), "lb2")},
		{"tie: greater node wins", ov(rs, ActionDrain, 0, t0, "lb1"), ov(rs, ActionDisable, 0, t0, "lb2"), ov(rs, ActionDisable, 0, t0, "lb2")},
		{"tie: lesser node loses", ov(rs, ActionDrain, 0, t0, "lb2"), ov(rs, ActionDisable, 0, t0, "lb1"), ov(rs, ActionDrain, 0, t0, "lb2")},
		{"tombstone beats older live", ov(rs, ActionDisable, 0, t0, "lb1"), ov(rs, ActionEnable, 0, t0.Add(time.Minute), "lb2"), ov(rs, ActionEnable, 0, t0.Add(time.Minute), "lb2")},
		{"newer live beats tombstone", ov(rs, ActionEnable, 0, t0, "lb1"), ov(rs, ActionDrain, 0, t0.Add(time.Minute), "lb2"), ov(rs, ActionDrain, 0, t0.Add(time.Minute), "lb2")},
		{"older live loses to tombstone", ov(rs, ActionEnable, 0, t0, "lb1"), ov(rs, ActionDrain, 0, t0.Add(-time.Minute), "lb2"), ov(rs, ActionEnable, 0, t0, "lb1")},
		{"deregister beats older register", reg(rs, ActionRegister, 1, t0, "lb1"), reg(rs, ActionDeregister, 0, t0.Add(time.Second), "lb1"), reg(rs, ActionDeregister, 0, t0.Add(time.Second), "lb1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both orders must give the same result: that is what makes
			// the two nodes converge.
			a, b := mem(t), mem(t)
			mustPut(t, a, tc.local)
			if _, err := a.Merge([]Decision{tc.remote}, nil); err != nil {
				t.Fatal(err)
			}
			mustPut(t, b, tc.remote)
			if _, err := b.Merge([]Decision{tc.local}, nil); err != nil {
				t.Fatal(err)
			}
			for name, s := range map[string]*Store{"local first": a, "remote first": b} {
				got := s.Snapshot()
				if len(got) != 1 || got[0] != tc.want {
					t.Errorf("%s: got %+v, want %+v", name, got, tc.want)
				}
			}
		})
	}
}

func TestPutReportsChange(t *testing.T) {
	s := mem(t)
	d := ov("10.0.0.21:80", ActionDrain, 0, t0, "lb1")
	if !mustPut(t, s, d) {
		t.Error("first put: not changed")
	}
	if mustPut(t, s, d) {
		t.Error("same decision again: changed")
	}
	var sup *SupersededError
	if ch, err := s.Put(ov("10.0.0.21:80", ActionDisable, 0, t0.Add(-time.Hour), "lb1")); ch || !errors.As(err, &sup) || sup.By.Action != ActionDrain {
		t.Errorf("older decision: changed %v, err %v; want superseded by the drain", ch, err)
	}
	// A zero At takes the store's clock.
	s2, _ := Open(Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	mustPut(t, s2, ov("[2001:db8::0001]:80", ActionDrain, 0, time.Time{}, "lb1"))
	got := s2.Snapshot()
	if len(got) != 1 || !got[0].At.Equal(t0.Add(time.Hour)) || got[0].Target != "[2001:db8::1]:80" {
		t.Errorf("got %+v, want At=%v and canonical target", got, t0.Add(time.Hour))
	}
}

func TestMergeSkipsInvalid(t *testing.T) {
	s := mem(t)
	changed, err := s.Merge([]Decision{
		ov("10.0.0.21:80", ActionDrain, 0, t0, "lb2"),
		ov("nonsense", ActionDrain, 0, t0, "lb2"),
		reg("10.0.0.22:80", ActionRegister, 1, t0, "lb2"), // no service
		reg("web/10.0.0.22:80", ActionRegister, 1, t0, "lb2"),
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "nonsense") || !strings.Contains(err.Error(), "SERVICE/ADDRESS:PORT") {
		t.Errorf("err = %v, want both invalid entries reported", err)
	}
	if len(changed) != 2 || len(s.Snapshot()) != 2 {
		t.Errorf("changed %+v, snapshot %+v: want the 2 valid ones", changed, s.Snapshot())
	}
	changed, err = s.Merge(s.Snapshot(), nil)
	if err != nil || len(changed) != 0 {
		t.Errorf("re-merge: changed %v err %v, want nothing", changed, err)
	}
}

func TestOverrideLookup(t *testing.T) {
	s := mem(t)
	ap := netip.MustParseAddrPort("10.0.0.21:80")
	mustPut(t, s, ov("10.0.0.21:80", ActionDisable, 0, t0, "lb1"))
	mustPut(t, s, ov("web/10.0.0.21:80", ActionWeight, 3, t0, "lb1"))
	if d, ok := s.Override("web", ap); !ok || d.Action != ActionWeight || d.Weight != 3 {
		t.Errorf("web: %+v %v, want the service-specific weight 3", d, ok)
	}
	if d, ok := s.Override("api", ap); !ok || d.Action != ActionDisable {
		t.Errorf("api: %+v %v, want the all-services disable", d, ok)
	}
	// Enabling the service-specific one falls back to the general one.
	mustPut(t, s, ov("web/10.0.0.21:80", ActionEnable, 0, t0.Add(time.Second), "lb1"))
	if d, ok := s.Override("web", ap); !ok || d.Action != ActionDisable {
		t.Errorf("web after enable: %+v %v, want disable", d, ok)
	}
	mustPut(t, s, ov("10.0.0.21:80", ActionEnable, 0, t0.Add(time.Second), "lb1"))
	if d, ok := s.Override("web", ap); ok {
		t.Errorf("after both enabled: %+v, want none", d)
	}
}

func TestRegistrations(t *testing.T) {
	s := mem(t)
	mustPut(t, s, reg("web/10.0.0.32:80", ActionRegister, 2, t0, "lb1"))
	mustPut(t, s, reg("web/10.0.0.31:80", ActionRegister, 1, t0, "lb1"))
	mustPut(t, s, reg("web/10.0.0.33:80", ActionDeregister, 0, t0, "lb1"))
	if _, err := s.Put(reg("web/x/10.0.0.34:80", ActionRegister, 1, t0, "lb1")); err == nil {
		t.Error("a service name with a slash was taken")
	}
	mustPut(t, s, reg("api/10.0.0.35:80", ActionRegister, 1, t0, "lb1"))
	var got []string
	for _, d := range s.Registrations("web") {
		got = append(got, d.Target)
	}
	want := []string{"web/10.0.0.31:80", "web/10.0.0.32:80"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	now := t0
	s, err := Open(Options{Path: path, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, ov("10.0.0.1:80", ActionEnable, 0, t0.Add(-48*time.Hour), "lb1"))
	mustPut(t, s, ov("10.0.0.2:80", ActionEnable, 0, t0.Add(-time.Hour), "lb1"))
	mustPut(t, s, ov("10.0.0.3:80", ActionDrain, 0, t0.Add(-48*time.Hour), "lb1"))
	mustPut(t, s, reg("web/10.0.0.4:80", ActionDeregister, 0, t0.Add(-48*time.Hour), "lb1"))
	n, err := s.Prune(24 * time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want 2", n, err)
	}
	s2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s2.Snapshot() {
		got = append(got, d.Target)
	}
	if want := []string{"10.0.0.2:80", "10.0.0.3:80"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after prune and reopen: %v, want %v", got, want)
	}
}

func TestPersistRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Snapshot()) != 0 {
		t.Fatal("missing file: not empty")
	}
	local := time.FixedZone("X", 3600)
	mustPut(t, s, ov("web/10.0.0.21:80", ActionWeight, 3, t0.In(local).Add(123*time.Nanosecond), "lb1"))
	mustPut(t, s, ov("[2001:db8::1]:443", ActionEnable, 0, t0, "lb2"))
	mustPut(t, s, reg("web/10.0.0.40:8080", ActionRegister, 0, t0, "lb2"))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Error("temporary file left behind")
	}
	s2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s2.Snapshot(), s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("reopened:\n%+v\nwant\n%+v", got, want)
	}
}

func TestPersistFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.json")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the file goes makes every write fail, even for
	// root: nothing can be renamed over it.
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ov("10.0.0.1:80", ActionDrain, 0, t0, "lb1")); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("put: err %v, want one naming %s", err, path)
	}
	if ch, err := s.Merge([]Decision{ov("10.0.0.2:80", ActionDrain, 0, t0, "lb2")}, nil); err == nil || ch != nil {
		t.Errorf("merge: changed %v err %v, want error", ch, err)
	}
	if got := s.Snapshot(); len(got) != 0 {
		t.Errorf("after failed writes: %+v, want empty", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestMigrateOldOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.json")
	old := `{"svc/10.0.0.21:80": {"mode":"drain"}, "10.0.0.22:80": {"mode":"weight","weight":3}, "[2001:db8::0:1]:80": {"mode":"disable"}}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	want := []Decision{
		ov("10.0.0.22:80", ActionWeight, 3, mtime, "local"),
		ov("[2001:db8::1]:80", ActionDisable, 0, mtime, "local"),
		ov("svc/10.0.0.21:80", ActionDrain, 0, mtime, "local"),
	}
	if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("migrated:\n%+v\nwant\n%+v", got, want)
	}
	// The first change rewrites the file in the new format.
	mustPut(t, s, ov("10.0.0.22:80", ActionEnable, 0, mtime.Add(time.Hour), "lb1"))
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"version":1`) {
		t.Errorf("not rewritten in the new format:\n%s", b)
	}
	s2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Snapshot(); len(got) != 3 || got[0].Action != ActionEnable {
		t.Errorf("reopened: %+v", got)
	}
}

// A file that cannot be used at all, or has a bad entry, still opens:
// what is good loads, the file as it was is set aside, and the report
// names the file and the problem.
func TestCorruptFile(t *testing.T) {
	for name, tc := range map[string]struct {
		content string
		want    string
		loaded  int
	}{
		"truncated":       {`{"version":1,"decisions":[`, "unexpected end", 0},
		"bad version":     {`{"version":2,"decisions":[]}`, "version 2", 0},
		"invalid entry":   {`{"version":1,"decisions":[{"kind":"override","target":"10.0.0.1:80","action":"explode","at":"2026-01-01T00:00:00Z","node":"a"}]}`, "explode", 0},
		"wrong type":      {`{"version":1,"decisions":[{"kind":"override","target":"10.0.0.1:80","action":"drain","weight":"x","at":"2026-01-01T00:00:00Z","node":"a"},{"kind":"override","target":"10.0.0.2:80","action":"drain","at":"2026-01-01T00:00:00Z","node":"a"}]}`, "entry 0", 1},
		"old bad mode":    {`{"10.0.0.1:80":{"mode":"explode"},"10.0.0.2:80":{"mode":"drain"}}`, "explode", 1},
		"old bad target":  {`{"10.0.0.1":{"mode":"drain"}}`, "10.0.0.1", 0},
		"old extra field": {`{"10.0.0.1:80":{"mode":"drain","colour":"red"}}`, "colour", 0},
		"not an object":   {`[1,2,3]`, "cannot unmarshal", 0},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Options{Path: path})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if n := len(s.Snapshot()); n != tc.loaded {
				t.Errorf("loaded %d decisions, want %d", n, tc.loaded)
			}
			rep := s.Report()
			if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0].Error(), path) || !strings.Contains(rep.Problems[0].Error(), tc.want) {
				t.Errorf("problems %v, want the first naming %s and %q", rep.Problems, path, tc.want)
			}
			if b, err := os.ReadFile(rep.SetAside); err != nil || string(b) != tc.content {
				t.Errorf("set aside at %q: %q %v, want the file as it was", rep.SetAside, b, err)
			}
			// Rewritten without the bad entries: the next open is clean.
			s2, err := Open(Options{Path: path})
			if err != nil || len(s2.Report().Problems) != 0 || len(s2.Snapshot()) != tc.loaded {
				t.Errorf("reopen: %v, problems %v", err, s2.Report().Problems)
			}
			if rep, err := Inspect(path); err != nil || len(rep.Problems) != 0 {
				t.Errorf("inspect after the rewrite: %+v %v", rep, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := ov("web/10.0.0.1:80", ActionWeight, 5, t0, "lb1")
	if err := good.Validate(); err != nil {
		t.Fatalf("good decision: %v", err)
	}
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"bad kind", Decision{Kind: "pet", Target: "10.0.0.1:80", Action: ActionDrain, At: t0, Node: "a"}, "kind"},
		{"override with register", ov("10.0.0.1:80", ActionRegister, 0, t0, "a"), "action"},
		{"registration with drain", reg("web/10.0.0.1:80", ActionDrain, 0, t0, "a"), "action"},
		{"registration without service", reg("10.0.0.1:80", ActionRegister, 0, t0, "a"), "SERVICE/ADDRESS:PORT"},
		{"no port", ov("10.0.0.1", ActionDrain, 0, t0, "a"), "ADDRESS:PORT"},
		{"empty service", ov("/10.0.0.1:80", ActionDrain, 0, t0, "a"), "empty service"},
		{"hostname", ov("web/example.com:80", ActionDrain, 0, t0, "a"), "ADDRESS:PORT"},
		{"weight too big", ov("10.0.0.1:80", ActionWeight, 65536, t0, "a"), "weight"},
		{"negative weight", reg("web/10.0.0.1:80", ActionRegister, -1, t0, "a"), "weight"},
		{"weight on drain", ov("10.0.0.1:80", ActionDrain, 2, t0, "a"), "no weight"},
		{"zero time", ov("10.0.0.1:80", ActionDrain, 0, time.Time{}, "a"), "time"},
		{"no node", ov("10.0.0.1:80", ActionDrain, 0, t0, ""), "node"},
		{"long target", ov(strings.Repeat("s", 400)+"/10.0.0.1:80", ActionDrain, 0, t0, "a"), "longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// A target is judged by its canonical form. "[1::3:4:5:6:7:8]:80" is 19
// bytes, but RFC 5952 spells a single zero group out, so it is stored as
// "[1:0:3:4:5:6:7:8]:80": a 300-byte target grew past the limit once it
// was stored, and the next start refused the whole file.
func TestCanonicalTargetLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	addr := "[1::3:4:5:6:7:8]:80"
	target := strings.Repeat("s", 300-len(addr)-1) + "/" + addr
	if len(target) != 300 {
		t.Fatalf("target is %d bytes", len(target))
	}
	// Refused or stored: either way the file must load again.
	_, _ = s.Put(reg(target, ActionRegister, 1, t0, "lb1"))
	if _, err := Open(Options{Path: path}); err != nil {
		t.Fatalf("reopen after storing a %d-byte target: %v", len(target), err)
	}
}

// One bad entry does not stop the store from loading: the good ones load,
// the bad one is skipped, and the file as it was is set aside for the
// operator.
func TestLoadSkipsBadEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	content := `{"version":1,"decisions":[
 {"kind":"override","target":"10.0.0.1:80","action":"explode","at":"2026-01-01T00:00:00Z","node":"a"},
 {"kind":"override","target":"10.0.0.2:80","action":"drain","at":"2026-01-01T00:00:00Z","node":"a"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if got := s.Snapshot(); len(got) != 1 || got[0].Target != "10.0.0.2:80" {
		t.Errorf("loaded %+v, want the good entry only", got)
	}
	aside, _ := filepath.Glob(path + ".bad-*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %v, want one copy of the file", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != content {
		t.Errorf("the copy set aside is %q, want the file as it was", b)
	}
}

// The file is written through a temporary file of its own unique name:
// a stray "decisions.json.tmp" (here a directory, which no write can
// replace) left by a crash or another program must not block writes.
func TestStrayTempNameDoesNotBlockWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ov("10.0.0.1:80", ActionDrain, 0, t0, "lb1")); err != nil {
		t.Fatalf("put with a stray %s.tmp: %v", path, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 2 {
		t.Errorf("directory holds %d entries, want the file and the stray directory only", len(ents))
	}
}

// The store keeps at most Limits.Entries decisions: at the cap a new one
// takes the place of the oldest withdrawn one, and with none withdrawn it
// is refused. A pool's cap counts its live registrations only.
func TestLimits(t *testing.T) {
	s := mem(t)
	s.SetLimits(Limits{Entries: 3, Registrations: map[string]int{"web": 1}})
	mustPut(t, s, ov("10.0.0.1:80", ActionEnable, 0, t0.Add(-2*time.Hour), "lb1"))
	mustPut(t, s, ov("10.0.0.2:80", ActionEnable, 0, t0.Add(-time.Hour), "lb1"))
	mustPut(t, s, reg("web/10.0.0.3:80", ActionRegister, 1, t0, "lb1"))
	if _, err := s.Put(reg("web/10.0.0.4:80", ActionRegister, 1, t0, "lb1")); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_servers") {
		t.Errorf("second registration in a pool of one: %v, want ErrLimit naming max_servers", err)
	}
	// A re-registration of the same server is no new one.
	mustPut(t, s, reg("web/10.0.0.3:80", ActionRegister, 2, t0.Add(time.Second), "lb1"))
	// Full: the oldest tombstone makes room.
	mustPut(t, s, ov("10.0.0.5:80", ActionDrain, 0, t0, "lb1"))
	if got := targets(s.Snapshot()); strings.Join(got, " ") != "10.0.0.2:80 10.0.0.5:80 web/10.0.0.3:80" {
		t.Errorf("after eviction: %v", got)
	}
	mustPut(t, s, ov("10.0.0.6:80", ActionDrain, 0, t0, "lb1"))
	if _, err := s.Put(ov("10.0.0.7:80", ActionDrain, 0, t0, "lb1")); !errors.Is(err, ErrLimit) {
		t.Errorf("a full store of live decisions took another: %v", err)
	}
	// Deregistering frees the pool's place (and leaves a tombstone), and
	// the peer is held to the same bounds, with a short summary of what it
	// was refused: the first of its batch takes the tombstone's place.
	mustPut(t, s, reg("web/10.0.0.3:80", ActionDeregister, 0, t0.Add(time.Minute), "lb1"))
	mustPut(t, s, reg("web/10.0.0.8:80", ActionRegister, 1, t0.Add(time.Minute), "lb1"))
	mustPut(t, s, reg("web/10.0.0.8:80", ActionDeregister, 0, t0.Add(2*time.Minute), "lb1"))
	var batch []Decision
	for i := range 50 {
		batch = append(batch, ov(fmt.Sprintf("10.0.1.%d:80", i), ActionDrain, 0, t0, "lb2"))
	}
	ch, err := s.Merge(batch, nil)
	if len(ch) != 1 || !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "49 decisions not taken") || len(err.Error()) > 1000 {
		t.Errorf("merge into a full store: changed %v, err %v", ch, err)
	}
	if s.Len() != 3 {
		t.Errorf("%d entries, want 3", s.Len())
	}
}

func targets(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Target)
	}
	return out
}

// The largest decision there can be encodes within MaxEncodedSize, and
// MaxEntriesLimit of them within the peer sync's 4 MiB.
func TestMaxEncodedSize(t *testing.T) {
	d := Decision{Kind: KindRegistration, Action: ActionRegister, Weight: MaxWeight,
		Target: strings.Repeat("s", 64) + "/[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
		At:     time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Node: strings.Repeat("n", 255)}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []Action{ActionRegister, ActionDeregister} {
		d.Action = a
		if a == ActionDeregister {
			d.Weight = 0
		}
		b, _ := json.Marshal(d)
		if len(b) > MaxEncodedSize {
			t.Errorf("%s: %d bytes, over MaxEncodedSize %d", a, len(b), MaxEncodedSize)
		}
	}
	if MaxEntriesLimit*(MaxEncodedSize+1)+4096 > 4<<20 {
		t.Errorf("MaxEntriesLimit %d of %d bytes do not fit 4 MiB", MaxEntriesLimit, MaxEncodedSize)
	}
}

// Decisions kept beside the IPVS state file by older versions move to the
// new file once, and the old file goes.
func TestMoveFromLegacy(t *testing.T) {
	dir := t.TempDir()
	legacy, path := filepath.Join(dir, "run", "overrides.json"), filepath.Join(dir, "lib", "decisions.json")
	os.MkdirAll(filepath.Dir(legacy), 0o700)
	if err := os.WriteFile(legacy, []byte(`{"version":1,"decisions":[{"kind":"override","target":"10.0.0.1:80","action":"drain","at":"2026-01-01T00:00:00Z","node":"a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: path, Legacy: legacy})
	if err != nil {
		t.Fatal(err)
	}
	if rep := s.Report(); rep.MovedFrom != legacy || len(rep.Problems) != 0 || s.Len() != 1 {
		t.Fatalf("report %+v, %d decisions", rep, s.Len())
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("legacy file still there: %v", err)
	}
	// Once moved, the new file is the one read, whatever is at the old place.
	os.WriteFile(legacy, []byte(`{"version":1,"decisions":[]}`), 0o600)
	s2, err := Open(Options{Path: path, Legacy: legacy})
	if err != nil || s2.Len() != 1 || s2.Report().MovedFrom != "" {
		t.Errorf("reopen: %v, %d decisions, report %+v", err, s2.Len(), s2.Report())
	}
}

// A decision dated beyond the clock plus MaxClockSkew is refused: one
// dated in the year 9999 was merged from the peer, and every later local
// decision for that server lost to it, for good.
func TestFutureDecisionRefused(t *testing.T) {
	s := mem(t)
	const rs = "web/10.0.0.21:80"
	future := ov(rs, ActionDisable, 0, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "lb2")
	if ch, err := s.Merge([]Decision{future}, nil); len(ch) != 0 || err == nil || !strings.Contains(err.Error(), "9999") {
		t.Errorf("merge of a decision from 9999: changed %v, err %v; want it refused", ch, err)
	}
	if _, err := s.Put(ov(rs, ActionDrain, 0, t0.Add(6*time.Minute), "lb1")); err == nil {
		t.Error("a local decision 6 minutes ahead of the clock was taken")
	}
	// Within the skew is fine: the pair's clocks are never exactly equal.
	if ch, err := s.Merge([]Decision{ov(rs, ActionDisable, 0, t0.Add(4*time.Minute), "lb2")}, nil); len(ch) != 1 || err != nil {
		t.Errorf("a decision 4 minutes ahead: changed %v, err %v", ch, err)
	}
	if !mustPut(t, s, ov(rs, ActionEnable, 0, t0.Add(5*time.Minute), "lb1")) {
		t.Error("the local enable did not win")
	}
}

// A file holding a decision dated beyond the clock (the year-9999 one a
// peer once pushed) opens without it; the file as it was is kept.
func TestLoadSkipsFutureDecisions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.json")
	content := `{"version":1,"decisions":[
{"kind":"override","target":"10.0.0.1:80","action":"disable","at":"9999-01-01T00:00:00Z","node":"lb2"},
{"kind":"override","target":"10.0.0.2:80","action":"drain","at":"2026-11-23T09:00:00Z","node":"lb1"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: path, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if got := targets(s.Snapshot()); strings.Join(got, " ") != "10.0.0.2:80" {
		t.Errorf("loaded %v, want the 2026 decision only", got)
	}
	if rep := s.Report(); len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Error(), "9999") || rep.SetAside == "" {
		t.Errorf("report %+v", rep)
	}
}
