package uml

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The pinned unstable packages: the pair that was proven to boot on a host
// with AMX and to pass the whole lab.
const (
	pinnedUML  = "7.2um1"
	pinnedLibc = "2.43-7"
)

// Debian 12's package and where it keeps its modules.
const (
	systemUML     = "/usr/bin/linux.uml"
	systemModules = "/usr/lib/uml/modules"
)

// Store prepares and probes the candidates for real, keeping what it
// downloads under Work/kernels.
type Store struct {
	Work string
	Logf func(format string, args ...any)
}

func (s Store) dir(elem ...string) string {
	return filepath.Join(append([]string{s.Work, "kernels"}, elem...)...)
}

func (s Store) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Select chooses the guest kernel for the lab whose work directory is
// work: LAB_KERNEL forces a candidate, otherwise the first that boots.
func Select(ctx context.Context, work string, logf func(string, ...any)) (*Choice, error) {
	return SelectCandidate(ctx, work, logf, os.Getenv(EnvKernel))
}

// SelectCandidate prepares and probes one candidate ("" or "auto": the
// first that boots), whatever LAB_KERNEL says: the lab test that runs a
// scenario on every kernel the host boots.
func SelectCandidate(ctx context.Context, work string, logf func(string, ...any), candidate string) (*Choice, error) {
	st := Store{Work: work, Logf: logf}
	c := Chooser{Host: ReadHost(), Prepare: st.Prepare, Probe: st.Probe, Cache: st.dir("choice.json"), Logf: logf}
	return c.Choose(ctx, candidate)
}

// Prepare makes candidate's kernel bootable here.
func (s Store) Prepare(ctx context.Context, candidate string) (Kernel, error) {
	switch candidate {
	case Debian12:
		return s.prepareSystem(ctx)
	case SidPinned:
		return s.prepareSid(ctx, SidPinned, pinnedUML, pinnedLibc)
	case SidNewest:
		return s.prepareSid(ctx, SidNewest, "", "")
	}
	return Kernel{}, fmt.Errorf("unknown candidate %q", candidate)
}

func (s Store) prepareSystem(ctx context.Context) (Kernel, error) {
	if !exists(systemUML) || !exists(systemModules) {
		if err := aptInstall(ctx, "user-mode-linux", "kmod"); err != nil {
			return Kernel{}, err
		}
	}
	ver, _ := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "user-mode-linux").Output()
	root := s.dir(Debian12, "modroot")
	if err := linkModules(root, systemModules); err != nil {
		return Kernel{}, err
	}
	return Kernel{Candidate: Debian12, Package: "user-mode-linux " + strings.TrimSpace(string(ver)) + " from the system (Debian 12)",
		Binary: systemUML, ModRoot: root}, nil
}

// prepareSid downloads Debian unstable's user-mode-linux with the libc6 it
// needs (glibc 2.38 or newer) into the cache, without touching the
// system's apt sources, and points the binary at that libc with patchelf.
// Empty versions take the newest.
func (s Store) prepareSid(ctx context.Context, cand, umlVer, libcVer string) (Kernel, error) {
	dir := s.dir(cand)
	meta := filepath.Join(dir, "kernel.json")
	var k Kernel
	if b, err := os.ReadFile(meta); err == nil && json.Unmarshal(b, &k) == nil && exists(k.Binary) {
		return k, nil
	}
	if !exists("/usr/bin/patchelf") {
		if err := aptInstall(ctx, "patchelf"); err != nil {
			return Kernel{}, err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return Kernel{}, err
	}
	debs := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return Kernel{}, err
	}
	apt, err := s.sidApt(ctx)
	if err != nil {
		return Kernel{}, err
	}
	pkgs := []string{"user-mode-linux", "libc6"}
	if umlVer != "" {
		pkgs = []string{"user-mode-linux=" + umlVer, "libc6=" + libcVer}
	}
	if out, err := run(ctx, debs, append(append([]string{"apt-get"}, apt...), append([]string{"download"}, pkgs...)...)...); err != nil {
		return Kernel{}, fmt.Errorf("download %s from unstable: %w\n%s", strings.Join(pkgs, " "), err, lastLines(out, 5))
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	root := filepath.Join(dir, "root")
	var versions []string
	for _, f := range files {
		if _, err := run(ctx, "", "dpkg-deb", "-x", f, root); err != nil {
			return Kernel{}, fmt.Errorf("unpack %s: %w", filepath.Base(f), err)
		}
		versions = append(versions, strings.TrimSuffix(filepath.Base(f), ".deb"))
	}
	loaders, _ := filepath.Glob(filepath.Join(root, "usr/lib/*/ld-linux*.so.*"))
	if len(loaders) == 0 {
		return Kernel{}, fmt.Errorf("unstable's libc6 has no dynamic loader under %s", root)
	}
	libDir := filepath.Dir(loaders[0])
	bin := filepath.Join(dir, "linux.uml")
	if _, err := run(ctx, "", "cp", filepath.Join(root, "usr/bin/linux.uml"), bin); err != nil {
		return Kernel{}, fmt.Errorf("unstable's user-mode-linux: %w", err)
	}
	if _, err := run(ctx, "", "patchelf", "--set-interpreter", loaders[0], "--set-rpath", libDir, bin); err != nil {
		return Kernel{}, err
	}
	// A relative link, so the guest finds the modules through GuestWork
	// as the host does.
	modRoot := filepath.Join(dir, "modroot")
	if err := linkModules(modRoot, "../../root/usr/lib/uml/modules"); err != nil {
		return Kernel{}, err
	}
	k = Kernel{Candidate: cand, Package: strings.Join(versions, ", ") + " from Debian unstable", Binary: bin, ModRoot: modRoot}
	if err := writeJSON(meta, k); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

// sidApt returns apt options for a private package list of Debian
// unstable, fetched from the same archive as the system's, updated at most
// once a day.
func (s Store) sidApt(ctx context.Context) ([]string, error) {
	base := s.dir("apt")
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return nil, err
		}
	}
	mirror, err := systemMirror()
	if err != nil {
		return nil, err
	}
	src := filepath.Join(base, "sources.list")
	line := fmt.Sprintf("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n", mirror)
	if err := os.WriteFile(src, []byte(line), 0o644); err != nil {
		return nil, err
	}
	opts := []string{"-q", "-o", "Dir::Etc::sourcelist=" + src, "-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(base, "lists"), "-o", "Dir::Cache=" + filepath.Join(base, "cache"),
		// apt's sandbox user cannot always write where apt works (a /tmp of
		// mode 0755 was seen).
		"-o", "APT::Sandbox::User=root"}
	stamp := filepath.Join(base, "updated")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < 24*time.Hour {
		return opts, nil
	}
	s.logf("lab: fetching Debian unstable's package list for its user-mode-linux")
	if out, err := run(ctx, "", append(append([]string{"apt-get"}, opts...), "update")...); err != nil {
		return nil, fmt.Errorf("apt-get update for unstable: %w\n%s", err, lastLines(out, 5))
	}
	return opts, os.WriteFile(stamp, nil, 0o644)
}

var debLine = regexp.MustCompile(`^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)`)

// systemMirror finds the Debian archive the system's apt uses (not its
// security archive), from sources.list or deb822 .sources files.
func systemMirror() (string, error) {
	var found string
	consider := func(uri, suites string) {
		if found != "" || strings.Contains(uri, "security") {
			return
		}
		for _, s := range strings.Fields(suites) {
			if !strings.Contains(s, "security") {
				found = strings.TrimRight(uri, "/")
				return
			}
		}
	}
	if f, err := os.Open("/etc/apt/sources.list"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := debLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
				consider(m[1], m[2])
			}
		}
		f.Close()
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(b), "\n\n") {
			fields := map[string]string{}
			for _, l := range strings.Split(stanza, "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
					fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			if uris := strings.Fields(fields["URIs"]); len(uris) > 0 && strings.Contains(fields["Types"], "deb") {
				consider(uris[0], fields["Suites"])
			}
		}
	}
	if found == "" {
		return "", errors.New("no Debian archive in the system's apt sources")
	}
	return found, nil
}

// Probe boots k with a trivial init that loads IPVS: a few seconds, and a
// kernel that passes it boots the lab.
func (s Store) Probe(ctx context.Context, k Kernel) Probe {
	start := time.Now()
	dir := s.dir("probe-" + k.Candidate)
	p := Probe{Candidate: k.Candidate}
	if err := os.RemoveAll(dir); err != nil {
		p.Err = err.Error()
		return p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.Err = err.Error()
		return p
	}
	var console strings.Builder
	err := Boot(ctx, Spec{
		Kernel: &k, Work: s.Work, RunDir: dir, Mem: "256M", Limit: 90 * time.Second,
		Modules: []string{"ip_vs"},
		Script:  `echo "uml-probe: release=$(uname -r)"`,
		Console: func(l string) { console.WriteString(l + "\n") },
	})
	p.Took = time.Since(start).Round(time.Millisecond)
	out := console.String()
	p.Release, p.OK = probeRelease(out)
	if !p.OK {
		p.Err = probeFailure(out, err)
		p.Tail = lastLines(out, 12)
	}
	return p
}

var releaseLine = regexp.MustCompile(`uml-probe: release=(\S+)`)

func probeRelease(console string) (string, bool) {
	m := releaseLine.FindStringSubmatch(console)
	if m == nil || !strings.Contains(console, ExitLine+"0") {
		return "", false
	}
	return m[1], true
}

// probeFailure says in a few words why a probe failed.
func probeFailure(console string, err error) string {
	switch {
	case strings.Contains(console, "ptrace set fp regs failed"):
		return "kernel panic at the first process (ptrace set fp regs failed: the known failure of this UML on CPUs with AMX)"
	case strings.Contains(console, "Kernel panic"):
		return "kernel panic"
	case strings.Contains(console, "modules missing"):
		return "booted, but cannot load ip_vs"
	case err != nil:
		return err.Error()
	}
	return "the trivial init did not finish"
}

func linkModules(modRoot, target string) error {
	lib := filepath.Join(modRoot, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return fmt.Errorf("modroot: %w", err)
	}
	link := filepath.Join(lib, "modules")
	if dst, err := os.Readlink(link); err == nil && dst == target {
		return nil
	}
	_ = os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("modroot: %w", err)
	}
	return nil
}

func aptInstall(ctx context.Context, pkgs ...string) error {
	for _, argv := range [][]string{
		{"apt-get", "update", "-q"},
		append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, pkgs...),
	} {
		if out, err := run(ctx, "", argv...); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, lastLines(out, 10))
		}
	}
	return nil
}

func run(ctx context.Context, dir string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return string(out), nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
