package debpkg

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

const root = "../.."

// dpkgDeb runs dpkg-deb, which every Debian system has: the test reads the
// package the way dpkg will.
func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatal("dpkg-deb is not on the PATH: install dpkg (every Debian system has it); this test reads the package with it")
	}
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var fake struct {
	once sync.Once
	path string
	err  error
}

// fakeDirector builds testdata/fakedirector, once per test run, as the
// Makefile builds director: static, -trimpath. It is small, so the package
// builds fast, and its build information lists real modules.
func fakeDirector(t *testing.T, goCmd string) string {
	t.Helper()
	fake.once.Do(func() {
		dir, err := os.MkdirTemp("", "debpkg-test-")
		if err != nil {
			fake.err = err
			return
		}
		fake.path = filepath.Join(dir, "director")
		cmd := exec.Command(goCmd, "build", "-trimpath", "-o", fake.path, "./testdata/fakedirector")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fake.err = fmt.Errorf("go build ./testdata/fakedirector: %w\n%s", err, out)
		}
	})
	if fake.err != nil {
		t.Fatal(fake.err)
	}
	return fake.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fake.path != "" {
		os.RemoveAll(filepath.Dir(fake.path))
	}
	os.Exit(code)
}

// buildPackage packages testdata/fakedirector as the daemon.
func buildPackage(t *testing.T) (deb, binary string) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is not on the PATH; the test builds a binary to package, and the copyright file needs go env GOROOT and GOMODCACHE")
	}
	binary = fakeDirector(t, goCmd)
	goroot, modcache, err := GoEnv(goCmd)
	if err != nil {
		t.Fatal(err)
	}
	deb, err = Build(Options{
		Root:       root,
		Binary:     binary,
		Describe:   "v1.2.3-4-gabcdef0",
		CommitTime: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		GoRoot:     goroot,
		ModCache:   modcache,
		OutDir:     t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return deb, binary
}

func TestPackage(t *testing.T) {
	deb, binary := buildPackage(t)
	arch, err := Arch(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	const version = "1.2.3+git4.abcdef0-1"
	if want := "director_" + version + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s; want %s", filepath.Base(deb), want)
	}

	// Control fields, as dpkg reads them.
	dpkgDeb(t, "--info", deb) // fails on a malformed archive
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Section", "Priority", "Maintainer", "Homepage", "Depends", "Pre-Depends", "Recommends", "Suggests", "Conflicts", "Installed-Size"} {
		fields[f] = strings.TrimSpace(dpkgDeb(t, "--field", deb, f))
	}
	for f, want := range map[string]string{
		"Package": "director", "Version": version, "Architecture": arch,
		"Section": "net", "Priority": "optional", "Maintainer": Maintainer,
		"Homepage": "https://github.com/director-lb/director",
		// A static binary needs nothing; director status replaces ipvsadm -Ln.
		"Depends": "", "Pre-Depends": "", "Recommends": "", "Conflicts": "",
		"Suggests": "ipvsadm",
	} {
		if fields[f] != want {
			t.Errorf("control field %s = %q; want %q", f, fields[f], want)
		}
	}
	st, err := os.Stat(binary)
	if err != nil {
		t.Fatal(err)
	}
	if kb, _ := strconv.ParseInt(fields["Installed-Size"], 10, 64); kb < st.Size()/1024 {
		t.Errorf("Installed-Size %q KiB is less than the binary's %d bytes", fields["Installed-Size"], st.Size())
	}
	if d := dpkgDeb(t, "--field", deb, "Description"); !strings.HasPrefix(d, "VRRP, VIP failover") || !strings.Contains(d, "never restarts") {
		t.Errorf("Description = %q", d)
	}

	// Every entry is root's.
	for _, line := range strings.Split(strings.TrimSpace(dpkgDeb(t, "--contents", deb)), "\n") {
		if f := strings.Fields(line); len(f) < 6 || f[1] != "root/root" {
			t.Errorf("dpkg-deb -c: %q is not owned by root/root", line)
		}
	}

	dir := t.TempDir()
	fsRoot, ctrl := filepath.Join(dir, "root"), filepath.Join(dir, "DEBIAN")
	dpkgDeb(t, "-x", deb, fsRoot)
	dpkgDeb(t, "-e", deb, ctrl)

	read := func(p string) []byte {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	gunzip := func(p string) []byte {
		t.Helper()
		r, err := gzip.NewReader(bytes.NewReader(read(p)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if r.Header.ModTime.Unix() > 0 || r.Header.Name != "" {
			t.Errorf("%s: gzip header has name %q and time %v; want neither, for reproducible packages", p, r.Header.Name, r.Header.ModTime)
		}
		return data
	}
	same := func(installed string, got []byte, source string) {
		t.Helper()
		if !bytes.Equal(got, read(filepath.Join(root, source))) {
			t.Errorf("%s differs from %s", installed, source)
		}
	}

	// The files, with their modes and contents.
	want := map[string]fs.FileMode{
		"usr/sbin/director":                              0o755,
		"usr/lib/systemd/system/director.service":        0o644,
		"etc/director/director.yaml":                     0o640,
		"usr/share/man/man8/director.8.gz":               0o644,
		"usr/share/bash-completion/completions/director": 0o644,
		"usr/share/doc/director/copyright":               0o644,
		"usr/share/doc/director/changelog.Debian.gz":     0o644,
		"usr/share/doc/director/README.Debian":           0o644,
		"usr/share/lintian/overrides/director":           0o644,
	}
	examples, _ := filepath.Glob(filepath.Join(root, "configs/*"))
	for _, e := range examples {
		if filepath.Base(e) != "installed-example.yaml" {
			want["usr/share/doc/director/examples/"+filepath.Base(e)] = 0o644
		}
	}
	got := map[string]fs.FileMode{}
	err = filepath.WalkDir(fsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fsRoot, p)
		switch {
		case d.IsDir():
			if info.Mode().Perm() != 0o755 {
				t.Errorf("directory /%s has mode %v; want 0755", rel, info.Mode().Perm())
			}
		case info.Mode().IsRegular():
			got[rel] = info.Mode().Perm()
		default:
			t.Errorf("/%s is a %v; the package has only files and directories", rel, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sortedKeys(want) {
		mode := want[p]
		if m, ok := got[p]; !ok {
			t.Errorf("/%s is missing", p)
		} else if m != mode {
			t.Errorf("/%s has mode %#o; want %#o", p, m, mode)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("/%s is in the package but not expected", p)
		}
	}

	if !bytes.Equal(read(filepath.Join(fsRoot, "usr/sbin/director")), read(binary)) {
		t.Error("/usr/sbin/director is not the binary given")
	}
	unit := string(read(filepath.Join(fsRoot, "usr/lib/systemd/system/director.service")))
	for _, line := range []string{
		"ExecStartPre=/usr/sbin/director validate -c /etc/director/director.yaml",
		"ExecStart=/usr/sbin/director run -c /etc/director/director.yaml",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(unit, line+"\n") {
			t.Errorf("the unit lacks %q:\n%s", line, unit)
		}
	}
	if strings.Contains(unit, "/usr/local") {
		t.Errorf("the packaged unit still names /usr/local:\n%s", unit)
	}
	conf := filepath.Join(fsRoot, "etc/director/director.yaml")
	same("/etc/director/director.yaml", read(conf), "configs/installed-example.yaml")
	if _, err := config.Load(conf); err != nil {
		t.Errorf("the installed example does not validate: %v", err)
	}
	same("/usr/share/man/man8/director.8.gz", gunzip(filepath.Join(fsRoot, "usr/share/man/man8/director.8.gz")), "packaging/director.8")
	same("the bash completion", read(filepath.Join(fsRoot, "usr/share/bash-completion/completions/director")), "packaging/bash-completion")
	same("README.Debian", read(filepath.Join(fsRoot, "usr/share/doc/director/README.Debian")), "packaging/deb/README.Debian")
	same("the lintian overrides", read(filepath.Join(fsRoot, "usr/share/lintian/overrides/director")), "packaging/deb/lintian-overrides")

	changelog := string(gunzip(filepath.Join(fsRoot, "usr/share/doc/director/changelog.Debian.gz")))
	if first := strings.SplitN(changelog, "\n", 2)[0]; first != "director ("+version+") unstable; urgency=medium" {
		t.Errorf("changelog.Debian starts %q", first)
	}
	if !strings.Contains(changelog, " -- "+Maintainer+"  Fri, 02 Jan 2026 15:04:05 +0000\n") {
		t.Errorf("changelog.Debian has no trailer with the commit's date:\n%s", changelog)
	}

	copyright := string(read(filepath.Join(fsRoot, "usr/share/doc/director/copyright")))
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	wantCopyright := []string{
		string(read(filepath.Join(root, "packaging/deb/copyright"))),
		"the Go standard library and runtime (" + bi.GoVersion + ")",
		"/usr/share/common-licenses/Apache-2.0", // smithy-go's
		"Copyright Amazon.com",                  // smithy-go's NOTICE
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the stand-in binary lists no modules")
	}
	for _, d := range bi.Deps {
		wantCopyright = append(wantCopyright, d.Path+" "+d.Version)
	}
	for _, w := range wantCopyright {
		if !strings.Contains(copyright, w) {
			t.Errorf("the copyright file lacks %q", w)
		}
	}
	if strings.Contains(copyright, "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION") {
		t.Error("the copyright file has the Apache License's full text; Debian wants a reference to common-licenses")
	}

	// The control archive: one conffile, and the maintainer scripts as
	// they are in packaging/deb, executable.
	if c := string(read(filepath.Join(ctrl, "conffiles"))); c != Conffile+"\n" {
		t.Errorf("conffiles = %q; want %q", c, Conffile+"\n")
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctrl, s)
		same(s, read(p), "packaging/deb/"+s)
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v; want 0755", s, err, st.Mode())
		}
	}
	if _, err := os.Stat(filepath.Join(ctrl, "preinst")); err == nil {
		t.Error("the package has a preinst; none was written")
	}
	md5s := string(read(filepath.Join(ctrl, "md5sums")))
	for p := range want {
		if !strings.Contains(md5s, "  "+p+"\n") {
			t.Errorf("md5sums lacks %s", p)
		}
	}
}

// The same inputs give the same package, byte for byte.
func TestPackageReproducible(t *testing.T) {
	a, _ := buildPackage(t)
	b, _ := buildPackage(t)
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Error("two builds of the same inputs differ")
	}
}

// Lines that act, as opposed to comments and messages to the operator.
func actingLines(t *testing.T, script string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "packaging/deb", script))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "echo ") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// No script can start or restart the daemon, whatever its path to
// systemctl: the run below sees only commands found on the PATH.
func TestMaintainerScriptsNeverStart(t *testing.T) {
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		for _, l := range actingLines(t, s) {
			for _, word := range strings.FieldsFunc(l, func(r rune) bool { return strings.ContainsRune(" \t;|&()`'\"", r) }) {
				switch word {
				case "start", "restart", "try-restart", "reload-or-restart", "try-reload-or-restart", "enable", "service", "invoke-rc.d", "update-rc.d":
					t.Errorf("%s: %q would %s the daemon", s, l, word)
				}
			}
		}
	}
}

// runScript runs a maintainer script from packaging/deb with stand-ins for
// systemctl and the deb-systemd helpers that log their arguments, and
// returns those calls and the script's output. With systemd, the script
// sees /run/systemd/system, in a mount namespace of its own (so root is
// needed) with a fresh /run.
func runScript(t *testing.T, systemd bool, script string, args ...string) (calls []string, output string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("run as root: the maintainer scripts run in a mount namespace with their own /run")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls")
	for _, c := range []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke", "invoke-rc.d", "service", "update-rc.d"} {
		stub := "#!/bin/sh\necho \"" + c + " $*\" >> \"$CALLS\"\n"
		if err := os.WriteFile(filepath.Join(bin, c), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	setup := "mount -t tmpfs tmpfs /run"
	if systemd {
		setup += " && mkdir -p /run/systemd/system"
	}
	path, err := filepath.Abs(filepath.Join(root, "packaging/deb", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", setup + ` && exec /bin/sh "$0" "$@"`, path}, args...)...)
	cmd.Env = []string{
		"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"CALLS=" + log,
		"DPKG_MAINTSCRIPT_PACKAGE=director",
		"DPKG_MAINTSCRIPT_NAME=" + script,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(data)); s != "" {
		calls = strings.Split(s, "\n")
	}
	return calls, string(out)
}

// What each step of dpkg's install, upgrade, remove and purge makes the
// scripts do (deb-systemd-invoke and deb-systemd-helper act only when
// systemd runs; here they are stand-ins).
func TestMaintainerScripts(t *testing.T) {
	const (
		updateState = "deb-systemd-helper update-state director.service"
		reload      = "systemctl --system daemon-reload"
	)
	for _, tc := range []struct {
		name    string
		systemd bool
		script  string
		args    []string
		calls   []string
		says    string
	}{
		// A fresh install enables nothing and starts nothing.
		{"install", true, "postinst", []string{"configure"}, []string{updateState, reload}, "edit /etc/director/director.yaml"},
		// An upgrade: the old prerm, then the new postinst. Neither stops,
		// starts or restarts: a restart of the master is a failover.
		{"upgrade: prerm", true, "prerm", []string{"upgrade", "1.2.4-1"}, nil, ""},
		{"upgrade: postrm", true, "postrm", []string{"upgrade", "1.2.4-1"}, nil, ""},
		{"upgrade: postinst", true, "postinst", []string{"configure", "1.2.2-1"}, []string{updateState, reload}, "keeps the old version until you restart it"},
		{"failed upgrade", true, "postinst", []string{"abort-upgrade", "1.2.4-1"}, nil, ""},
		// Removing stops the daemon (a master hands its VIPs over first).
		{"remove: prerm", true, "prerm", []string{"remove"}, []string{"deb-systemd-invoke stop director.service"}, ""},
		{"remove: postrm", true, "postrm", []string{"remove"}, []string{reload}, ""},
		{"purge", true, "postrm", []string{"purge"}, []string{"deb-systemd-helper purge director.service"}, ""},
		// Without systemd (a chroot, a container) there is nothing to tell.
		{"install without systemd", false, "postinst", []string{"configure"}, []string{updateState}, ""},
		{"remove without systemd", false, "prerm", []string{"remove"}, nil, ""},
		{"remove without systemd: postrm", false, "postrm", []string{"remove"}, nil, ""},
	} {
		calls, out := runScript(t, tc.systemd, tc.script, tc.args...)
		if strings.Join(calls, "\n") != strings.Join(tc.calls, "\n") {
			t.Errorf("%s (%s %s): calls\n%s\nwant\n%s", tc.name, tc.script, strings.Join(tc.args, " "), strings.Join(calls, "\n"), strings.Join(tc.calls, "\n"))
		}
		if tc.says != "" && !strings.Contains(out, tc.says) {
			t.Errorf("%s: output %q does not say %q", tc.name, out, tc.says)
		}
	}

	// An argument dpkg does not pass is an error, as policy asks.
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		cmd := exec.Command("/bin/sh", filepath.Join(root, "packaging/deb", s), "bogus")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown argument") {
			t.Errorf("%s bogus: %v, %q; want exit 1 naming the unknown argument", s, err, out)
		}
	}
}

// sortedKeys is for stable failure messages.
func sortedKeys(m map[string]fs.FileMode) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
