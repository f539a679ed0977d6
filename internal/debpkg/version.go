package debpkg

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var (
	// An untagged checkout: `git describe --always` prints the abbreviated
	// commit. Checked before the tag form, since a hash may start with a digit.
	describeHash = regexp.MustCompile(`^([0-9a-f]{7,40})(-dirty)?$`)
	// A tag, then the commits since it and the commit.
	describeTag = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.+~-]*?)(?:-([0-9]+)-g([0-9a-f]{4,40}))?(-dirty)?$`)
	// What Debian allows in an upstream version without epoch or hyphen.
	upstreamChars = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// UpstreamVersion turns the output of `git describe --tags --always --dirty`
// (the Makefile's VERSION, which the binary also reports) into a Debian
// upstream version that sorts the way the commits do:
//
//	v1.2.3                 1.2.3
//	v1.2.3-rc1             1.2.3~rc1 (before 1.2.3)
//	v1.2.3-4-gabcdef0      1.2.3+git4.abcdef0
//	abcdef0 (no tag yet)   0.0~git20260102.150405.abcdef0 (the commit's UTC time)
//
// and appends .dirty (or +dirty) for a tree with uncommitted changes.
// commit is the commit's time; only an untagged describe needs it.
func UpstreamVersion(describe string, commit time.Time) (string, error) {
	if m := describeHash.FindStringSubmatch(describe); m != nil {
		if commit.IsZero() {
			return "", fmt.Errorf("version %q has no tag: the commit time is needed for a snapshot version", describe)
		}
		v := "0.0~git" + commit.UTC().Format("20060102.150405") + "." + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	m := describeTag.FindStringSubmatch(describe)
	if m == nil {
		return "", fmt.Errorf("version %q is not `git describe --tags --always --dirty` output with a tag that starts with a digit (or v and a digit); build from a git checkout", describe)
	}
	// A hyphen in the tag marks a pre-release, which Debian sorts first with ~.
	v := strings.ReplaceAll(m[1], "-", "~")
	if !upstreamChars.MatchString(v) {
		return "", fmt.Errorf("version %q: tag %q gives %q, which is not a Debian upstream version", describe, m[1], v)
	}
	suffix := "+"
	if m[2] != "" {
		v += "+git" + m[2] + "." + m[3]
		suffix = "."
	}
	if m[4] != "" {
		v += suffix + "dirty"
	}
	return v, nil
}

// Arch is the Debian architecture of a GOARCH, for the architectures Go
// and Debian share.
func Arch(goarch string) (string, error) {
	a, ok := map[string]string{
		"amd64":    "amd64",
		"arm64":    "arm64",
		"386":      "i386",
		"arm":      "armhf",
		"ppc64le":  "ppc64el",
		"s390x":    "s390x",
		"riscv64":  "riscv64",
		"mips64le": "mips64el",
		"loong64":  "loong64",
	}[goarch]
	if !ok {
		return "", fmt.Errorf("GOARCH %q has no Debian architecture here", goarch)
	}
	return a, nil
}
