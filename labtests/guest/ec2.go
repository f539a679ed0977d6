package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// startEC2 runs the fake EC2 region in host AWS and waits until its API
// and every metadata port accept connections, so that a daemon started
// right after finds them.
func (r *runner) startEC2(ctx context.Context) error {
	if r.plan.Paths.EC2FakeBin == "" {
		return fmt.Errorf("plan wants EC2 but names no ec2fake binary")
	}
	logf, err := os.OpenFile(filepath.Join(r.plan.Paths.Out, labplan.AWS+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("ec2fake log: %w", err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", labplan.AWS}, labplan.EC2FakeArgv(r.plan.Paths)...)...)
	cmd.Env = []string{guestPath}
	if err := r.procs.start(labplan.AWS, cmd, logf); err != nil {
		return err
	}
	ports := []int{labplan.EC2Port}
	for _, n := range labplan.EC2Nodes() {
		ports = append(ports, n.IMDSPort)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, port := range ports {
		addr := net.JoinHostPort(labplan.EC2Addr(), strconv.Itoa(port))
		if err := waitListening(ctx, addr); err != nil {
			return fmt.Errorf("ec2fake: %w", err)
		}
	}
	r.log.Info("fake EC2 up", "endpoint", labplan.EC2Endpoint())
	return nil
}

// waitListening dials addr from the client's namespace until it answers.
func waitListening(ctx context.Context, addr string) error {
	for {
		c, err := dialIn(labplan.Client, addr, 1)
		if err == nil {
			for _, x := range c {
				x.Close()
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not listening: %w", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
