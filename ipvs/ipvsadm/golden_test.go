package ipvsadm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The golden cases under testdata/golden were captured in a User-Mode
// Linux guest (kernel 6.1, Debian's ipvsadm 1.31): each directory holds the
// raw state director read (snapshot.json, or conn_table.txt for the
// connection listings) and, per NN.args, what ipvsadm printed with those
// arguments (NN.out, NN.err) and its exit status (NN.rc).
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	forms := 0
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap := loadCaseSnapshot(t, dir)
			argFiles, err := filepath.Glob(filepath.Join(dir, "*.args"))
			if err != nil {
				t.Fatal(err)
			}
			for _, af := range argFiles {
				base := strings.TrimSuffix(af, ".args")
				args := strings.Fields(readFile(t, af))
				want := readFile(t, base+".out")
				wantErr := readFile(t, base+".err")
				wantRC, err := strconv.Atoi(strings.TrimSpace(readFile(t, base+".rc")))
				if err != nil {
					t.Fatalf("%s.rc: %v", base, err)
				}
				var stdout, stderr bytes.Buffer
				rc := run(args, SnapshotSource{snap}, &stdout, &stderr)
				forms++
				if got := stdout.String(); got != want {
					t.Errorf("ipvsadm %s: output differs\n--- got\n%s--- want\n%s", strings.Join(args, " "), got, want)
				}
				if (rc == 0) != (wantRC == 0) {
					t.Errorf("ipvsadm %s: exit status %d, ipvsadm's %d (stderr %q)", strings.Join(args, " "), rc, wantRC, stderr.String())
				}
				// Where ipvsadm explains a failure, say the same.
				if wantErr != "" && !strings.Contains(stderr.String(), strings.TrimSpace(wantErr)) {
					t.Errorf("ipvsadm %s: stderr %q, want it to contain %q", strings.Join(args, " "), stderr.String(), wantErr)
				}
			}
		})
	}
	if forms < 20 {
		t.Errorf("only %d output forms compared", forms)
	}
}

func loadCaseSnapshot(t *testing.T, dir string) *Snapshot {
	t.Helper()
	var snap Snapshot
	if b, err := os.ReadFile(filepath.Join(dir, "snapshot.json")); err == nil {
		if err := json.Unmarshal(b, &snap); err != nil {
			t.Fatalf("%s/snapshot.json: %v", dir, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "conn_table.txt")); err == nil {
		snap.ConnTable = string(b)
	}
	return &snap
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
