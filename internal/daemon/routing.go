package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/director-lb/director/internal/atomicfile"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/ipvs/ipvsadm"
)

// RoutingDevice is the interface the routed VIPs live on;
// *routing.Device implements it.
type RoutingDevice interface {
	SetAddresses([]netip.Addr) error
	Remove() error
}

// routed is routed mode's running part: the VIP device, the announcer
// behind its controller, the operator's drain and a drain under way.
type routed struct {
	ctl  *routing.Controller
	dev  RoutingDevice
	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	cfg      *config.Routing
	drain    routing.Drain // the operator's (drain-node), kept across restarts
	stopping bool          // a stop drains: withdraw, whatever the operator said
	progress *routing.DrainProgress
	// drainStop ends the drain watch under way; nil when none runs.
	drainStop context.CancelFunc
	drainDone chan struct{}
}

// drainFile keeps drain-node across restarts, beside the decisions.
func drainFile(cfg *config.Config) string {
	if cfg.Decisions.File == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(cfg.Decisions.File), "node-drain")
}

// loadDrain reads a drain-node kept by an earlier run: a drained node
// stays drained through a restart or reboot until undrain-node, so that
// maintenance that reboots never announces a half-ready node.
func loadDrain(path string) routing.Drain {
	if path == "" {
		return routing.Serving
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return routing.Serving
	}
	switch strings.TrimSpace(string(b)) {
	case "withdrawn":
		return routing.Withdrawn
	case "depreferred":
		return routing.Depreferred
	}
	return routing.Serving
}

func saveDrain(path string, d routing.Drain) error {
	if path == "" {
		return nil
	}
	if d == routing.Serving {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("undrain: %w", err)
		}
		return nil
	}
	return atomicfile.Write(path, []byte(d.String()+"\n"), 0o600)
}

// drainMode is what drain-node does under r: withdraw or deprefer.
func drainMode(r *config.Routing) routing.Drain {
	if r.Drain == "deprefer" {
		return routing.Depreferred
	}
	return routing.Withdrawn
}

// startRouting puts the VIPs on their device, starts the announcer and
// the loop that keeps the routes in step with the node's fitness.
func (d *Daemon) startRouting(ctx context.Context, cfg *config.Config) error {
	r := cfg.Routing
	if d.edges.EnsureRoutingDevice == nil || d.edges.NewAnnouncer == nil {
		return errors.New("routing: no routing edges")
	}
	dev, err := d.edges.EnsureRoutingDevice(r.Device, r.Addrs)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	ann, err := d.edges.NewAnnouncer(ctx, r, d.log.With("part", "routing"))
	if err != nil {
		dev.Remove()
		return fmt.Errorf("routing: %w", err)
	}
	rt := &routed{
		ctl: routing.NewController(r, ann, d.log.With("part", "routing")), dev: dev,
		kick: make(chan struct{}, 1), done: make(chan struct{}), cfg: r,
		drain: loadDrain(drainFile(cfg)),
	}
	if rt.drain != routing.Serving {
		d.log.Warn("routing: node drained by drain-node before the restart; undrain-node announces it again", "drain", rt.drain.String())
	}
	for _, t := range r.Track {
		if t.Interface != "" {
			if _, err := d.watchCarrier(t.Interface); err != nil {
				ann.Close(ctx)
				dev.Remove()
				return fmt.Errorf("routing: track: %w", err)
			}
		}
	}
	lctx, stop := context.WithCancel(context.Background())
	rt.stop = stop
	d.mu.Lock()
	d.routed = rt
	d.mu.Unlock()
	go d.routingLoop(lctx, rt)
	d.kickRouting()
	return nil
}

// routingRetry is how often a failed announcement is tried again.
const routingRetry = 2 * time.Second

// routingLoop announces after every change of the inputs and retries a
// failed announcement.
func (d *Daemon) routingLoop(ctx context.Context, rt *routed) {
	defer close(rt.done)
	t := time.NewTicker(routingRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.kick:
			d.updateRouting(ctx, rt)
		case <-t.C:
			if err := rt.ctl.Retry(ctx); err != nil {
				d.log.Error("routing: announcement failed, will retry", "err", err)
			}
		}
	}
}

// kickRouting makes the routing loop decide again; it never blocks.
func (d *Daemon) kickRouting() {
	d.mu.Lock()
	rt := d.routed
	d.mu.Unlock()
	if rt == nil {
		return
	}
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// updateRouting decides and announces from the inputs now.
func (d *Daemon) updateRouting(ctx context.Context, rt *routed) {
	in := d.routingInputs(rt)
	if err := rt.ctl.Update(ctx, in); err != nil {
		d.log.Error("routing: announcement failed, will retry", "err", err)
	}
}

// routingInputs gathers the decision's inputs: the services' quorum per
// VIP, the routing tracks, the drain.
func (d *Daemon) routingInputs(rt *routed) routing.Inputs {
	rt.mu.Lock()
	r := rt.cfg
	in := routing.Inputs{Drain: rt.drain}
	if rt.stopping {
		in.Drain = drainMode(r)
	}
	rt.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	in.QuorumLost = map[netip.Addr][]string{}
	for _, a := range r.Addrs {
		for _, s := range d.cfg.RoutedServices(a) {
			if d.dp != nil && !d.dp.TrackUp(s, "") {
				in.QuorumLost[a] = append(in.QuorumLost[a], s)
			}
		}
	}
	// The tracks as an instance's with weight 0: any down is a fault.
	zero := 0
	ic := config.Instance{Track: slices.Clone(r.Track)}
	for i := range ic.Track {
		ic.Track[i].Weight = &zero
	}
	_, views := d.evalTracks(&ic)
	for _, v := range views {
		if v.Fault {
			in.TracksDown = append(in.TracksDown, v.Kind+" "+v.Name)
		}
	}
	return in
}

// stopRouting withdraws everything, stops the announcer and takes the
// VIPs off their device.
func (d *Daemon) stopRouting(ctx context.Context) error {
	d.mu.Lock()
	rt := d.routed
	d.routed = nil
	d.mu.Unlock()
	if rt == nil {
		return nil
	}
	rt.mu.Lock()
	if rt.drainStop != nil {
		rt.drainStop()
	}
	rt.mu.Unlock()
	rt.stop()
	<-rt.done
	err := rt.ctl.Close(ctx)
	return errors.Join(err, rt.dev.Remove())
}

// drainForStop is a stop's first step in routed mode: the routes are
// withdrawn (or depreferred) and the traffic watched until it has left or
// drain_timeout passed, so that a systemd stop loses no connection.
func (d *Daemon) drainForStop() {
	d.mu.Lock()
	rt := d.routed
	d.mu.Unlock()
	if rt == nil {
		return
	}
	rt.mu.Lock()
	// Drained by drain-node, and not still draining: nothing is left.
	already := rt.drain == drainMode(rt.cfg) && (rt.progress == nil || rt.progress.State != "draining")
	rt.stopping = true
	rt.mu.Unlock()
	if already {
		d.log.Info("routing: stopping a node drained before")
	}
	d.updateRouting(context.Background(), rt)
	if already {
		return
	}
	d.log.Info("routing: stopping: draining first")
	done := d.watchDrain(rt, drainMode(rt.cfg))
	<-done
}

// watchDrain starts watching a drain (replacing one under way) and returns
// a channel closed when it is over.
func (d *Daemon) watchDrain(rt *routed, mode routing.Drain) <-chan struct{} {
	rt.mu.Lock()
	if stop, done := rt.drainStop, rt.drainDone; stop != nil {
		rt.mu.Unlock()
		stop()
		<-done
		rt.mu.Lock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	timeout := rt.cfg.DrainTimeout.D()
	vips := slices.Clone(rt.cfg.Addrs)
	dr := routing.NewDrainer(mode, time.Now(), timeout, routing.DrainQuiet)
	p, _ := dr.Observe(time.Now(), routing.Traffic{ActiveConns: 1})
	rt.progress, rt.drainStop, rt.drainDone = &p, cancel, done
	rt.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			tr, err := d.traffic(vips)
			now := time.Now()
			var fin bool
			if err != nil {
				p, fin = dr.Fail(now, err), true
			} else {
				p, fin = dr.Observe(now, tr)
			}
			rt.mu.Lock()
			if ctx.Err() == nil { // not undrained meanwhile
				rt.progress = &p
			}
			rt.mu.Unlock()
			if fin {
				d.log.Info("routing: drain over", "state", p.State, "result", p.Result)
				return
			}
		}
	}()
	return done
}

// traffic sums IPVS's counters over the services of vips.
func (d *Daemon) traffic(vips []netip.Addr) (routing.Traffic, error) {
	if d.edges.ReadIPVS == nil {
		return routing.Traffic{}, errors.New("no IPVS reader")
	}
	s, err := d.edges.ReadIPVS()
	if err != nil {
		return routing.Traffic{}, err
	}
	var t routing.Traffic
	for _, svc := range s.Services {
		if svc.FWMark != 0 || !slices.Contains(vips, svc.Address) {
			continue
		}
		t.InPackets += svc.Stats.InPkts
		for _, dst := range svc.Destinations {
			t.ActiveConns += uint64(dst.ActiveConns)
		}
	}
	return t, nil
}

// DrainNode implements control.Backend: the node's routes are withdrawn
// (or depreferred), the drain is kept across restarts, and the traffic is
// watched; state shows the progress.
func (d *Daemon) DrainNode(ctx context.Context) (routing.DrainProgress, error) {
	d.mu.Lock()
	rt, cfg := d.routed, d.cfg
	d.mu.Unlock()
	if rt == nil {
		return routing.DrainProgress{}, errors.New("this node is not in routed mode (no routing section)")
	}
	mode := drainMode(rt.cfg)
	rt.mu.Lock()
	rt.drain = mode
	rt.mu.Unlock()
	if err := saveDrain(drainFile(cfg), mode); err != nil {
		d.log.Error("routing: drain not kept for a restart", "err", err)
	}
	d.log.Info("routing: drain-node", "mode", mode.String())
	d.updateRouting(ctx, rt)
	d.watchDrain(rt, mode)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return *rt.progress, nil
}

// UndrainNode implements control.Backend: the routes are announced again.
func (d *Daemon) UndrainNode(ctx context.Context) error {
	d.mu.Lock()
	rt, cfg := d.routed, d.cfg
	d.mu.Unlock()
	if rt == nil {
		return errors.New("this node is not in routed mode (no routing section)")
	}
	rt.mu.Lock()
	rt.drain = routing.Serving
	if rt.drainStop != nil {
		rt.drainStop()
		rt.drainStop = nil
	}
	rt.progress = nil
	rt.mu.Unlock()
	if err := saveDrain(drainFile(cfg), routing.Serving); err != nil {
		return err
	}
	d.log.Info("routing: undrain-node")
	d.updateRouting(ctx, rt)
	return nil
}

// routingState is routed mode for state.
func (d *Daemon) routingState() *control.RoutingState {
	d.mu.Lock()
	rt := d.routed
	d.mu.Unlock()
	if rt == nil {
		return nil
	}
	st := rt.ctl.Status()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rs := &control.RoutingState{Mode: rt.cfg.Mode, Drain: rt.drain.String(), VIPs: st.VIPs, Sessions: st.Sessions, LastError: st.LastError}
	if rt.stopping {
		rs.Drain = "stopping"
	}
	if rt.progress != nil {
		p := *rt.progress
		rs.DrainProgress = &p
	}
	return rs
}

// reloadRouting moves routed mode from prev to next: started, stopped,
// restarted (a new mode or BGP identity) or reconfigured in place.
func (d *Daemon) reloadRouting(ctx context.Context, prev, next *config.Config) error {
	o, n := prev.Routing, next.Routing
	switch {
	case o == nil && n == nil:
		return nil
	case n == nil:
		return d.stopRouting(ctx)
	case o == nil:
		return d.startRouting(ctx, next)
	case o.Mode != n.Mode || o.RouterID != n.RouterID || o.ASN != n.ASN || o.Device != n.Device:
		if err := d.stopRouting(ctx); err != nil {
			d.log.Warn("routing: stopping the old announcer", "err", err)
		}
		return d.startRouting(ctx, next)
	case reflect.DeepEqual(o, n):
		return nil
	}
	d.mu.Lock()
	rt := d.routed
	d.mu.Unlock()
	if rt == nil {
		return d.startRouting(ctx, next)
	}
	var errs []error
	if !slices.Equal(o.Addrs, n.Addrs) {
		if err := rt.dev.SetAddresses(n.Addrs); err != nil {
			errs = append(errs, fmt.Errorf("routing: %w", err))
		}
	}
	for _, t := range n.Track {
		if t.Interface != "" {
			if _, err := d.watchCarrier(t.Interface); err != nil {
				errs = append(errs, fmt.Errorf("routing: track: %w", err))
			}
		}
	}
	rt.mu.Lock()
	rt.cfg = n
	rt.mu.Unlock()
	if err := rt.ctl.SetConfig(ctx, n); err != nil {
		errs = append(errs, err)
	}
	d.kickRouting()
	return errors.Join(errs...)
}

// defaultReadIPVS reads the kernel's IPVS services with their counters.
func defaultReadIPVS() (*ipvsadm.Snapshot, error) {
	return ipvsadm.KernelSource{}.Read(ipvsadm.PartServices)
}
