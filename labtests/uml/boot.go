package uml

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Where the guest sees the host's directories. The guest mounts tmpfs over
// /tmp, /var/tmp, /run and /mnt, so a host path under one of those would be
// hidden: everything the guest runs or reads is reached through these
// mounts instead, whatever the checkout's path.
const (
	GuestWork = "/mnt/lab" // the lab's work directory (binaries, kernels)
	GuestOut  = "/mnt/out" // the run's own directory, read-write
)

// Spec is one boot.
type Spec struct {
	Kernel *Kernel
	// Work is the lab's work directory, mounted at GuestWork. The kernel's
	// module tree must be under it or outside the hidden directories.
	Work string
	// RunDir holds init.sh, console.log and UML's own files; it is
	// mounted at GuestOut.
	RunDir string
	// Modules are loaded before Script runs; built-in ones count as
	// loaded.
	Modules []string
	// Script is shell run as root once the guest is set up; its exit
	// status is printed as "lab: guest exited with status N".
	Script string
	// Mem is the guest's memory (default 768M).
	Mem string
	// Limit is the wall-clock limit, after which the guest is killed.
	Limit time.Duration
	// Console receives each console line as it arrives.
	Console func(string)
	// Nice is the guest's scheduling priority on the host: its timers are
	// what scenarios measure, so it runs ahead of builds and fuzzers.
	Nice int
}

// ExitLine is what the init prints after Script, with its status.
const ExitLine = "lab: guest exited with status "

var bootSeq atomic.Int64

// hiddenDirs are the directories the guest covers with tmpfs.
var hiddenDirs = []string{"/tmp", "/var/tmp", "/run", "/mnt"}

// Hidden reports whether the guest cannot see host path p through its root
// (it lies under a directory the guest covers with tmpfs).
func Hidden(p string) bool {
	for _, d := range hiddenDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// GuestPath maps a host path under work to the guest's view of it; paths
// elsewhere, and every path when work is visible through the guest's root
// as it is, are returned unchanged.
func GuestPath(work, host string) string {
	if !Hidden(work) {
		return host
	}
	rel, err := filepath.Rel(work, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return host
	}
	return filepath.Join(GuestWork, rel)
}

// InitScript is the guest's PID 1 for s: writable tmpfs where the guest
// needs to write (the root is the host's, read-only), the lab's
// directories mounted, modules loaded (the kernel's autoloader pointed at
// the kernel's own module tree), then s.Script, then power off.
func InitScript(s Spec) string {
	modRoot := GuestPath(s.Work, s.Kernel.ModRoot)
	// The work directory is mounted only where the root does not show it:
	// reading binaries through the root's hostfs has measured faster.
	mountWork := fmt.Sprintf("mount -t hostfs -o %s none %s || { echo \"lab: cannot mount %s\"; poweroff -f; }", s.Work, GuestWork, s.Work)
	if !Hidden(s.Work) {
		mountWork = "# the work directory is visible through the root"
	}
	var mods string
	if len(s.Modules) > 0 {
		mods = "lab_modprobe " + strings.Join(s.Modules, " ") + " || { echo 'lab: modules missing'; poweroff -f; }\n"
	}
	return fmt.Sprintf(`#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /mnt
mkdir -p %[1]s %[2]s
# The lab's directories first: /tmp, /var/tmp and /run are hidden next.
%[3]s
mount -t hostfs -o %[4]s none %[2]s || { echo "lab: cannot mount %[4]s"; poweroff -f; }
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mkdir -p /run/netns /run/lock
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %[5]s "$@"\n' > /run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
# lab_modprobe MOD...: load what is neither loaded nor built in (a built-in
# module such as 7.2's ipv6 is not always in modules.builtin).
lab_modprobe() {
	need=
	for m in "$@"; do lab_have $m || need="$need $m"; done
	[ -z "$need" ] && return 0
	modprobe -a -d %[5]s $need
	for m in $need; do lab_have $m || { echo "lab: module $m is neither loaded nor built in"; return 1; }; done
}
lab_have() {
	[ -d /sys/module/$1 ] && return 0
	case $1 in ipv6) [ -d /proc/sys/net/ipv6 ] ;; *) return 1 ;; esac
}
echo "lab: guest kernel $(uname -r)"
%[6]s(
%[7]s
)
echo "%[8]s$?"
sync
poweroff -f
`, GuestWork, GuestOut, mountWork, s.RunDir, modRoot, mods, s.Script, ExitLine)
}

// Boot writes the init script into s.RunDir and runs the guest until it
// powers off or s.Limit passes, then makes sure none of its processes and
// none of UML's files remain. The console goes to RunDir/console.log.
func Boot(ctx context.Context, s Spec) error {
	if s.Kernel == nil {
		return errors.New("boot: no guest kernel")
	}
	if s.Mem == "" {
		s.Mem = "768M"
	}
	for _, d := range []string{s.Work, s.RunDir} {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("boot: %q is not an absolute path", d)
		}
	}
	initPath := filepath.Join(s.RunDir, "init.sh")
	if err := os.WriteFile(initPath, []byte(InitScript(s)), 0o755); err != nil {
		return fmt.Errorf("write init: %w", err)
	}
	umid := fmt.Sprintf("lab-%d-%d", os.Getpid(), bootSeq.Add(1))
	// uml_dir keeps UML's pid and socket files in the run dir, never in
	// ~/.uml, and lets the cleanup below find them.
	umlDir := filepath.Join(s.RunDir, "uml")
	args := []string{
		"mem=" + s.Mem, "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
		"init=" + initPath, "con=null", "con0=null,fd:2",
		"umid=" + umid, "uml_dir=" + umlDir, "quiet",
	}
	cmd := exec.Command("nice", append([]string{"-n", strconv.Itoa(s.Nice), s.Kernel.Binary}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=/tmp"}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	console, err := os.Create(filepath.Join(s.RunDir, "console.log"))
	if err != nil {
		return fmt.Errorf("console log: %w", err)
	}
	defer console.Close()

	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			fmt.Fprintln(console, line)
			if s.Console != nil {
				s.Console(line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	})
	if err := cmd.Start(); err != nil {
		pw.Close()
		wg.Wait()
		return fmt.Errorf("start %s: %w", s.Kernel.Binary, err)
	}
	pgid := cmd.Process.Pid
	// UML runs each guest process as a host process in our group; killing
	// the group is the only sure way to leave nothing behind.
	killGroup := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var bootErr error
	limit := s.Limit
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-exited:
		if err != nil {
			bootErr = fmt.Errorf("linux.uml: %w", err)
		}
	case <-timer.C:
		killGroup()
		<-exited
		bootErr = fmt.Errorf("guest still running after %v: killed", limit)
	case <-ctx.Done():
		killGroup()
		<-exited
		bootErr = fmt.Errorf("guest interrupted: %w", ctx.Err())
	}
	killGroup()
	pw.Close()
	wg.Wait()
	if err := os.RemoveAll(umlDir); err != nil {
		bootErr = errors.Join(bootErr, fmt.Errorf("remove uml dir: %w", err))
	}
	return bootErr
}

// HaltedCleanly reports whether a console shows the script's clean exit
// followed by the kernel's halt: linux.uml now and then aborts on its way
// out after that, and the results are whole then.
func HaltedCleanly(console string) bool {
	i := strings.Index(console, ExitLine+"0")
	return i >= 0 && (strings.Contains(console[i:], "reboot: System halted") || strings.Contains(console[i:], "reboot: Power down"))
}
