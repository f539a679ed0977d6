package decisions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

// fileVersion is the version of the file format written by this package.
const fileVersion = 1

// file is the on-disk format.
type file struct {
	Version   int        `json:"version"`
	Decisions []Decision `json:"decisions"`
}

// Decode parses the versioned file format ({"version":1,"decisions":[...]})
// and validates every decision. Duplicates of one (Kind, Target) are
// resolved by last-writer-wins. The result is sorted like Snapshot.
func Decode(b []byte) ([]Decision, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode decisions: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("decode decisions: version %d, want %d", f.Version, fileVersion)
	}
	m := make(map[key]Decision, len(f.Decisions))
	for i, d := range f.Decisions {
		n, err := d.normalize()
		if err != nil {
			return nil, fmt.Errorf("decode decisions: entry %d: %w", i, err)
		}
		if old, ok := m[keyOf(n)]; !ok || newer(n, old) {
			m[keyOf(n)] = n
		}
	}
	return sorted(m), nil
}

// legacyOverride is one entry of the old overrides.json map.
type legacyOverride struct {
	Mode   string `json:"mode"`
	Weight int    `json:"weight,omitempty"`
}

// decodeAny reads either format. The old overrides.json was a bare map of
// target to override and carries no times, so its entries are dated at
// (the file's mtime) and attributed to node "local".
func decodeAny(b []byte, at time.Time) ([]Decision, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("decode decisions: %w", err)
	}
	if _, ok := probe["version"]; ok {
		return Decode(b)
	}
	var old map[string]legacyOverride
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&old); err != nil {
		return nil, fmt.Errorf("decode old overrides: %w", err)
	}
	m := make(map[key]Decision, len(old))
	for target, o := range old {
		d := Decision{Kind: KindOverride, Target: target, Action: Action(o.Mode), Weight: o.Weight, At: at, Node: "local"}
		if d.Action == ActionEnable {
			// The old format never stored enable; refuse rather than guess.
			return nil, fmt.Errorf("decode old overrides: %q: unknown mode %q", target, o.Mode)
		}
		n, err := d.normalize()
		if err != nil {
			return nil, fmt.Errorf("decode old overrides: %w", err)
		}
		if prev, ok := m[keyOf(n)]; !ok || newer(n, prev) {
			m[keyOf(n)] = n
		}
	}
	return sorted(m), nil
}

// readFile loads the decisions at path; a missing file is empty.
func readFile(path string) ([]Decision, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	ds, err := decodeAny(b, fi.ModTime())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, nil
}

// writeFile replaces path atomically: a crash leaves the old or the new
// file, never a torn one.
func writeFile(path string, ds []Decision) error {
	if ds == nil {
		ds = []Decision{}
	}
	b, err := json.MarshalIndent(file{Version: fileVersion, Decisions: ds}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode decisions: %w", err)
	}
	b = append(b, '\n')
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write decisions: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write decisions %s: %w", path, err)
	}
	return nil
}

// sorted lists decisions by kind, then target.
func sorted(m map[key]Decision) []Decision {
	out := make([]Decision, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Target < out[j].Target
	})
	return out
}
