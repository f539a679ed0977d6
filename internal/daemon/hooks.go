package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/hooks"
	"github.com/director-lb/director/vrrp"
)

// hookState is what the daemon needs to turn state changes into notify
// commands and FIFO lines. Changes are only ever enqueued: nothing here
// runs a command or waits on one, so no hook can delay an advert, a timer
// or a VIP move.
type hookState struct {
	runner *hooks.Runner
	fifo   atomic.Pointer[hooks.FIFO] // nil without notify_fifo

	mu sync.Mutex // guards the last seen health below
	// rs is each real server's last known health (up or down); quorum
	// each service's last quorum state (true: lost).
	rs     map[rsKey]bool
	quorum map[string]bool
	// kick asks healthLoop for a pass of healthChanged. A pass compares
	// every real server, so a burst of check transitions (hundreds when a
	// rack goes) gets one pass, not one each: O(servers) rather than
	// O(servers x transitions), off the check worker's reader.
	kick chan struct{}
}

type rsKey struct {
	service string
	addr    netip.AddrPort
}

// openHooks starts the hook runner and the FIFO writer of cfg.
func (d *Daemon) openHooks(cfg *config.Config) error {
	d.hooks = &hookState{
		runner: hooks.New(hooks.Options{Timeout: cfg.Hooks.Timeout.D(), Queue: cfg.Hooks.Queue, Logger: d.log.With("part", "hooks")}),
		rs:     map[rsKey]bool{}, quorum: map[string]bool{}, kick: make(chan struct{}, 1),
	}
	return d.setFIFO(cfg.NotifyFIFO)
}

// setFIFO opens path as the notify FIFO (or none for ""), closing a
// previous one at another path.
func (d *Daemon) setFIFO(path string) error {
	old := d.hooks.fifo.Load()
	if old != nil && old.Path() == path {
		return nil
	}
	var f *hooks.FIFO
	if path != "" {
		var err error
		if f, err = hooks.NewFIFO(path, d.log.With("part", "hooks")); err != nil {
			return err
		}
	}
	d.hooks.fifo.Store(f)
	if old != nil {
		old.Close()
	}
	return nil
}

// reloadHooks applies a new configuration's hook settings.
func (d *Daemon) reloadHooks(cfg *config.Config) error {
	d.hooks.runner.SetLimits(cfg.Hooks.Timeout.D(), cfg.Hooks.Queue)
	return d.setFIFO(cfg.NotifyFIFO)
}

// closeHooks lets queued hooks (the instances' notify_stop) run until ctx
// ends, then kills what is left and closes the FIFO.
func (d *Daemon) closeHooks(ctx context.Context) {
	if d.hooks == nil {
		return
	}
	d.hooks.runner.Close(ctx)
	if f := d.hooks.fifo.Swap(nil); f != nil {
		f.Close()
	}
}

func (d *Daemon) fifoLine(line string) {
	if f := d.hooks.fifo.Load(); f != nil {
		f.WriteLine(line)
	}
}

// notifyState uses keepalived's words, so existing notify scripts work unchanged.
func notifyState(s vrrp.State) string {
	if s == vrrp.StateStopped {
		return "STOP"
	}
	return s.String()
}

// instanceNotifier is an instance's vrrp Notify: called on its mover's
// goroutine after the move, it only enqueues. hooks holds the instance's
// current hooks (a reload changes them live).
func (d *Daemon) instanceNotifier(name string, h *atomic.Pointer[config.StateHooks]) func(vrrp.State, uint8) {
	return func(s vrrp.State, prio uint8) {
		d.fifoLine(hooks.InstanceLine(name, notifyState(s), int(prio)))
		d.stateHooks("INSTANCE", name, h.Load(), s, []string{strconv.Itoa(int(prio))})
	}
}

// notifyGroup runs a sync group's hooks and writes its FIFO line for a
// change of the group to s: notify gets GROUP <name> <STATE>, as in
// keepalived. It never blocks; sync groups call it.
func (d *Daemon) notifyGroup(name string, h *config.StateHooks, s vrrp.State) {
	d.fifoLine(hooks.GroupLine(name, notifyState(s)))
	d.stateHooks("GROUP", name, h, s, nil)
}

// stateHooks enqueues the per-state command, then the generic notify
// (keepalived runs notify after notify_<state>), in the object's queue.
func (d *Daemon) stateHooks(kind, name string, h *config.StateHooks, s vrrp.State, extra []string) {
	if h == nil {
		return
	}
	state := notifyState(s)
	object := strings.ToLower(kind) + "/" + name
	if cmd := h.ForState(state); len(cmd) > 0 {
		d.hooks.runner.Enqueue(hooks.Job{Object: object, Kind: "notify_" + strings.ToLower(state), Argv: cmd})
	}
	if h.Notify != "" {
		argv := append([]string{h.Notify, kind, name, state}, extra...)
		d.hooks.runner.Enqueue(hooks.Job{Object: object, Kind: "notify", Argv: argv})
	}
}

// healthEvent is one real-server or quorum transition.
type healthEvent struct {
	svc *config.Service
	rs  *config.RealServer // nil for a quorum change
	up  bool
}

// kickHealthHooks asks for a healthChanged pass; it never blocks.
func (d *Daemon) kickHealthHooks() {
	if d.hooks == nil {
		return
	}
	select {
	case d.hooks.kick <- struct{}{}:
	default: // a pass is due already, and will see this change too
	}
}

// healthLoop runs healthChanged once per kick, until ctx ends.
func (d *Daemon) healthLoop(ctx context.Context) {
	if d.hooks == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.hooks.kick:
			d.healthChanged()
		}
	}
}

// healthChanged compares the dataplane's health with what was last seen
// and runs notify_up/notify_down and quorum_up/quorum_down, with FIFO
// lines. It is called after every health change (OnHealth).
func (d *Daemon) healthChanged() {
	d.mu.Lock()
	eff, dp := d.eff, d.dp
	d.mu.Unlock()
	if dp == nil || d.hooks == nil {
		return
	}
	weights := dp.Health()
	// Emitting under the lock keeps two concurrent calls' lines and jobs
	// in the order of the changes; both only enqueue.
	d.hooks.mu.Lock()
	defer d.hooks.mu.Unlock()
	for _, e := range healthEvents(eff, dp.Status, weights, d.hooks.rs, d.hooks.quorum) {
		d.healthHooks(e)
	}
}

// healthEvents is the pure part of healthChanged: it updates the last
// seen states (rs, quorum) and returns the transitions. A server's first
// known state is announced only if it is down (keepalived notifies a
// failed server, not a healthy start); unknown never counts. A service's
// first quorum state is not announced.
func healthEvents(cfg *config.Config, status func(string, netip.AddrPort) (string, string), weights map[string]checks.ServiceWeights, rs map[rsKey]bool, quorum map[string]bool) []healthEvent {
	var out []healthEvent
	up, down := checks.Up.String(), checks.Down.String()
	for i := range cfg.Services {
		s := &cfg.Services[i]
		for j := range s.RealServers {
			r := &s.RealServers[j]
			k := rsKey{s.Name, netip.AddrPortFrom(r.Addr, uint16(r.Port))}
			h, _ := status(s.Name, k.addr)
			if h != up && h != down {
				continue
			}
			isUp := h == up
			prev, seen := rs[k]
			rs[k] = isUp
			if (seen && prev != isUp) || (!seen && !isUp) {
				out = append(out, healthEvent{svc: s, rs: r, up: isUp})
			}
		}
		w, ok := weights[s.Name]
		if !ok {
			continue
		}
		prev, seen := quorum[s.Name]
		quorum[s.Name] = w.QuorumLost
		if seen && prev != w.QuorumLost {
			out = append(out, healthEvent{svc: s, up: !w.QuorumLost})
		}
	}
	return out
}

// healthHooks writes the FIFO line and enqueues the command for e.
// Commands get <service> [<address:port>] UP|DOWN after their own argv.
func (d *Daemon) healthHooks(e healthEvent) {
	s := e.svc
	proto := s.Protocol
	if proto == "" {
		proto = "tcp"
	}
	vs := hooks.ServiceAddr(netip.AddrPortFrom(s.Addr, uint16(s.Port)), proto, s.FWMark)
	if s.IsGroup() {
		vs = hooks.GroupAddr(s.Name)
	}
	word := "DOWN"
	if e.up {
		word = "UP"
	}
	if e.rs == nil {
		d.fifoLine(hooks.ServiceLine(vs, e.up))
		cmd, kind := s.QuorumDown, "quorum_down"
		if e.up {
			cmd, kind = s.QuorumUp, "quorum_up"
		}
		if len(cmd) > 0 {
			d.hooks.runner.Enqueue(hooks.Job{Object: "service/" + s.Name, Kind: kind, Argv: append(cmd[:len(cmd):len(cmd)], s.Name, word)})
		}
		return
	}
	ap := netip.AddrPortFrom(e.rs.Addr, uint16(e.rs.Port))
	d.fifoLine(hooks.RealServerLine(hooks.ServiceAddr(ap, proto, 0), vs, e.up))
	cmd, kind := e.rs.NotifyDown, "notify_down"
	if e.up {
		cmd, kind = e.rs.NotifyUp, "notify_up"
	}
	if len(cmd) > 0 {
		d.hooks.runner.Enqueue(hooks.Job{Object: fmt.Sprintf("rs/%s/%s", s.Name, ap), Kind: kind, Argv: append(cmd[:len(cmd):len(cmd)], s.Name, ap.String(), word)})
	}
}
