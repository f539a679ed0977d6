package decisions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/director-lb/director/internal/atomicfile"
)

// fileVersion is the version of the file format written by this package.
const fileVersion = 1

// file is the on-disk format.
type file struct {
	Version   int        `json:"version"`
	Decisions []Decision `json:"decisions"`
}

// Decode parses the versioned file format ({"version":1,"decisions":[...]})
// and validates every decision; any bad entry is an error. Duplicates of
// one (Kind, Target) are resolved by last-writer-wins. The result is
// sorted like Snapshot.
func Decode(b []byte) ([]Decision, error) {
	ds, problems, err := decodeVersioned(b)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("decode decisions: %w", problems[0])
	}
	return ds, nil
}

// decodeVersioned reads the versioned format entry by entry: an entry that
// does not decode or validate is a problem, and the others still load. err
// is for a file that is not that format at all.
func decodeVersioned(b []byte) (ds []Decision, problems []error, err error) {
	var f struct {
		Version   int               `json:"version"`
		Decisions []json.RawMessage `json:"decisions"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("decode decisions: %w", err)
	}
	if f.Version != fileVersion {
		return nil, nil, fmt.Errorf("decode decisions: version %d, want %d", f.Version, fileVersion)
	}
	m := make(map[key]Decision, len(f.Decisions))
	for i, raw := range f.Decisions {
		var d Decision
		if err := json.Unmarshal(raw, &d); err != nil {
			problems = append(problems, fmt.Errorf("entry %d: %w", i, err))
			continue
		}
		n, err := d.normalize()
		if err != nil {
			problems = append(problems, fmt.Errorf("entry %d: %w", i, err))
			continue
		}
		if old, ok := m[keyOf(n)]; !ok || newer(n, old) {
			m[keyOf(n)] = n
		}
	}
	return sorted(m), problems, nil
}

// legacyOverride is one entry of the old overrides.json map.
type legacyOverride struct {
	Mode   string `json:"mode"`
	Weight int    `json:"weight,omitempty"`
}

// decodeAny reads either format strictly: any bad entry is an error.
func decodeAny(b []byte, at time.Time) ([]Decision, error) {
	ds, problems, err := decodeLenient(b, at)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems[0]
	}
	return ds, nil
}

// decodeLenient reads either format, entry by entry. The old
// overrides.json was a bare map of target to override and carries no
// times, so its entries are dated at (the file's mtime) and attributed to
// node "local".
func decodeLenient(b []byte, at time.Time) (ds []Decision, problems []error, err error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, nil, fmt.Errorf("decode decisions: %w", err)
	}
	if _, ok := probe["version"]; ok {
		return decodeVersioned(b)
	}
	m := make(map[key]Decision, len(probe))
	for target, raw := range probe {
		var o legacyOverride
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			problems = append(problems, fmt.Errorf("old override %q: %w", target, err))
			continue
		}
		d := Decision{Kind: KindOverride, Target: target, Action: Action(o.Mode), Weight: o.Weight, At: at, Node: "local"}
		if d.Action == ActionEnable {
			// The old format never stored enable; refuse rather than guess.
			problems = append(problems, fmt.Errorf("old override %q: unknown mode %q", target, o.Mode))
			continue
		}
		n, err := d.normalize()
		if err != nil {
			problems = append(problems, fmt.Errorf("old override: %w", err))
			continue
		}
		if prev, ok := m[keyOf(n)]; !ok || newer(n, prev) {
			m[keyOf(n)] = n
		}
	}
	// Map order is random: report in a stable order.
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return sorted(m), problems, nil
}

// LoadReport is what loading a decisions file found wrong. The daemon
// starts anyway: bad entries are skipped (the peer sends its copy of them
// again), and the file as it was is kept for the operator.
type LoadReport struct {
	// Problems are the entries not loaded, or the one reason the whole
	// file was not (it is not JSON, or of an unknown version).
	Problems []error
	// SetAside is where the file as it was has been copied, if it had
	// problems ("" if it had none, or the copy failed: see Problems).
	SetAside string
	// MovedFrom is the legacy file the decisions were moved from, if
	// they were (Options.Legacy).
	MovedFrom string
}

// readFile loads the decisions at path; a missing file is empty. A file
// with problems still gives its good entries; err is only for a file that
// cannot be read.
func readFile(path string) ([]Decision, LoadReport, []byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, LoadReport{}, nil, nil
	}
	if err != nil {
		return nil, LoadReport{}, nil, fmt.Errorf("read decisions: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, LoadReport{}, nil, fmt.Errorf("read decisions: %w", err)
	}
	ds, problems, err := decodeLenient(b, fi.ModTime())
	if err != nil {
		problems = []error{err}
	}
	return ds, LoadReport{Problems: problems}, b, nil
}

// Inspect reads the decisions file at path as Open would, without
// changing anything, and reports its problems (director validate).
func Inspect(path string) (LoadReport, error) {
	_, rep, _, err := readFile(path)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// setAside copies the file as it was beside itself, named by the time, so
// that repeated problems never overwrite an earlier copy.
func setAside(path string, b []byte, now time.Time) (string, error) {
	aside := path + ".bad-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := atomicfile.Write(aside, b, 0o600); err != nil {
		return "", fmt.Errorf("set %s aside: %w", path, err)
	}
	return aside, nil
}

// writeFile replaces path atomically (atomicfile): a crash leaves the old
// or the new file, never a torn one. Compact JSON, one entry a line, keeps
// the largest store well under its size bound and still readable.
func writeFile(path string, ds []Decision) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"version\":%d,\"decisions\":[", fileVersion)
	for i, d := range ds {
		e, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode decisions: %w", err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n")
		b.Write(e)
	}
	b.WriteString("\n]}\n")
	if err := atomicfile.Write(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write decisions: %w", err)
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
