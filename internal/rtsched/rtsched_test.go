package rtsched

import (
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Every thread goes realtime, a child does not, and 0 undoes it.
func TestApplyPromotesThreadsNotChildren(t *testing.T) {
	t.Cleanup(func() { _, _ = Apply(0) })
	n, err := Apply(7)
	if err != nil {
		t.Fatal(err)
	}
	tids, err := threads()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n < len(tids)-1 {
		t.Errorf("set %d of %d threads", n, len(tids))
	}
	for _, tid := range tids {
		pol, prio, err := Policy(tid)
		if err != nil {
			continue // ended meanwhile
		}
		if pol != unix.SCHED_RR || prio != 7 {
			t.Errorf("thread %d: policy %d priority %d, want SCHED_RR (%d) 7", tid, pol, prio, unix.SCHED_RR)
		}
	}
	// /proc/<pid>/sched's "policy" line is the child's own view.
	out, err := exec.Command("sh", "-c", "grep -E '^policy' /proc/$$/sched").Output()
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(out)); len(f) != 3 || f[2] != "0" {
		t.Errorf("a child's %q, want policy 0 (SCHED_OTHER): children must not inherit the realtime policy", out)
	}
	if _, err := Apply(0); err != nil {
		t.Fatal(err)
	}
	if pol, _, err := Policy(0); err != nil || pol != unix.SCHED_NORMAL {
		t.Errorf("policy %d (%v) after Apply(0), want SCHED_NORMAL", pol, err)
	}
}

func TestApplyRefusesOutOfRange(t *testing.T) {
	for _, p := range []int{-1, 100} {
		if _, err := Apply(p); err == nil {
			t.Errorf("Apply(%d): no error", p)
		}
	}
}
