// Package debpkg builds director's Debian package, director_VERSION_ARCH.deb,
// with nfpm as a library (so `make deb` needs no packaging tool): the binary,
// the systemd unit, the example configuration as a conffile, the manual
// page, bash completion, the documentation Debian asks for, and maintainer
// scripts that never restart a running daemon (a restart of the master is a
// failover; the operator chooses when).
//
// The sources are files in the repository (packaging/, systemd/, configs/);
// what is generated here is only what depends on the build: the version,
// the changelog, the copyright file of the static binary, and the compressed
// copies.
package debpkg

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Name is the package's name.
const Name = "director"

// Maintainer is the package's Maintainer field and changelog signature.
const Maintainer = "director developers <dev@director.invalid>"

// Conffile is the example configuration's installed path.
const Conffile = "/etc/director/director.yaml"

const (
	// The unit in systemd/ names the binary where `make install` puts it.
	installBinary = "/usr/local/sbin/director"
	packageBinary = "/usr/sbin/director"
	docDir        = "/usr/share/doc/" + Name
)

// Options says what to package.
type Options struct {
	// Root is the repository checkout.
	Root string
	// Binary is the director binary to install as /usr/sbin/director; its
	// build information gives the architecture and the modules whose
	// licenses the copyright file carries.
	Binary string
	// Describe is the `git describe --tags --always --dirty` the binary was
	// built from (the Makefile's VERSION).
	Describe string
	// CommitTime is the commit's time: the snapshot version of an untagged
	// build, the changelog's date and every file's mtime, so the same
	// commit gives the same package.
	CommitTime time.Time
	// GoRoot and ModCache are where the standard library's and the modules'
	// license files are read (go env GOROOT, go env GOMODCACHE).
	GoRoot, ModCache string
	// OutDir is where the package is written.
	OutDir string
}

// Build writes the package into o.OutDir and returns its path.
func Build(o Options) (string, error) {
	upstream, err := UpstreamVersion(o.Describe, o.CommitTime)
	if err != nil {
		return "", err
	}
	bi, err := buildinfo.ReadFile(o.Binary)
	if err != nil {
		return "", fmt.Errorf("deb: %s: %w", o.Binary, err)
	}
	arch, err := Arch(setting(bi, "GOARCH"))
	if err != nil {
		return "", fmt.Errorf("deb: %s: %w", o.Binary, err)
	}
	stage, err := os.MkdirTemp("", "director-deb-")
	if err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	defer os.RemoveAll(stage)

	info := &nfpm.Info{
		Name:          Name,
		Arch:          arch,
		Platform:      "linux",
		Version:       upstream,
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    Maintainer,
		Homepage:      "https://github.com/director-lb/director",
		Description:   description,
		MTime:         o.CommitTime,
		Overridables: nfpm.Overridables{
			// director status prints what ipvsadm -Ln does, so ipvsadm is
			// only for those who edit the table by hand.
			Suggests: []string{"ipvsadm"},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(o.Root, "packaging/deb/postinst"),
				PreRemove:   filepath.Join(o.Root, "packaging/deb/prerm"),
				PostRemove:  filepath.Join(o.Root, "packaging/deb/postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	version := upstream + "-" + info.Release

	contents, err := contents(o, stage, version, arch)
	if err != nil {
		return "", err
	}
	info.Contents = contents

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	out := filepath.Join(o.OutDir, fmt.Sprintf("%s_%s_%s.deb", Name, version, arch))
	f, err := os.Create(out)
	if err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := deb.Default.Package(nfpm.WithDefaults(info), f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("deb: %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("deb: %s: %w", out, err)
	}
	return out, nil
}

const description = `VRRP, VIP failover, IPVS and health checks for Linux load balancers
director replaces LVS and keepalived on a pair of Linux load balancers. One
program elects a master with VRRP (v3 and v2, multicast or unicast,
interoperable with keepalived), moves the virtual IPs to it (netlink and
gratuitous ARP, or the EC2 API), programs kernel IPVS for direct server
return, and lets health checks drive the real servers' weights.

The package does not start the service: edit /etc/director/director.yaml,
then enable it. An upgrade never restarts a running daemon.`

// contents lists every file of the package; the generated ones are written
// into stage.
func contents(o Options, stage, version, arch string) (files.Contents, error) {
	src := func(rel string) string { return filepath.Join(o.Root, rel) }
	gen := func(name string, data []byte) (string, error) {
		p := filepath.Join(stage, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", fmt.Errorf("deb: %w", err)
		}
		return p, nil
	}
	gz := func(name, from string) (string, error) {
		data, err := os.ReadFile(from)
		if err != nil {
			return "", fmt.Errorf("deb: %w", err)
		}
		return gen(name, gzipped(data))
	}

	unit, err := os.ReadFile(src("systemd/director.service"))
	if err != nil {
		return nil, fmt.Errorf("deb: %w", err)
	}
	if !bytes.Contains(unit, []byte(installBinary)) {
		return nil, fmt.Errorf("deb: systemd/director.service no longer names %s; update the package's path rewrite", installBinary)
	}
	unitPath, err := gen("director.service", bytes.ReplaceAll(unit, []byte(installBinary), []byte(packageBinary)))
	if err != nil {
		return nil, err
	}
	manPath, err := gz("director.8.gz", src("packaging/director.8"))
	if err != nil {
		return nil, err
	}
	changelogPath, err := gen("changelog.Debian.gz", gzipped(changelog(version, o.Describe, o.CommitTime)))
	if err != nil {
		return nil, err
	}
	header, err := os.ReadFile(src("packaging/deb/copyright"))
	if err != nil {
		return nil, fmt.Errorf("deb: %w", err)
	}
	cr, err := Copyright(header, o.Binary, o.GoRoot, o.ModCache)
	if err != nil {
		return nil, fmt.Errorf("deb: %w", err)
	}
	copyrightPath, err := gen("copyright", cr)
	if err != nil {
		return nil, err
	}

	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}}
	}
	cs := files.Contents{
		file(o.Binary, packageBinary, 0o755),
		file(unitPath, "/usr/lib/systemd/system/director.service", 0o644),
		// 0640: a configuration may hold a VRRP password (auth_pass).
		{Source: src("configs/installed-example.yaml"), Destination: Conffile, Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Mode: 0o640, Owner: "root", Group: "root"}},
		file(manPath, "/usr/share/man/man8/director.8.gz", 0o644),
		file(src("packaging/bash-completion"), "/usr/share/bash-completion/completions/director", 0o644),
		file(copyrightPath, docDir+"/copyright", 0o644),
		file(changelogPath, docDir+"/changelog.Debian.gz", 0o644),
		file(src("packaging/deb/README.Debian"), docDir+"/README.Debian", 0o644),
		file(src("packaging/deb/lintian-overrides"), "/usr/share/lintian/overrides/director", 0o644),
	}
	// The other examples, for the operator to start from.
	examples, err := filepath.Glob(src("configs/*"))
	if err != nil {
		return nil, fmt.Errorf("deb: %w", err)
	}
	sort.Strings(examples)
	for _, e := range examples {
		if filepath.Base(e) == "installed-example.yaml" {
			continue
		}
		cs = append(cs, file(e, docDir+"/examples/"+filepath.Base(e), 0o644))
	}
	return cs, nil
}

// changelog is a one-entry Debian changelog for this build.
func changelog(version, describe string, t time.Time) []byte {
	return []byte(fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n",
		Name, version, describe, Maintainer, t.UTC().Format(time.RFC1123Z)))
}

// gzipped compresses as Debian wants man pages and changelogs: best
// compression, no name, no timestamp, so the output depends on the input only.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // the level is valid
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func setting(bi *buildinfo.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// GoEnv returns `go env GOROOT` and `go env GOMODCACHE` from the go command
// goCmd.
func GoEnv(goCmd string) (goroot, modcache string, err error) {
	out, err := execOutput(goCmd, "env", "GOROOT", "GOMODCACHE")
	if err != nil {
		return "", "", fmt.Errorf("deb: %s env: %w", goCmd, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return "", "", fmt.Errorf("deb: %s env printed %q", goCmd, out)
	}
	return lines[0], lines[1], nil
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return "", fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return string(out), err
}
