package daemon

import (
	"log/slog"
	"sync"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/vrrp"
)

// GroupNotifier is told every change of a sync group's state (MASTER,
// BACKUP, FAULT, STOPPED; INIT is not reported). It is called in order,
// with the groups' lock held, from an instance goroutine or a reload: it
// must not block (queue any slow work, such as running a script).
type GroupNotifier interface {
	GroupState(group string, hooks *config.StateHooks, s vrrp.State)
}

// logGroupNotifier is the GroupNotifier used unless another is set: it
// logs the change.
type logGroupNotifier struct{ log *slog.Logger }

func (l logGroupNotifier) GroupState(group string, _ *config.StateHooks, s vrrp.State) {
	l.log.Info("sync group state change", "group", group, "state", s.String())
}

// groupHooks logs a group's state change and hands it to the hooks: the
// FIFO line and the group's notify commands, queued, never run here.
type groupHooks struct {
	d   *Daemon
	log logGroupNotifier
}

func (g groupHooks) GroupState(group string, h *config.StateHooks, s vrrp.State) {
	g.log.GroupState(group, h, s)
	if g.d.hooks != nil {
		g.d.notifyGroup(group, h, s)
	}
}

// syncGroups drives the pure vrrp.SyncGroup coordinators: instances report
// their status on their own goroutines (OnMember), the coordinator answers
// with gates, and the gates reach the members through their latest-value
// channels (SetGate), so nothing here waits for an instance. A nil
// *syncGroups (a Daemon built by hand in a test) has no groups.
type syncGroups struct {
	mu     sync.Mutex
	log    *slog.Logger
	notify GroupNotifier
	groups map[string]*vrrp.SyncGroup
	order  []string                      // group names in configuration order
	member map[string]string             // instance -> its group
	status map[string]vrrp.MemberStatus  // every running instance's last report
	ins    map[string]*vrrp.Instance     // the running instance of each name
	state  map[string]vrrp.State         // each group's last notified state
	hooks  map[string]*config.StateHooks // each group's notify hooks, as configured
}

func newSyncGroups(cfg *config.Config, n GroupNotifier, log *slog.Logger) *syncGroups {
	s := &syncGroups{
		log: log, notify: n,
		groups: map[string]*vrrp.SyncGroup{}, member: map[string]string{},
		status: map[string]vrrp.MemberStatus{}, ins: map[string]*vrrp.Instance{}, state: map[string]vrrp.State{},
	}
	s.configure(cfg)
	return s
}

// gateFor is the gate an instance about to start must begin with.
func (s *syncGroups) gateFor(name string) vrrp.GroupGate {
	if s == nil {
		return vrrp.GateFree
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.member[name]; ok {
		return s.groups[g].Gate()
	}
	return vrrp.GateFree
}

// register makes in the running instance of its name, and gives it the
// current gate (which may have changed since it was prepared).
func (s *syncGroups) register(in *vrrp.Instance) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := in.Name()
	s.ins[name] = in
	delete(s.status, name)
	if g, ok := s.member[name]; ok {
		s.apply(s.groups[g].Report(name, vrrp.MemberStatus{}))
		in.SetGate(s.groups[g].Gate())
		s.notifyChange(g)
	}
}

// unregister forgets in once it has stopped, unless a newer instance of
// the same name has replaced it.
func (s *syncGroups) unregister(in *vrrp.Instance) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ins[in.Name()] == in {
		delete(s.ins, in.Name())
		delete(s.status, in.Name())
	}
}

// report is an instance's OnMember: it passes the status to the group and
// the group's answer to the members.
func (s *syncGroups) report(in *vrrp.Instance, ms vrrp.MemberStatus) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := in.Name()
	if s.ins[name] != in {
		return // an instance being replaced: its successor speaks for the name
	}
	s.status[name] = ms
	g, ok := s.member[name]
	if !ok {
		return
	}
	s.apply(s.groups[g].Report(name, ms))
	s.notifyChange(g)
}

// configure moves to cfg's groups. Members keep their statuses, so a group
// added around instances already in one state, or a member added or
// removed, changes nothing for the members that stay (see
// vrrp.SyncGroup.SetMembers). A reload calls it before it stops removed
// instances, so that their stop does not move the group they left.
func (s *syncGroups) configure(cfg *config.Config) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	s.order = s.order[:0]
	s.member = map[string]string{}
	s.hooks = map[string]*config.StateHooks{}
	for i := range cfg.SyncGroups {
		s.hooks[cfg.SyncGroups[i].Name] = &cfg.SyncGroups[i].StateHooks
	}
	for _, gc := range cfg.SyncGroups {
		for _, n := range gc.Instances {
			s.member[n] = gc.Name
		}
	}
	var cmds []vrrp.GateCommand
	var changed []string
	for _, gc := range cfg.SyncGroups {
		keep[gc.Name] = true
		s.order = append(s.order, gc.Name)
		changed = append(changed, gc.Name)
		if g, ok := s.groups[gc.Name]; ok {
			cmds = append(cmds, g.SetMembers(gc.Instances, s.status)...)
			continue
		}
		g := vrrp.NewSyncGroup(gc.Name, gc.Instances)
		s.groups[gc.Name] = g
		s.state[gc.Name] = vrrp.StateInit
		for _, n := range gc.Instances {
			if st, ok := s.status[n]; ok {
				g.Report(n, st)
			}
		}
		// The members were free until now: every one needs the gate.
		cmds = append(cmds, g.Commands()...)
	}
	for name, g := range s.groups {
		if keep[name] {
			continue
		}
		for _, n := range g.Members() {
			cmds = append(cmds, vrrp.GateCommand{Member: n, Gate: vrrp.GateFree})
		}
		delete(s.groups, name)
		delete(s.state, name)
	}
	// An instance that moved from one group to another is freed by the
	// first and gated by the second: only the gate of the group it is in
	// now counts.
	var gated []vrrp.GateCommand
	for _, c := range cmds {
		switch {
		case c.Gate != vrrp.GateFree:
			gated = append(gated, c)
		case s.member[c.Member] == "":
			s.apply([]vrrp.GateCommand{c})
		}
	}
	s.apply(gated)
	for _, g := range changed {
		s.notifyChange(g)
	}
}

// apply sends gates to the running members; a member not running yet gets
// its gate when it starts (gateFor, register).
func (s *syncGroups) apply(cmds []vrrp.GateCommand) {
	for _, c := range cmds {
		if in := s.ins[c.Member]; in != nil {
			in.SetGate(c.Gate)
		}
	}
}

func (s *syncGroups) notifyChange(group string) {
	st := s.groups[group].State()
	if st == s.state[group] || st == vrrp.StateInit {
		return
	}
	s.state[group] = st
	s.notify.GroupState(group, s.hooks[group], st)
}

// view is every group for `director state`.
func (s *syncGroups) view() []control.SyncGroupState {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []control.SyncGroupState
	for _, name := range s.order {
		g := s.groups[name]
		gs := control.SyncGroupState{Name: name, State: g.State().String(), Gate: g.Gate().String()}
		for _, m := range g.Members() {
			st := g.Status(m)
			gs.Members = append(gs.Members, control.SyncGroupMember{Name: m, State: st.State.String(), Ready: st.Ready})
		}
		out = append(out, gs)
	}
	return out
}
