// Package rtsched puts every thread of this process under the realtime
// round-robin policy, or back under the normal one (keepalived's
// vrrp_rt_priority).
//
// Why every thread: Go runs the VRRP goroutines on whichever of its
// threads holds a processor, so promoting one thread is not enough. Why
// SCHED_RESET_ON_FORK: children (the check worker, hooks, scripts) must
// not inherit a realtime policy; the flag resets them at fork. It resets
// threads the runtime creates later too, so Keep promotes those as they
// appear.
package rtsched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Apply sets every thread of this process to SCHED_RR at prio (1-99),
// with SCHED_RESET_ON_FORK, or to SCHED_OTHER when prio is 0. It reports
// how many threads it set.
func Apply(prio int) (int, error) {
	if prio < 0 || prio > 99 {
		return 0, fmt.Errorf("rtsched: priority %d: want 0-99", prio)
	}
	tids, err := threads()
	if err != nil {
		return 0, err
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
	if prio > 0 {
		attr = unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR,
			Flags: unix.SCHED_FLAG_RESET_ON_FORK, Priority: uint32(prio)}
	}
	n := 0
	var errs []error
	for _, tid := range tids {
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue // the thread ended meanwhile
			}
			errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("rtsched: set policy: %w", errors.Join(errs...))
	}
	return n, nil
}

// Policy returns a thread's scheduling policy and priority (0 for this
// thread).
func Policy(tid int) (policy, prio int, err error) {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("rtsched: get policy of %d: %w", tid, err)
	}
	return int(a.Policy), int(a.Priority), nil
}

// Keep applies prio() every interval until ctx ends, so that threads the
// Go runtime starts later get the policy too. A failure is reported once
// to onErr per streak.
func Keep(ctx context.Context, prio func() int, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := prio()
		if p == 0 {
			continue // normal threads stay normal: nothing to keep
		}
		_, err := Apply(p)
		if err != nil && !failing && onErr != nil {
			onErr(err)
		}
		failing = err != nil
	}
}

// threads lists this process's thread IDs.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("rtsched: list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
