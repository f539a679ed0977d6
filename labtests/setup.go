package labtests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/director-lb/director/labtests/uml"
)

// debPackages are the Debian packages the lab needs, with one file each
// that proves the package is installed.
var debPackages = []struct{ pkg, file string }{
	{"user-mode-linux", "/usr/bin/linux.uml"},
	{"kmod", "/usr/sbin/modprobe"},
	{"ipvsadm", "/usr/sbin/ipvsadm"},
	{"keepalived", "/usr/sbin/keepalived"},
	{"tcpdump", "/usr/bin/tcpdump"},
	{"iproute2", "/usr/sbin/ip"},
	{"nftables", "/usr/sbin/nft"},
	{"haproxy", "/usr/sbin/haproxy"},
	{"psmisc", "/usr/bin/killall"},
	// The router of routed plans (bgpd, bfdd, zebra, vtysh).
	{"frr", "/usr/lib/frr/bgpd"},
}

// missingPackages lists the packages whose proof file is absent.
func missingPackages(exists func(string) bool) []string {
	var out []string
	for _, p := range debPackages {
		if !exists(p.file) {
			out = append(out, p.pkg)
		}
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// ensurePackages installs the lab's Debian packages when any is missing,
// as on a fresh CI machine: one apt-get update, one apt-get install.
func ensurePackages(ctx context.Context, logf func(string, ...any)) error {
	missing := missingPackages(fileExists)
	if len(missing) == 0 {
		return nil
	}
	logf("lab: installing missing Debian packages: %s", strings.Join(missing, " "))
	all := make([]string, 0, len(debPackages))
	for _, p := range debPackages {
		all = append(all, p.pkg)
	}
	for _, argv := range [][]string{
		{"apt-get", "update"},
		append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, all...),
	} {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(string(out), 20))
		}
	}
	if still := missingPackages(fileExists); len(still) > 0 {
		return fmt.Errorf("packages still missing after apt-get install: %s", strings.Join(still, " "))
	}
	return nil
}

// workspace is the lab's directory tree on the host, under
// labtests/.work: never under /tmp, which the guest hides behind a tmpfs.
type workspace struct {
	moduleRoot string // the Go module's root
	work       string // labtests/.work
}

func (w workspace) bin(name string) string { return filepath.Join(w.work, "bin", name) }
func (w workspace) runDir(name string) string {
	return filepath.Join(w.work, "runs", name)
}

// findWorkspace locates the module from the current directory, which is
// the package directory under go test and anywhere inside it under go run.
func findWorkspace(ctx context.Context) (workspace, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return workspace{}, fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return workspace{}, errors.New("not inside the director Go module")
	}
	root := filepath.Dir(gomod)
	return workspace{moduleRoot: root, work: filepath.Join(root, "labtests", ".work")}, nil
}

// goTool finds the go command even when PATH lost /usr/local/go/bin (sudo).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" && fileExists(p) {
		return p
	}
	return "/usr/local/go/bin/go"
}

// buildStatic builds pkg (relative to the module root) into out with cgo
// off, so the binary runs unchanged inside the guest.
func buildStatic(ctx context.Context, w workspace, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", out, pkg)
	cmd.Dir = w.moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// Lab is the prepared host side: packages present, module root linked,
// guest program built. Preparing again is cheap (go build's cache), so each
// test may make its own.
type Lab struct {
	ws     workspace
	logf   func(string, ...any)
	choice *uml.Choice
}

// Kernel is the guest kernel this lab boots, and how it was chosen.
func (l *Lab) Kernel() *uml.Choice { return l.choice }

// guestPath is where the guest sees a host path of the lab's.
func (l *Lab) guestPath(host string) string { return uml.GuestPath(l.ws.work, host) }

// NewLab prepares the host for booting guests, with the guest kernel that
// uml.Select chooses (LAB_KERNEL forces one). logf receives progress
// messages (package installation, the kernel choice).
func NewLab(ctx context.Context, logf func(string, ...any)) (*Lab, error) {
	return NewLabKernel(ctx, logf, "")
}

// NewLabKernel is NewLab with the kernel candidate given ("" for the
// choice NewLab makes).
func NewLabKernel(ctx context.Context, logf func(string, ...any), candidate string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab must run as root (it boots User-Mode Linux and may apt-get install)")
	}
	if err := ensurePackages(ctx, logf); err != nil {
		return nil, err
	}
	ws, err := findWorkspace(ctx)
	if err != nil {
		return nil, err
	}
	var choice *uml.Choice
	if candidate == "" {
		choice, err = uml.Select(ctx, ws.work, logf)
	} else {
		choice, err = uml.SelectCandidate(ctx, ws.work, logf, candidate)
	}
	if err != nil {
		return nil, err
	}
	logf("lab: %s", choice.Host)
	logf("lab: %s", choice)
	if err := buildStatic(ctx, ws, "./labtests/guest", ws.bin("guest")); err != nil {
		return nil, err
	}
	return &Lab{ws: ws, logf: logf, choice: choice}, nil
}

// director builds the daemon from ./cmd/director.
// LAB_DIRECTOR names a prebuilt director binary to run instead (to compare
// two builds in the same lab, A/B); it is copied into the work directory,
// where the guest sees it.
func (l *Lab) director(ctx context.Context) (string, error) {
	out := l.ws.bin("director")
	if bin := os.Getenv("LAB_DIRECTOR"); bin != "" {
		b, err := os.ReadFile(bin)
		if err != nil {
			return "", fmt.Errorf("LAB_DIRECTOR: %w", err)
		}
		return out, os.WriteFile(out, b, 0o755)
	}
	return out, buildStatic(ctx, l.ws, "./cmd/director", out)
}

// hasStatus reports whether the director binary has the status command
// (it is being added): its help names it, where an unknown command would
// not.
func hasStatus(ctx context.Context, bin string) bool {
	out, _ := exec.CommandContext(ctx, bin, "status", "-h").CombinedOutput()
	return strings.Contains(string(out), "director status")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines omitted]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
