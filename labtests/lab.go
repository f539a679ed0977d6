// Package labtests boots a User-Mode Linux guest with a small network (a
// client, two load balancers, two real servers on one bridge), runs a
// declarative plan in it and returns what happened: step times, the
// client's view of the VIP and which load balancer held the VIP when.
//
// The scenario tests are behind the "lab" build tag and need root:
//
//	go test -tags lab ./labtests/ -v
package labtests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/labtests/uml"
)

// Shorthands for the shared types.
type (
	Plan    = labplan.Plan
	Params  = labplan.Params
	Step    = labplan.Step
	Results = labplan.Results
)

// guestOut is where the run directory is mounted in the guest.
const guestOut = uml.GuestOut

// guestNice is the guest's scheduling priority on the host (nice runs
// linux.uml in place, so the process group stays the same).
const guestNice = -5

// bootMargin covers boot, module loading, topology and teardown on top of
// the plan's own timeout.
const bootMargin = 45 * time.Second

// Options tune one boot.
type Options struct {
	// Console receives every line of the guest console as it arrives.
	Console func(line string)
	// Limit is the hard wall-clock limit of the boot, after which the
	// guest is killed; zero means the plan's timeout plus a boot margin.
	Limit time.Duration
	// Kernel is the guest kernel candidate Run boots (uml.Candidates);
	// empty means the lab's choice for this host.
	Kernel string
}

// Boot runs plan in a fresh guest and returns its results. The run
// directory labtests/.work/runs/<plan name>/ keeps the plan, the configs,
// the init script, results.json and the logs afterwards.
func (l *Lab) Boot(ctx context.Context, plan Plan, opts Options) (*Results, error) {
	if plan.Timeout == 0 {
		plan.Timeout = labplan.Duration(defaultTimeout(plan.Steps))
	}
	if err := plan.Validate(); err != nil {
		return nil, fmt.Errorf("plan %s: %w", plan.Name, err)
	}
	dir := l.ws.runDir(safeName(plan.Name))
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clean run dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	if err := l.writeRunDir(ctx, dir, &plan); err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit == 0 {
		limit = plan.Timeout.D() + bootMargin
	}
	consoleErr := uml.Boot(ctx, uml.Spec{
		Kernel: &l.choice.Kernel, Work: l.ws.work, RunDir: dir, Modules: plan.ModuleList(),
		Script:  uml.GuestPath(l.ws.work, l.ws.bin("guest")) + " run -plan " + guestOut + "/plan.json 2>&1",
		Limit:   limit,
		Console: opts.Console,
		Nice:    guestNice,
	})
	res, err := readResults(dir)
	if err != nil {
		return nil, errors.Join(consoleErr, err, fmt.Errorf("console:\n%s", tail(res.Logs["console"], 40)))
	}
	if res.Error != "" {
		return res, fmt.Errorf("guest: %s", res.Error)
	}
	if consoleErr != nil && uml.HaltedCleanly(res.Logs["console"]) {
		// linux.uml now and then aborts on its way out, after the plan
		// has run to its end and the kernel has halted: the results
		// are whole, so that is no failure of the test.
		return res, nil
	}
	return res, consoleErr
}

func defaultTimeout(steps []Step) time.Duration {
	total := 10 * time.Second
	for _, s := range steps {
		total += s.Duration.D()
	}
	return total
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string {
	s = strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_")
	if s == "" {
		return "run"
	}
	return s
}

// writeRunDir fills in the plan's nodes and paths, writes the daemon
// configs, plan.json and init.sh.
func (l *Lab) writeRunDir(ctx context.Context, dir string, plan *Plan) error {
	plan.Paths = labplan.Paths{Out: guestOut, GuestBin: l.guestPath(l.ws.bin("guest"))}
	plan.Nodes = nil
	for name, body := range labplan.FRRConfigs(plan.Params) {
		if plan.Files == nil {
			plan.Files = map[string]string{}
		}
		plan.Files[name] = body
	}
	for _, n := range plan.Params.LBs() {
		name, body, err := labplan.ConfigFile(plan.Params, n)
		if err != nil {
			return err
		}
		if c, ok := plan.Configs[n]; ok {
			body = c // written by the test (an imported configuration)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		node := labplan.Node{Name: n, Impl: plan.Params.Impl[n], Config: name}
		for _, v := range slices.Sorted(maps.Keys(plan.Variants)) {
			name, body, err := labplan.ConfigFile(plan.Variants[v], n)
			if err != nil {
				return fmt.Errorf("variant %s: %w", v, err)
			}
			name = safeName(v) + "." + name
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				return fmt.Errorf("write config: %w", err)
			}
			if node.Variants == nil {
				node.Variants = map[string]string{}
			}
			node.Variants[v] = name
		}
		plan.Nodes = append(plan.Nodes, node)
		if plan.Params.Impl[n] == labplan.Director && plan.Paths.DirectorBin == "" {
			bin, err := l.director(ctx)
			if err != nil {
				return fmt.Errorf("director does not build: %w", err)
			}
			plan.Paths.DirectorBin = l.guestPath(bin)
			plan.Paths.DirectorStatus = hasStatus(ctx, bin)
		}
	}
	// A keepalived plan may run director's tools (director status beside
	// ipvsadm) in exec steps: they get the binary too.
	if plan.Paths.DirectorBin == "" && slices.ContainsFunc(plan.Steps, func(s labplan.Step) bool {
		return len(s.Argv) > 0 && s.Argv[0] == "director"
	}) {
		bin, err := l.director(ctx)
		if err != nil {
			return fmt.Errorf("director does not build: %w", err)
		}
		plan.Paths.DirectorBin = l.guestPath(bin)
		plan.Paths.DirectorStatus = hasStatus(ctx, bin)
	}
	if plan.Params.EC2 {
		if err := l.writeEC2(ctx, dir, plan); err != nil {
			return err
		}
	}
	for name, body := range plan.Files {
		if name != safeName(name) {
			return fmt.Errorf("plan file name %q: use letters, digits, '.', '_' and '-'", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), b, 0o644); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// writeEC2 builds the fake EC2 region's binary and writes its seed, for
// the guest to run in host AWS.
func (l *Lab) writeEC2(ctx context.Context, dir string, plan *Plan) error {
	bin := l.ws.bin("ec2fake")
	if err := buildStatic(ctx, l.ws, "./cmd/ec2fake", bin); err != nil {
		return fmt.Errorf("ec2fake does not build: %w", err)
	}
	plan.Paths.EC2FakeBin = l.guestPath(bin)
	seed, err := labplan.EC2Seed()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, labplan.EC2SeedFile), []byte(seed), 0o644); err != nil {
		return fmt.Errorf("write ec2 seed: %w", err)
	}
	return nil
}

// readResults loads results.json and the run directory's logs. The
// returned Results is never nil, so the console survives a missing file.
func readResults(dir string) (*Results, error) {
	res := &Results{Dir: dir, Logs: map[string]string{}}
	for _, name := range []string{"console", labplan.LB1, labplan.LB2, labplan.LB3, labplan.Router + ".frr"} {
		if b, err := os.ReadFile(filepath.Join(dir, name+".log")); err == nil {
			res.Logs[name] = string(b)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return res, fmt.Errorf("guest wrote no results: %w", err)
	}
	logs := res.Logs
	if err := json.Unmarshal(b, res); err != nil {
		return res, fmt.Errorf("decode results: %w", err)
	}
	res.Logs, res.Dir = logs, dir
	return res, nil
}

// Run boots plan and fails the test if the guest or any step (not marked
// Tolerant) failed. The guest console is streamed into the test log unless
// opts supplies another Console.
func Run(t testing.TB, plan Plan, opts ...Options) *Results {
	t.Helper()
	o := Options{Console: func(line string) { t.Log(line) }}
	if len(opts) > 0 && opts[0].Console != nil {
		o.Console = opts[0].Console
	}
	if len(opts) > 0 {
		o.Kernel = opts[0].Kernel
	}
	ctx := t.Context()
	lab, err := NewLabKernel(ctx, t.Logf, o.Kernel)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	start := time.Now()
	dir := lab.ws.runDir(safeName(plan.Name))
	// A later run of the same plan reuses its run dir: keep a failed one.
	t.Cleanup(func() {
		if t.Failed() {
			keep := filepath.Join(lab.ws.work, "failed", safeName(plan.Name)+start.Format("-150405"))
			if err := os.CopyFS(keep, os.DirFS(dir)); err != nil {
				t.Logf("keeping the failed run's files: %v", err)
			} else {
				t.Logf("the failed run's files are kept in %s", keep)
			}
		}
	})
	res, err := lab.Boot(ctx, plan, o)
	t.Logf("lab %s: %v wall time, run dir %s", plan.Name, time.Since(start).Round(10*time.Millisecond), dir)
	if err != nil {
		if res != nil {
			t.Fatalf("lab %s: %v\n%s", plan.Name, err, Diagnose(res))
		}
		t.Fatalf("lab %s: %v", plan.Name, err)
	}
	var bad []string
	for _, s := range res.Failed() {
		if !s.Step.MayFail {
			bad = append(bad, fmt.Sprintf("step %d %s: %s", s.Index, s.Step, s.Err))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("lab %s (%s): %s\n%s", plan.Name, plan.Params.Describe(), strings.Join(bad, "\n"), Diagnose(res))
	}
	return res
}

// Diagnose renders what a failure message needs: the step list with times,
// the VIP timeline and the tail of each daemon's log.
func Diagnose(res *Results) string {
	var b strings.Builder
	base := res.Ready
	if base.IsZero() {
		base = res.Started
	}
	b.WriteString("steps (seconds since topology ready):\n")
	for _, s := range res.Steps {
		state := "ok"
		switch {
		case s.Skipped:
			state = "skipped"
		case !s.OK:
			state = "FAILED: " + s.Err
		}
		fmt.Fprintf(&b, "  %+8.3fs %-40s %s\n", s.Start.Sub(base).Seconds(), s.Step, state)
	}
	b.WriteString("VIP timeline:\n")
	b.WriteString(res.Timeline(base))
	for _, n := range []string{labplan.LB1, labplan.LB2, labplan.LB3, labplan.Router + ".frr"} {
		if l, ok := res.Logs[n]; ok {
			fmt.Fprintf(&b, "---- %s log (tail) ----\n%s\n", n, tail(l, 25))
		}
	}
	return b.String()
}

// RanOn is the line a figure prints first: figures depend on the host and
// the guest kernel, so every figure names both.
func RanOn(t testing.TB) string {
	t.Helper()
	lab, err := NewLab(t.Context(), t.Logf)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return fmt.Sprintf("ran on: %s; %s", lab.choice.Host, lab.choice)
}
