package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testwait"
)

// TestMain lets a test start this binary as the check worker, as the
// daemon starts itself.
func TestMain(m *testing.M) {
	if os.Getenv("DIRECTOR_TEST_CHECK_WORKER") == "1" {
		os.Exit(run([]string{"check-worker"}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// The worker names itself: started as /proc/self/exe it would show as
// "exe" in ps and top.
func TestCheckWorkerNamesItself(t *testing.T) {
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "DIRECTOR_TEST_CHECK_WORKER=1")
	cmd.ExtraFiles = []*os.File{fromR, toW} // descriptors 3 and 4
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fromR.Close()
	toW.Close()
	defer toR.Close()
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	testwait.Eventually(t, 10*time.Second, "the worker's name in "+comm, func() bool {
		b, err := os.ReadFile(comm)
		return err == nil && strings.TrimSpace(string(b)) == checkWorkerComm
	})
	fromW.Close() // the daemon's end: the worker stops
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Errorf("the worker did not stop when its input closed")
	}
}
