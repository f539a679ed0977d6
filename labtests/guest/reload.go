package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/director-lb/director/labtests/labplan"
)

// writeLiveConfig copies node n's selected configuration (its use_config
// variant, else its main file) to "live.<main file>" in the run directory
// and returns that name. Daemons always run on the live copy: a reload
// (SIGHUP) re-reads the path the daemon was started with, so switching
// variants must rewrite that one file.
func (r *runner) writeLiveConfig(n labplan.Node) (string, error) {
	src := n.Config
	if c, ok := r.configs[n.Name]; ok {
		src = c
	}
	body, err := os.ReadFile(filepath.Join(r.plan.Paths.Out, src))
	if err != nil {
		return "", fmt.Errorf("%s config: %w", n.Name, err)
	}
	live := "live." + n.Config
	// Write a temporary file and rename it, so a reload never reads
	// half a file.
	path := filepath.Join(r.plan.Paths.Out, live)
	if err := os.WriteFile(path+".tmp", body, 0o644); err != nil {
		return "", fmt.Errorf("%s live config: %w", n.Name, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", fmt.Errorf("%s live config: %w", n.Name, err)
	}
	return live, nil
}
