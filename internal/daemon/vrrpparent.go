package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/vrrpproc"
)

// vrrpStopTimeout bounds the VRRP process's stop: its masters hand over
// (an EC2 move can take tens of seconds) before it exits.
const vrrpStopTimeout = 60 * time.Second

// vrrpAskTimeout bounds a question to the VRRP process (state, ping).
const vrrpAskTimeout = 2 * time.Second

// startVRRP starts the VRRP process with the whole configuration and waits
// until its instances run.
func (d *Daemon) startVRRP() error {
	c, err := vrrpproc.Start(vrrpproc.Config{
		Argv:   d.edges.VRRPWorker,
		Env:    vrrpproc.ChildEnv(os.Environ()),
		Logger: d.log.With("part", "vrrp"),
		OnMaster: func(instance string, master bool) {
			if d.dp != nil {
				d.dp.SetMaster(instance, master)
			}
		},
		OnEC2Call: func(op string, took time.Duration, failed bool) {
			if f := d.ec2Call; f != nil {
				var err error
				if failed {
					err = errEC2Call
				}
				f(op, took, err)
			}
		},
	}, vrrpproc.ConfigMsg{File: d.full.File, Text: d.full.Source})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.vrrp = c
	d.mu.Unlock()
	d.retrack() // the tracked services' states, at once
	return nil
}

// errEC2Call stands for an EC2 call the VRRP process saw fail: the metrics
// count it; the process logged why.
var errEC2Call = errors.New("EC2 call failed in the VRRP process")

// stopVRRP stops the VRRP process, if one runs: its masters hand over.
func (d *Daemon) stopVRRP() {
	d.mu.Lock()
	c := d.vrrp
	d.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), vrrpStopTimeout)
	defer cancel()
	c.Close(ctx)
}

// vrrpClient is the VRRP process's client, or nil.
func (d *Daemon) vrrpClient() *vrrpproc.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vrrp
}

// pushTracks sends the VRRP process the states of the services and real
// servers its instances track. Called without d.mu.
func (d *Daemon) pushTracks() {
	d.mu.Lock()
	c, full := d.vrrp, d.full
	d.mu.Unlock()
	if c == nil || full == nil {
		return
	}
	out := map[string]bool{}
	for i := range full.Instances {
		for _, t := range full.Instances[i].Tracks() {
			kind, name := t.Kind()
			if kind != "service" && kind != "real_server" {
				continue
			}
			out[vrrpproc.TrackKey(kind, name)] = d.dp == nil || d.dp.TrackUp(t.Service, t.RealServer)
		}
	}
	c.SetTracks(out)
}

// serviceTrackUp is a tracked service's or real server's state: the
// dataplane's, or in the VRRP process the daemon's word for it. Unknown
// counts as up. Called with d.mu held.
func (d *Daemon) serviceTrackUp(t *config.Track) bool {
	if d.dp != nil {
		return d.dp.TrackUp(t.Service, t.RealServer)
	}
	if d.remote != nil {
		kind, name := t.Kind()
		if up, ok := d.remote[vrrpproc.TrackKey(kind, name)]; ok {
			return up
		}
	}
	return true
}

// applySplit reloads next with a VRRP process: the process applies its
// part first (a refusal there refuses the whole reload), then this one
// applies the rest.
func (d *Daemon) applySplit(ctx context.Context, next *config.Config, dryRun bool) ([]config.Change, error) {
	d.mu.Lock()
	prev, c := d.full, d.vrrp
	d.mu.Unlock()
	changes := config.Diff(prev, next)
	if dryRun {
		return changes, nil
	}
	if c == nil {
		return nil, errors.New("the daemon is not running")
	}
	// What would refuse the daemon's part refuses the whole, before the
	// VRRP process changes anything.
	if err := d.refuseEarly(next); err != nil {
		return nil, err
	}
	logChanges(d.log, changes)
	if err := c.Reload(ctx, vrrpproc.ConfigMsg{File: next.File, Text: next.Source}); err != nil {
		d.log.Error("reload refused", "err", err)
		return nil, fmt.Errorf("configuration not reloaded, the running one stays: %w", err)
	}
	d.mu.Lock()
	d.full = next
	d.mu.Unlock()
	if _, err := d.applyLocal(ctx, next.HostPart(), false, true); err != nil {
		return changes, err
	}
	d.pushTracks()
	d.log.Info("reloaded", "changes", len(changes))
	return changes, nil
}
