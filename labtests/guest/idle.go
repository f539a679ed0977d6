package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// userHZ is the unit of utime and stime in /proc/PID/stat; it is 100 on
// every Linux architecture, UML included.
const userHZ = 100

// stepSampleProc measures node's daemon while the plan idles: the summed
// VmRSS of every process in its process group (keepalived's parent, VRRP
// and checker children) once a second, and the group's CPU time over the
// whole step.
func stepSampleProc(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	p, err := r.daemon(s.Node)
	if err != nil {
		return err
	}
	if !p.running() {
		return fmt.Errorf("%s is not running", s.Node)
	}
	// Daemons start in their own process group (procs.start), and
	// "ip netns exec" execs the daemon in place, so the group id is the pid.
	pgid := p.cmd.Process.Pid
	first, err := readGroup(pgid)
	if err != nil {
		return err
	}
	busy0, total0, err := guestCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	var rssSum, rssMax int64
	readings := 0
	last := first
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < s.Duration.D() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if last, err = readGroup(pgid); err != nil {
			return err
		}
		rss := sumRSS(last)
		rssSum += rss
		rssMax = max(rssMax, rss)
		readings++
	}
	wall := time.Since(start)
	busy1, total1, err := guestCPU()
	if err != nil {
		return err
	}
	if readings == 0 {
		return errors.New("no reading")
	}
	ticks := sumTicks(last) - sumTicks(first)
	before := map[int]int64{}
	for _, p := range first {
		before[p.PID] = p.Ticks
	}
	for i, p := range last {
		last[i].SampleTicks = p.Ticks - before[p.PID]
	}
	// PSS once, at the end: smaps_rollup walks the page tables.
	var pss int64
	for i, p := range last {
		path := fmt.Sprintf("/proc/%d/smaps_rollup", p.PID)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // exited meanwhile
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		last[i].PSSKiB = kibField(b, "Pss:")
		pss += last[i].PSSKiB
	}
	out := labplan.ProcSample{
		Wall:       labplan.Duration(wall),
		Ticks:      ticks,
		CPUPercent: 100 * float64(ticks) / userHZ / wall.Seconds(),
		RSSKiB:     rssSum / int64(readings),
		RSSMaxKiB:  rssMax,
		PSSKiB:     pss,
		Procs:      last,
	}
	if total1 > total0 {
		out.GuestBusyPercent = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	sr.Exec = &labplan.ExecOutput{Stdout: string(b) + "\n"}
	r.log.Info(fmt.Sprintf("sample %s: %d processes, RSS %d KiB (max %d), CPU %.2f%% over %v, guest busy %.0f%%",
		s.Node, len(last), out.RSSKiB, out.RSSMaxKiB, out.CPUPercent, wall.Round(time.Millisecond), out.GuestBusyPercent))
	return nil
}

func sumRSS(ps []labplan.ProcInfo) (n int64) {
	for _, p := range ps {
		n += p.RSSKiB
	}
	return n
}

func sumTicks(ps []labplan.ProcInfo) (n int64) {
	for _, p := range ps {
		n += p.Ticks
	}
	return n
}

// readGroup reads every process whose process group is pgid.
func readGroup(pgid int) ([]labplan.ProcInfo, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []labplan.ProcInfo
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			return nil, fmt.Errorf("%s/stat: %w", d, err)
		}
		if st.pgrp != pgid {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		out = append(out, labplan.ProcInfo{PID: st.pid, Comm: st.comm, RSSKiB: vmRSS(status), Ticks: st.utime + st.stime})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no process in group %d", pgid)
	}
	return out, nil
}

type procStat struct {
	pid, pgrp    int
	comm         string
	utime, stime int64
}

// parseStat reads /proc/PID/stat. The command name is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open, shut := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || shut < open {
		return procStat{}, errors.New("no command name")
	}
	var st procStat
	var err error
	if st.pid, err = strconv.Atoi(strings.TrimSpace(string(b[:open]))); err != nil {
		return procStat{}, fmt.Errorf("pid: %w", err)
	}
	st.comm = string(b[open+1 : shut])
	// Fields after the name start at field 3 (state): pgrp is field 5,
	// utime 14 and stime 15.
	f := strings.Fields(string(b[shut+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("%d fields after the name", len(f))
	}
	if st.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, fmt.Errorf("pgrp: %w", err)
	}
	if st.utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("utime: %w", err)
	}
	if st.stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stime: %w", err)
	}
	return st, nil
}

// vmRSS returns the VmRSS line of /proc/PID/status in KiB (0 for kernel
// threads, which have none).
func vmRSS(status []byte) int64 { return kibField(status, "VmRSS:") }

// kibField reads the first "name   N kB" line of a /proc file (status,
// smaps_rollup); 0 if there is none.
func kibField(b []byte, name string) int64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// guestCPU returns the guest's busy and total jiffies from /proc/stat.
func guestCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for j, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat field %d: %w", j+1, err)
		}
		total += n
		// idle (4th) and iowait (5th) are not busy.
		if j != 3 && j != 4 {
			busy += n
		}
	}
	return busy, total, nil
}
