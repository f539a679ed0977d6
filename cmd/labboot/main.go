// Command labboot chooses the lab's guest kernel for this host and, given
// a script, boots a User-Mode Linux guest that runs it: the host's root
// read-only, the lab's work directory at /mnt/lab and -out at /mnt/out.
// It is how shell tools (the ipvsadm golden capture) boot a guest the same
// way as the lab.
//
//	go run ./cmd/labboot                      # print the host and the chosen kernel
//	go run ./cmd/labboot -out DIR -modules ip_vs,dummy -script guest.sh
//
// LAB_KERNEL=debian12|sid-pinned|sid-newest forces a candidate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/director-lb/director/labtests/uml"
)

func main() {
	work := flag.String("work", "", "the lab's work directory (default: labtests/.work in this module)")
	out := flag.String("out", "", "host directory mounted read-write at /mnt/out; with -script, the run's directory")
	script := flag.String("script", "", "shell file to run inside the guest (seen at its guest path)")
	mods := flag.String("modules", "", "comma-separated modules to load first")
	env := flag.String("env", "", "comma-separated NAME=VALUE pairs exported to the script")
	mem := flag.String("mem", "1024M", "guest memory")
	limit := flag.Duration("limit", 15*time.Minute, "kill the guest after this long")
	flag.Parse()
	if err := run(*work, *out, *script, *mods, *env, *mem, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "labboot:", err)
		os.Exit(1)
	}
}

func run(work, out, script, mods, env, mem string, limit time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: User-Mode Linux and its packages need it")
	}
	if work == "" {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
			return fmt.Errorf("not inside the director module: give -work")
		}
		work = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "labtests", ".work")
	}
	work, err := filepath.Abs(work)
	if err != nil {
		return err
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	ch, err := uml.Select(ctx, work, logf)
	if err != nil {
		return err
	}
	fmt.Printf("lab: %s\nlab: %s\n", ch.Host, ch)
	if script == "" {
		return nil
	}
	if out == "" {
		return fmt.Errorf("-script needs -out")
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return err
	}
	scriptPath, err := filepath.Abs(script)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var body strings.Builder
	for _, kv := range strings.Split(env, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&body, "export %s=%q\n", k, guestPath(work, out, v))
	}
	fmt.Fprintf(&body, "sh %s", guestPath(work, out, scriptPath))
	var modules []string
	if mods != "" {
		modules = strings.Split(mods, ",")
	}
	return uml.Boot(ctx, uml.Spec{
		Kernel: &ch.Kernel, Work: work, RunDir: out, Modules: modules, Script: body.String(),
		Mem: mem, Limit: limit, Console: func(l string) { fmt.Println(l) },
	})
}

// guestPath maps a host path under out or work to the guest's view;
// anything else (a plain value) is left as it is.
func guestPath(work, out, p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	if rel, err := filepath.Rel(out, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Join(uml.GuestOut, rel)
	}
	return uml.GuestPath(work, p)
}
