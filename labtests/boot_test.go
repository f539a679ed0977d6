//go:build lab

package labtests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestBootTimeoutLeavesNothing: a guest that overstays its limit is killed,
// with every UML process and its umid directory gone.
func TestBootTimeoutLeavesNothing(t *testing.T) {
	lab, err := NewLab(t.Context(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{Name: "boot-timeout", Params: lp.DefaultParams(lp.Keepalived), Steps: []Step{lp.Sleep(time.Minute)}}
	start := time.Now()
	_, err = lab.Boot(t.Context(), plan, Options{Limit: 8 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Boot past its limit: err = %v, want a kill", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("Boot took %v with an 8s limit", took)
	}
	dir := lab.ws.runDir("boot-timeout")
	if _, err := os.Stat(filepath.Join(dir, "uml")); !os.IsNotExist(err) {
		t.Errorf("uml dir left behind: %v", err)
	}
	if home, _ := os.UserHomeDir(); home != "" {
		if _, err := os.Stat(filepath.Join(home, ".uml")); !os.IsNotExist(err) {
			t.Errorf("~/.uml exists: %v", err)
		}
	}
	if left := umlProcesses(t); len(left) > 0 {
		t.Errorf("UML processes left: %v", left)
	}
}

// umlProcesses lists host processes running linux.uml for this run dir.
func umlProcesses(t *testing.T) []string {
	t.Helper()
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "linux.uml") && strings.Contains(cmd, "boot-timeout") {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}
