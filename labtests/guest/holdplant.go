package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/director-lb/director/labtests/labplan"
)

// stepHoldPlant: see labplan.HoldPlant.
func stepHoldPlant(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	ctx, cancel := context.WithTimeout(ctx, s.Duration.D())
	defer cancel()
	type result struct {
		out *labplan.ExecOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := execIn(ctx, s.Node, r.argv(s.Argv), s.Duration.D())
		done <- result{out, err}
	}()
	plantErr := r.plant(ctx, s.Node, s.Target, s.Interval.D(), sr)
	res := <-done
	if sr.Exec == nil {
		sr.Exec = res.out
	} else if res.out != nil {
		sr.Exec.Stderr, sr.Exec.ExitCode = res.out.Stderr, res.out.ExitCode
	}
	return errors.Join(res.err, plantErr)
}

// plant waits until the client's entry for the VIP has successor's MAC,
// then after more, and writes old's MAC into it; sr.Exec.Stdout says
// whether old held the VIP just before and after.
func (r *runner) plant(ctx context.Context, old, successor string, after time.Duration, sr *labplan.StepResult) error {
	macs, err := lbMACs()
	if err != nil {
		return err
	}
	var oldMAC net.HardwareAddr
	for m, n := range macs {
		if n == old {
			oldMAC, err = net.ParseMAC(m)
			if err != nil {
				return err
			}
		}
	}
	if oldMAC == nil {
		return fmt.Errorf("no MAC of %s", old)
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for labplan.NeighNodeAt(r.neigh.timeline(), labplan.VIP4Addr, time.Now()) != successor {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the client's entry for the VIP never had %s's MAC: %w", successor, ctx.Err())
		case <-tick.C:
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(after):
	}
	before := r.vips.holds(old, labplan.VIP4Addr)
	err = inNamespace(labplan.Client, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName("eth0")
		if err != nil {
			return err
		}
		return nh.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_REACHABLE,
			IP: net.ParseIP(labplan.VIP4Addr), HardwareAddr: oldMAC,
		})
	})
	if err != nil {
		return fmt.Errorf("plant %s's MAC in the client's entry: %w", old, err)
	}
	said := labplan.HoldPlantSaid(old, before, r.vips.holds(old, labplan.VIP4Addr))
	sr.Exec = &labplan.ExecOutput{Stdout: said + "\n"}
	r.show("", said)
	return nil
}
