package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syscallCount is what a counting window saw of this process (all threads).
type syscallCount struct {
	total int64
	top   []namedCount // the commonest calls, when the counter names them
	by    string       // the tool that counted
}

type namedCount struct {
	name  string
	calls int64
}

// countSyscalls counts this process's system calls for window with perf
// (raw_syscalls:sys_enter: cheap, no ptrace) or strace -c -f (which stops
// the process at every call, and so slows it, but names the calls). auto
// tries perf first.
func countSyscalls(how string, window time.Duration) (syscallCount, error) {
	switch how {
	case "perf":
		return perfCount(window)
	case "strace":
		return straceCount(window)
	case "auto":
		c, err := perfCount(window)
		if err == nil {
			return c, nil
		}
		c, err2 := straceCount(window)
		if err2 != nil {
			return c, fmt.Errorf("perf: %v; strace: %w", err, err2)
		}
		return c, nil
	}
	return syscallCount{}, fmt.Errorf("-counter %q: want auto, perf or strace", how)
}

func perfCount(window time.Duration) (syscallCount, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return syscallCount{}, err
	}
	// perf stat -x, writes CSV to stderr: "count,unit,event,...".
	cmd := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strconv.Itoa(os.Getpid()),
		"--", "sleep", strconv.FormatFloat(window.Seconds(), 'f', 3, 64))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return syscallCount{}, fmt.Errorf("perf stat: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	for line := range strings.Lines(stderr.String()) {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 3 && strings.Contains(f[2], "raw_syscalls:sys_enter") {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return syscallCount{}, fmt.Errorf("perf stat: count %q: %w", f[0], err)
			}
			return syscallCount{total: n, by: "perf"}, nil
		}
	}
	return syscallCount{}, fmt.Errorf("perf stat: no count in %q", stderr.String())
}

func straceCount(window time.Duration) (syscallCount, error) {
	if _, err := exec.LookPath("strace"); err != nil {
		return syscallCount{}, err
	}
	out, err := os.CreateTemp("", "checkbench-strace-*")
	if err != nil {
		return syscallCount{}, err
	}
	out.Close()
	defer os.Remove(out.Name())
	// Every thread of the process, by its ID (some strace versions attach
	// only the one named), and with -f the threads started later.
	args := []string{"-c", "-f", "-o", out.Name()}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		args = append(args, "-p", t.Name())
	}
	if len(tasks) == 0 {
		args = append(args, "-p", strconv.Itoa(os.Getpid()))
	}
	cmd := exec.Command("strace", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return syscallCount{}, err
	}
	time.Sleep(window)
	cmd.Process.Signal(syscall.SIGINT) // strace detaches and writes its summary
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return syscallCount{}, fmt.Errorf("strace: %w: %s", err, stderr.String())
		}
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return syscallCount{}, err
	}
	return parseStraceSummary(b)
}

// parseStraceSummary reads strace -c's table: "% time seconds usecs/call
// calls errors syscall" rows, then a "total" row.
func parseStraceSummary(b []byte) (syscallCount, error) {
	c := syscallCount{by: "strace -c -f"}
	sc := bufio.NewScanner(bytes.NewReader(b))
	found := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || strings.HasPrefix(f[0], "%") || strings.HasPrefix(f[0], "-") {
			continue
		}
		name := f[len(f)-1]
		// calls is the 4th column; errors may be blank.
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			continue
		}
		if name == "total" {
			c.total, found = n, true
			continue
		}
		c.top = append(c.top, namedCount{name, n})
	}
	if !found {
		return c, fmt.Errorf("strace: no total in %q", b)
	}
	sort.Slice(c.top, func(i, j int) bool { return c.top[i].calls > c.top[j].calls })
	c.top = c.top[:min(len(c.top), 8)]
	return c, nil
}
