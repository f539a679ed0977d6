package daemon

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/vrrp"
)

// State implements control.Backend.
func (d *Daemon) State() control.State {
	d.mu.Lock()
	cfg, hash := d.cfg, d.pairHash
	running := append([]*runningInstance(nil), d.running...)
	var disps []*vrrp.Dispatcher
	for _, s := range d.sockets {
		disps = append(disps, s.disp)
	}
	d.mu.Unlock()
	st := control.State{Version: d.version, Config: cfg.File, Started: d.started, Node: cfg.Node, ConfigHash: hash, Peer: d.peerStatus(), Routing: d.routingState()}
	for _, r := range running {
		s := r.in.Stats()
		is := control.InstanceState{
			Name:           s.Name,
			VRID:           s.VRID,
			Interface:      r.cfg.Interface,
			State:          s.State.String(),
			Priority:       s.Priority,
			LastTransition: s.LastTransition,
			LastReason:     s.LastReason,
			Transitions:    s.Transitions,
			AdvertsSent:    s.AdvertsSent,
			AdvertsRecv:    s.AdvertsRecv,
			Drops:          map[string]uint64{},
		}
		if s.Master.IsValid() {
			is.Master = s.Master.String()
		}
		d.mu.Lock()
		_, is.Tracks = d.evalTracks(&r.cfg)
		d.mu.Unlock()
		for r, n := range s.Drops {
			is.Drops[string(r)] += n
		}
		if r.cloud != nil {
			cs := r.cloud.Status()
			is.Cloud = &control.CloudState{
				InstanceID: cs.InstanceID, ENI: cs.ENI, Holding: cs.Holding, Verified: cs.Verified,
				MovesInProgress: cs.MovesInProgress, Moves: cs.Moves, FailedMoves: cs.FailedMoves,
				LastError: cs.LastError, PermissionErrors: cs.PermissionErrors,
			}
			if cs.LastMoveDuration > 0 {
				is.Cloud.LastMoveDuration = cs.LastMoveDuration.String()
			}
			for _, pe := range cs.Suspended {
				is.Cloud.Suspended = append(is.Cloud.Suspended, pe.Error())
			}
		}
		st.Instances = append(st.Instances, is)
	}
	st.SyncGroups = d.groups.view()
	if c := d.vrrpClient(); c != nil {
		// The instances run in the VRRP process: it answers for them.
		ctx, cancel := context.WithTimeout(context.Background(), vrrpAskTimeout)
		ins, groups, err := c.State(ctx)
		cancel()
		if err != nil {
			d.log.Warn("vrrp process: no state", "err", err)
		}
		st.Instances, st.SyncGroups = append(st.Instances, ins...), groups
	}
	// Drops counted before an instance was known belong to no instance;
	// show them on every instance of that socket's interface.
	for _, disp := range disps {
		for r, n := range disp.Drops() {
			for i := range st.Instances {
				if st.Instances[i].Interface == disp.Interface() {
					st.Instances[i].Drops[string(r)] += n
				}
			}
		}
	}
	// Services as the dataplane last computed them: what it programs.
	// Without a dataplane (no services) there is nothing to show.
	var views []dataplane.ServiceView
	if d.dp != nil {
		views = d.dp.Table().Views
	}
	for _, v := range views {
		ss := control.ServiceState{Name: v.Name, Key: v.Key.String(), QuorumLost: v.QuorumLost, Sorry: v.Sorry}
		if len(v.Keys) > 1 {
			ss.Key += fmt.Sprintf(" +%d", len(v.Keys)-1)
			for _, k := range v.Keys {
				ss.Members = append(ss.Members, k.String())
			}
		}
		for _, r := range v.RealServers {
			rs := control.RealServerState{
				Address:          r.Addr.String(),
				ConfiguredWeight: r.Configured,
				Weight:           r.Weight,
				Registered:       r.Registered,
				Override:         r.Override,
			}
			rs.Health, rs.Reason = d.dp.Status(v.Name, r.Addr)
			ss.RealServers = append(ss.RealServers, rs)
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// RealServer implements control.Backend.
func (d *Daemon) RealServer(_ context.Context, target, action string, weight int) error {
	if d.dp == nil {
		return fmt.Errorf("no services are configured")
	}
	return d.dp.SetOverride(target, action, weight)
}

// pick returns the named instance, or all of them for "".
func (d *Daemon) pick(name string) ([]*vrrp.Instance, error) {
	all := d.instances()
	if name == "" {
		return all, nil
	}
	for _, in := range all {
		if in.Name() == name {
			return []*vrrp.Instance{in}, nil
		}
	}
	return nil, fmt.Errorf("no instance named %q", name)
}

// Failback implements control.Backend: it makes this node master of the
// instances and waits until it is.
func (d *Daemon) Failback(ctx context.Context, name string) error {
	if c := d.vrrpClient(); c != nil {
		return c.Failback(ctx, name)
	}
	ins, err := d.pick(name)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if err := in.Failback(ctx); err != nil {
			return fmt.Errorf("failback %s: %w", in.Name(), err)
		}
	}
	return waitFor(ctx, ins, "MASTER", func(s vrrp.Stats) bool { return s.State == vrrp.StateMaster })
}

// Failover implements control.Backend: it hands the instances to the peer
// and waits until the peer is master.
func (d *Daemon) Failover(ctx context.Context, name string) error {
	if c := d.vrrpClient(); c != nil {
		return c.Failover(ctx, name)
	}
	ins, err := d.pick(name)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if err := in.Failover(ctx); err != nil {
			return fmt.Errorf("failover %s: %w", in.Name(), err)
		}
	}
	return waitFor(ctx, ins, "BACKUP with the peer as master", func(s vrrp.Stats) bool {
		return s.State == vrrp.StateBackup && s.Master.IsValid()
	})
}

func waitFor(ctx context.Context, ins []*vrrp.Instance, what string, ok func(vrrp.Stats) bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		done := true
		var last vrrp.Stats
		for _, in := range ins {
			if s := in.Stats(); !ok(s) {
				done, last = false, s
				break
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s: not %s in time (state %s: %s)", last.Name, what, last.State, last.LastReason)
		case <-t.C:
		}
	}
}

// RunningConfig implements control.Backend.
func (d *Daemon) RunningConfig() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full != nil {
		return yaml.Marshal(d.full)
	}
	return yaml.Marshal(d.cfg)
}

// Reload implements control.Backend with ReloadFile.
func (d *Daemon) Reload(ctx context.Context, dryRun bool) ([]string, error) {
	changes, err := d.ReloadFile(ctx, dryRun)
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.String()
	}
	return out, err
}
