package ipvs

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestSysctlsSorted(t *testing.T) {
	if !sort.StringsAreSorted(Sysctls) {
		t.Fatal("Sysctls must stay sorted: KnownSysctl searches it")
	}
	for n := range DefaultSysctls() {
		if !KnownSysctl(n) {
			t.Errorf("default %s is not in Sysctls", n)
		}
	}
}

func TestSetSysctls(t *testing.T) {
	dir := t.TempDir()
	for n, v := range map[string]string{"conn_reuse_mode": "1\n", "expire_nodest_conn": "1\n", "expire_quiescent_template": "0\n", "sloppy_tcp": "junk\n"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := DefaultSysctls()
	want["sloppy_tcp"] = 1 // unreadable value: reported, others still written
	want["secure_tcp"] = 2 // missing file: reported
	got, err := SetSysctls(dir, want)
	wantChanges := []SysctlChange{{"conn_reuse_mode", 1, 3}, {"expire_quiescent_template", 0, 1}}
	if !reflect.DeepEqual(got, wantChanges) {
		t.Errorf("changes = %+v, want %+v", got, wantChanges)
	}
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.vs.sloppy_tcp") || !strings.Contains(err.Error(), "net.ipv4.vs.secure_tcp") {
		t.Errorf("err = %v, want both bad settings named", err)
	}
	for n, v := range map[string]string{"conn_reuse_mode": "3", "expire_nodest_conn": "1\n", "expire_quiescent_template": "1"} {
		if b, _ := os.ReadFile(filepath.Join(dir, n)); string(b) != v {
			t.Errorf("%s = %q, want %q", n, b, v)
		}
	}
	// A second pass finds nothing to do.
	delete(want, "sloppy_tcp")
	delete(want, "secure_tcp")
	if got, err := SetSysctls(dir, want); err != nil || len(got) != 0 {
		t.Errorf("second pass: %+v, %v; want nothing", got, err)
	}
	if _, err := SetSysctls(dir, map[string]int{"bogus": 1}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown setting: err = %v", err)
	}
}
