package debpkg

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestUpstreamVersion(t *testing.T) {
	commit := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-rc1-2-gabcdef0", "1.2.3~rc1+git2.abcdef0"},
		{"v1.2.3-4-gabcdef0", "1.2.3+git4.abcdef0"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3+git4.abcdef0.dirty"},
		{"v2", "2"},
		// Untagged: the commit's UTC time orders snapshots.
		{"24d5269", "0.0~git20260102.140405.24d5269"},
		{"24d5269-dirty", "0.0~git20260102.140405.24d5269.dirty"},
	} {
		got, err := UpstreamVersion(tc.describe, commit)
		if err != nil || got != tc.want {
			t.Errorf("UpstreamVersion(%q) = %q, %v; want %q", tc.describe, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "devel", "(devel)", "vX", "release-1", "v1.2.3_beta"} {
		if got, err := UpstreamVersion(bad, commit); err == nil {
			t.Errorf("UpstreamVersion(%q) = %q; want an error", bad, got)
		}
	}
	if _, err := UpstreamVersion("24d5269", time.Time{}); err == nil || !strings.Contains(err.Error(), "commit time") {
		t.Errorf("untagged without a commit time: err = %v; want one naming the commit time", err)
	}
}

// The versions must sort as the commits do, by dpkg's own rules.
func TestUpstreamVersionOrder(t *testing.T) {
	early := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	later := early.Add(time.Minute)
	ascending := []struct {
		describe string
		at       time.Time
	}{
		{"aaaaaaa", early},
		{"0000000", later},
		{"v1.2.3-rc1", early},
		{"v1.2.3-rc1-2-gabcdef0", early},
		{"v1.2.3", early},
		{"v1.2.3-dirty", early},
		{"v1.2.3-4-gabcdef0", early},
		{"v1.2.3-10-g0000000", early},
		{"v1.2.4", early},
	}
	var prev string
	for i, a := range ascending {
		v, err := UpstreamVersion(a.describe, a.at)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			if err := exec.Command("dpkg", "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: %v (want %s before %s)", prev, v, err, ascending[i-1].describe, a.describe)
			}
		}
		prev = v
	}
}

func TestArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el"} {
		if got, err := Arch(goarch); err != nil || got != want {
			t.Errorf("Arch(%q) = %q, %v; want %q", goarch, got, err, want)
		}
	}
	if _, err := Arch("wasm"); err == nil {
		t.Error("Arch(wasm): want an error")
	}
}
