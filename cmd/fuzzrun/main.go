// Command fuzzrun runs every fuzz target in the module for a fixed time,
// a few at a time, keeps the inputs each run found that add coverage as
// seed corpus under the package's testdata/fuzz, and prints one line per
// target: executions, new interesting inputs, inputs kept, and whether it
// failed. `make fuzz` calls it; a failing target makes it exit non-zero
// after the others have run, with the failing input left where go test
// wrote it (testdata/fuzz/TARGET).
//
//	go run ./cmd/fuzzrun -fuzztime 10m -jobs 2 -parallel 1
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

type target struct {
	pkg, dir, name string
}

type result struct {
	target
	execs, interesting string
	kept               int
	elapsed            time.Duration
	// cpu is the CPU time of go test and its fuzz workers: the effective
	// fuzzing time where the machine was shared or the run held stopped
	// (it includes building the test binary, seconds when cached).
	cpu  time.Duration
	err  error
	tail string
	// race: go test failed only on Go's own end-of-fuzztime deadline
	// race, and the seed corpus replayed clean afterwards.
	race bool
}

func main() {
	fuzztime := flag.String("fuzztime", "20s", "time (or NNx executions) per target, as go test -fuzztime")
	jobs := flag.Int("jobs", 1, "targets run at once")
	parallel := flag.Int("parallel", 0, "fuzz workers per target (0: go test's default, GOMAXPROCS)")
	keep := flag.Bool("keep", true, "copy the new coverage-adding inputs of each run into testdata/fuzz")
	match := flag.String("run", "", "only targets whose package/name matches this regular expression")
	// Go spends up to a minute minimising each new coverage-adding input
	// by default, counted in -fuzztime: a slow target (the importer's,
	// a few hundred executions a second) spent most of 10 minutes so.
	minimize := flag.String("minimizetime", "", "time (or NNx executions) minimising each new input, as go test -fuzzminimizetime (empty: go's default, 60s)")
	flag.Parse()
	if *jobs < 1 {
		fmt.Fprintln(os.Stderr, "fuzzrun: -jobs must be at least 1")
		os.Exit(2)
	}
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile(*match); err != nil {
			fmt.Fprintf(os.Stderr, "fuzzrun: -run: %v\n", err)
			os.Exit(2)
		}
	}
	targets, err := list(re)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fuzzrun: %v\n", err)
		os.Exit(1)
	}
	cache, err := goEnv("GOCACHE")
	if err != nil {
		fmt.Fprintf(os.Stderr, "fuzzrun: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("fuzzrun: %d targets, %s each, %d at a time, -parallel %d\n", len(targets), *fuzztime, *jobs, *parallel)

	work := make(chan target)
	results := make(chan result)
	var wg sync.WaitGroup
	for range *jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				results <- run(t, *fuzztime, *minimize, *parallel, *keep, cache)
			}
		}()
	}
	go func() {
		for _, t := range targets {
			work <- t
		}
		close(work)
		wg.Wait()
		close(results)
	}()

	failed := 0
	for r := range results {
		status := "ok"
		if r.race {
			status = "ok (Go deadline race at the end; no input written; corpus replayed clean)"
		}
		if r.err != nil {
			status = "FAIL: " + r.err.Error()
			failed++
		}
		fmt.Printf("%-48s %-28s %8s  cpu %8s  execs %-12s new %-14s kept %-3d %s\n",
			r.pkg, r.name, r.elapsed.Round(time.Second), r.cpu.Round(time.Second), r.execs, r.interesting, r.kept, status)
		if r.err != nil {
			fmt.Println(indent(r.tail))
		}
	}
	if failed > 0 {
		fmt.Printf("fuzzrun: %d of %d targets failed\n", failed, len(targets))
		os.Exit(1)
	}
	fmt.Printf("fuzzrun: %d targets, no failure\n", len(targets))
}

// list finds the fuzz targets of every package, as go test -list sees them.
func list(re *regexp.Regexp) ([]target, error) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Dir}}", "./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var ts []target
	for line := range strings.Lines(string(out)) {
		pkg, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		names, err := exec.Command("go", "test", "-list", "^Fuzz", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("go test -list %s: %w", pkg, err)
		}
		for n := range strings.Lines(string(names)) {
			n = strings.TrimSpace(n)
			if !strings.HasPrefix(n, "Fuzz") {
				continue
			}
			if re != nil && !re.MatchString(pkg+"/"+n) {
				continue
			}
			ts = append(ts, target{pkg: pkg, dir: dir, name: n})
		}
	}
	return ts, nil
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// progress is go test's fuzzing status line; the last one seen gives the
// run's totals.
var progress = regexp.MustCompile(`execs: (\d+).*?new interesting: (\d+ \(total: \d+\))`)

func run(t target, fuzztime, minimize string, parallel int, keep bool, cache string) result {
	r := result{target: t}
	start := time.Now()
	args := []string{"test", "-run", "^$", "-fuzz", "^" + t.name + "$", "-fuzztime", fuzztime}
	if minimize != "" {
		args = append(args, "-fuzzminimizetime", minimize)
	}
	if parallel > 0 {
		args = append(args, "-parallel", fmt.Sprint(parallel))
	}
	args = append(args, t.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = t.dir
	var tail bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := progress.FindStringSubmatch(line); m != nil {
				r.execs, r.interesting = m[1], m[2]
			}
			tail.WriteString(line + "\n")
			if tail.Len() > 8<<10 {
				tail.Next(tail.Len() - 8<<10)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	seeds := filepath.Join(t.dir, "testdata", "fuzz", t.name)
	before := names(seeds)
	r.err = cmd.Run()
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	pw.Close()
	<-done
	r.elapsed = time.Since(start)
	r.tail = tail.String()
	written := len(names(seeds)) > len(before)
	if r.err != nil && deadlineRace(r.tail, written) {
		// Go's coordinator can fail a target whose -fuzztime ran out
		// while a worker was mid-call (golang/go context race): no
		// input is written and nothing reproduces. Say so, and replay
		// the seed corpus below, with this run's finds, to be sure.
		r.race = true
		r.err = nil
	}
	if keep {
		n, err := keepNew(filepath.Join(cache, "fuzz", t.pkg, t.name), filepath.Join(t.dir, "testdata", "fuzz", t.name), start)
		r.kept = n
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("keep corpus: %w", err)
		}
	}
	if r.race {
		replay := exec.Command("go", "test", "-count=1", "-run", "^"+t.name+"$", t.pkg)
		replay.Dir = t.dir
		if out, err := replay.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("seed corpus replay after a deadline race: %w", err)
			r.tail = string(out)
		}
	}
	return r
}

// deadlineRace tells Go's end-of-fuzztime race from a finding: the only
// error is the deadline itself and no failing input was written.
func deadlineRace(tail string, written bool) bool {
	if written || strings.Contains(tail, "Failing input written") || strings.Contains(tail, "panic:") {
		return false
	}
	return strings.Contains(tail, "context deadline exceeded")
}

// names lists a directory's entries; a missing directory has none.
func names(dir string) []string {
	entries, _ := os.ReadDir(dir)
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// keepNew copies the cache's corpus entries written since start (the ones
// this run found to add coverage) into the seed corpus, leaving entries
// already there alone. Names are content hashes, so a copy never clobbers.
func keepNew(from, to string, start time.Time) (int, error) {
	entries, err := os.ReadDir(from)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.ModTime().Before(start) {
			continue
		}
		dst := filepath.Join(to, e.Name())
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return n, err
		}
		if err := os.MkdirAll(to, 0o755); err != nil {
			return n, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
