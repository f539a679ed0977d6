package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	stMaster = MemberStatus{State: StateMaster}
	stBackup = MemberStatus{State: StateBackup}
	stReady  = MemberStatus{State: StateBackup, Ready: true}
	stFault  = MemberStatus{State: StateFault}
	stStop   = MemberStatus{State: StateStopped}
)

// groupStep is one event for the coordinator: a member's report, or (with
// members set) a new membership.
type groupStep struct {
	member  string
	status  MemberStatus
	members []string
	known   map[string]MemberStatus // statuses of added members
	// want: the commands returned, the gate and the group state after.
	cmds  []GateCommand
	gate  GroupGate
	state State
}

func cmdsFor(g GroupGate, members ...string) []GateCommand {
	var out []GateCommand
	for _, m := range members {
		out = append(out, GateCommand{Member: m, Gate: g})
	}
	return out
}

func TestSyncGroupCoordinator(t *testing.T) {
	// Both members master: the group is open and master.
	allMaster := []groupStep{
		{member: "out", status: stMaster, gate: GateHold, state: StateInit},
		{member: "in", status: stMaster, cmds: cmdsFor(GateOpen, "out", "in"), gate: GateOpen, state: StateMaster},
	}
	tests := []struct {
		name    string
		members []string
		steps   []groupStep
	}{
		{"a member goes FAULT: all leave master", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{member: "in", status: stFault, cmds: cmdsFor(GateHold, "out", "in"), gate: GateHold, state: StateFault},
			// out steps down; the group stays FAULT until in is back.
			groupStep{member: "out", status: stBackup, gate: GateHold, state: StateFault},
			groupStep{member: "in", status: stBackup, gate: GateHold, state: StateBackup},
			groupStep{member: "in", status: stReady, gate: GateHold, state: StateBackup},
			groupStep{member: "out", status: stReady, cmds: cmdsFor(GateOpen, "out", "in"), gate: GateOpen, state: StateBackup},
		)},
		{"a member hears a stronger master: all backup", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{member: "out", status: stBackup, cmds: cmdsFor(GateHold, "out", "in"), gate: GateHold, state: StateBackup},
			groupStep{member: "in", status: stBackup, gate: GateHold, state: StateBackup},
		)},
		{"all become master together", []string{"out", "in", "dmz"}, []groupStep{
			{member: "out", status: stBackup, gate: GateHold, state: StateInit},
			{member: "in", status: stBackup, gate: GateHold, state: StateInit},
			{member: "dmz", status: stBackup, gate: GateHold, state: StateBackup},
			// out's and dmz's timers expire; in still hears a master.
			{member: "out", status: stReady, gate: GateHold, state: StateBackup},
			{member: "dmz", status: stReady, gate: GateHold, state: StateBackup},
			// in's master went away too: now every member goes.
			{member: "in", status: stReady, cmds: cmdsFor(GateOpen, "out", "in", "dmz"), gate: GateOpen, state: StateBackup},
			{member: "out", status: stMaster, gate: GateOpen, state: StateBackup},
			{member: "in", status: stMaster, gate: GateOpen, state: StateBackup},
			{member: "dmz", status: stMaster, gate: GateOpen, state: StateMaster},
		}},
		{"a ready member loses its readiness: the gate stays shut", []string{"out", "in"}, []groupStep{
			{member: "out", status: stReady, gate: GateHold, state: StateInit},
			{member: "out", status: stBackup, gate: GateHold, state: StateInit},
			{member: "in", status: stReady, gate: GateHold, state: StateBackup},
		}},
		{"one member stops: the others leave master", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{member: "in", status: stStop, cmds: cmdsFor(GateHold, "out", "in"), gate: GateHold, state: StateStopped},
		)},
		{"reports of non-members are ignored", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{member: "web", status: stFault, gate: GateOpen, state: StateMaster},
		)},
		{"reload adds a member already master: no command to the others", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{members: []string{"out", "in", "dmz"}, known: map[string]MemberStatus{"dmz": stMaster},
				cmds: cmdsFor(GateOpen, "dmz"), gate: GateOpen, state: StateMaster},
		)},
		{"reload removes a member: it is set free, the others see nothing", []string{"out", "in", "dmz"}, []groupStep{
			{member: "out", status: stMaster, gate: GateHold, state: StateInit},
			{member: "in", status: stMaster, gate: GateHold, state: StateInit},
			{member: "dmz", status: stMaster, cmds: cmdsFor(GateOpen, "out", "in", "dmz"), gate: GateOpen, state: StateMaster},
			{members: []string{"out", "in"}, cmds: cmdsFor(GateFree, "dmz"), gate: GateOpen, state: StateMaster},
		}},
		{"reload adds a backup member to a master group: all leave master", []string{"out", "in"}, append(slices.Clone(allMaster),
			groupStep{members: []string{"out", "in", "dmz"}, known: map[string]MemberStatus{"dmz": stBackup},
				cmds: cmdsFor(GateHold, "out", "in", "dmz"), gate: GateHold, state: StateBackup},
		)},
		{"reload removes the faulted member: the rest may go master", []string{"out", "in", "dmz"}, []groupStep{
			{member: "out", status: stReady, gate: GateHold, state: StateInit},
			{member: "in", status: stReady, gate: GateHold, state: StateInit},
			{member: "dmz", status: stFault, gate: GateHold, state: StateFault},
			{members: []string{"out", "in"}, cmds: append(cmdsFor(GateFree, "dmz"), cmdsFor(GateOpen, "out", "in")...), gate: GateOpen, state: StateBackup},
		}},
		{"a group made of backups stays shut: no transition", []string{"out", "in"}, []groupStep{
			{member: "out", status: stBackup, gate: GateHold, state: StateInit},
			{member: "in", status: stBackup, gate: GateHold, state: StateBackup},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewSyncGroup("nat", tt.members)
			if g.Gate() != GateHold || g.State() != StateInit {
				t.Fatalf("new group: gate %s, state %s; want hold, INIT", g.Gate(), g.State())
			}
			for i, s := range tt.steps {
				var got []GateCommand
				if s.members != nil {
					got = g.SetMembers(s.members, s.known)
				} else {
					got = g.Report(s.member, s.status)
				}
				if !slices.Equal(got, s.cmds) {
					t.Fatalf("step %d: commands %v, want %v", i, got, s.cmds)
				}
				if g.Gate() != s.gate || g.State() != s.state {
					t.Fatalf("step %d: gate %s, state %s; want %s, %s", i, g.Gate(), g.State(), s.gate, s.state)
				}
			}
		})
	}
}

// A gated Backup whose timer expires reports ready instead of taking over;
// the open gate then makes it Master.
func TestMachineGatedTimerOnlyReady(t *testing.T) {
	m := NewMachine(cfg(100))
	m.SetGate(t0, GateHold)
	m.Start(t0)
	now := m.Deadline()
	expect(t, "expiry under hold", m.Timer(now))
	expectState(t, m, StateBackup)
	if !m.Ready() {
		t.Fatal("not ready after the master down timer expired")
	}
	expectDeadline(t, m, time.Time{})
	expect(t, "open", m.SetGate(now, GateOpen), send(100), take, trans(StateBackup, StateMaster, "sync group"))
}

// An advert from a live Master takes readiness away.
func TestMachineGatedAdvertClearsReady(t *testing.T) {
	m := NewMachine(cfg(100))
	m.SetGate(t0, GateHold)
	m.Start(t0)
	m.Advert(t0, Advert{Src: addrHigh, Priority: 150, Interval: time.Second})
	now := m.Deadline()
	m.Timer(now)
	if m.MasterAddr().IsValid() {
		t.Errorf("ready, yet the master %v it last heard is still shown", m.MasterAddr())
	}
	m.Advert(now, Advert{Src: addrHigh, Priority: 150, Interval: time.Second})
	if m.Ready() {
		t.Fatal("still ready while a stronger master advertises")
	}
	expect(t, "open while not ready", m.SetGate(now, GateOpen))
	expectState(t, m, StateBackup)
}

// A gated Backup that is open when its timer expires takes over at once.
func TestMachineGatedOpenTimer(t *testing.T) {
	m := NewMachine(cfg(100))
	m.SetGate(t0, GateOpen)
	m.Start(t0)
	expect(t, "expiry under open", m.Timer(m.Deadline()), send(100), take, trans(StateBackup, StateMaster, "sync group ready"))
}

// Hold makes a Master step down break-before-make: priority 0 and the
// VIPs released at once, no return to Master while held.
func TestMachineHoldStepsMasterDown(t *testing.T) {
	m, now := master(t, cfg(100))
	expect(t, "hold", m.SetGate(now, GateHold), send(0), trans(StateMaster, StateBackup, "sync group"), release)
	if _, err := m.Failback(now); err != ErrGroupHold {
		t.Fatalf("failback under hold: %v, want ErrGroupHold", err)
	}
	later := now.Add(m.MasterDownInterval())
	expect(t, "nobody took over", m.Timer(later))
	expectState(t, m, StateBackup)
	if !m.Ready() {
		t.Fatal("not ready after its master down interval")
	}
	expect(t, "free again", m.SetGate(later, GateFree), send(100), take, trans(StateBackup, StateMaster, "left its sync group"))
}

// A group member that hears a stronger Master lets its VIPs go at once,
// where a free instance keeps them until the successor has surely taken
// them (make-before-break): in a group, keeping one would split it.
func TestMachineGroupMemberPreemptedReleasesAtOnce(t *testing.T) {
	for _, g := range []GroupGate{GateFree, GateOpen} {
		m := NewMachine(cfg(100))
		m.SetGate(t0, g)
		m.Start(t0)
		now := m.Deadline()
		m.Timer(now)
		expectState(t, m, StateMaster)
		acts := m.Advert(now, Advert{Src: addrHigh, Priority: 150, Interval: time.Second})
		released := slices.ContainsFunc(acts, func(a Action) bool { return a.Kind == ActReleaseVIPs })
		if want := g != GateFree; released != want {
			t.Errorf("gate %s: preempted master released its VIPs at once = %v, want %v (%v)", g, released, want, acts)
		}
	}
}

// A gated owner does not claim at start.
func TestMachineGatedOwner(t *testing.T) {
	m := NewMachine(cfg(255))
	m.SetGate(t0, GateHold)
	expect(t, "start", m.Start(t0), trans(StateInit, StateBackup, "owner"))
	expect(t, "timer", m.Timer(t0))
	if !m.Ready() {
		t.Fatal("owner not ready")
	}
}

// simGroup runs machines and their group in lockstep, as the daemon does:
// after every event each member's status is reported and the commands
// applied until nothing changes.
type simGroup struct {
	t *testing.T
	g *SyncGroup
	m map[string]*Machine
}

func (s *simGroup) settle(now time.Time) {
	for range 10 {
		var cmds []GateCommand
		for _, n := range s.g.Members() {
			m := s.m[n]
			cmds = append(cmds, s.g.Report(n, MemberStatus{State: m.State(), Ready: m.Ready()})...)
		}
		if cmds == nil {
			return
		}
		for _, c := range cmds {
			s.m[c.Member].SetGate(now, c.Gate)
		}
	}
	s.t.Fatal("group did not settle")
}

func (s *simGroup) states() []State {
	var out []State
	for _, n := range s.g.Members() {
		out = append(out, s.m[n].State())
	}
	return out
}

// End to end on one node: both members become master together; when one
// loses its link, the other leaves MASTER at once; when it returns, both
// become master again together.
func TestSyncGroupWithMachines(t *testing.T) {
	s := &simGroup{t: t, g: NewSyncGroup("nat", []string{"out", "in"}), m: map[string]*Machine{}}
	out, in := NewMachine(cfg(100)), NewMachine(cfg(100))
	s.m["out"], s.m["in"] = out, in
	for _, m := range s.m {
		m.SetGate(t0, GateHold)
		m.Start(t0)
	}
	s.settle(t0)
	// in still hears a master; out's timer expires first.
	in.Advert(at(time.Second), Advert{Src: addrHigh, Priority: 150, Interval: time.Second})
	now := out.Deadline()
	out.Timer(now)
	s.settle(now)
	if got := s.states(); !slices.Equal(got, []State{StateBackup, StateBackup}) {
		t.Fatalf("out went master alone: %v", got)
	}
	now = in.Deadline()
	in.Timer(now)
	s.settle(now)
	if got := s.states(); !slices.Equal(got, []State{StateMaster, StateMaster}) || s.g.State() != StateMaster {
		t.Fatalf("after both timers: %v (group %s), want both MASTER together", got, s.g.State())
	}
	in.LinkDown(now)
	s.settle(now)
	if got := s.states(); !slices.Equal(got, []State{StateBackup, StateFault}) || s.g.State() != StateFault {
		t.Fatalf("after in's link loss: %v (group %s), want out BACKUP", got, s.g.State())
	}
	in.LinkUp(now)
	s.settle(now)
	for range 4 {
		now = now.Add(time.Second)
		out.Timer(now)
		in.Timer(now)
		s.settle(now)
	}
	if got := s.states(); !slices.Equal(got, []State{StateMaster, StateMaster}) {
		t.Fatalf("after in's link returned: %v, want both MASTER", got)
	}
}

// groupDriver is the daemon's glue in miniature: members report on their
// goroutines, the coordinator answers through SetGate.
type groupDriver struct {
	mu  sync.Mutex
	g   *SyncGroup
	ins map[string]*Instance
}

func (d *groupDriver) report(name string, ms MemberStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.g.Report(name, ms) {
		d.ins[c.Member].SetGate(c.Gate)
	}
}

// groupNode is one node with two grouped instances on one segment: out
// (VRID 7) and in (VRID 8).
type groupNode struct {
	out, in           *Instance
	outMover, inMover *logMover
}

func startGroupNode(t *testing.T, w *wire, ev *eventLog, node, addr string, prio uint8) *groupNode {
	t.Helper()
	a := netip.MustParseAddr(addr)
	n := &wireNode{w: w, addr: a}
	d := &groupDriver{g: NewSyncGroup("nat", []string{"out", "in"}), ins: map[string]*Instance{}}
	gn := &groupNode{outMover: &logMover{name: node + ".out", log: ev}, inMover: &logMover{name: node + ".in", log: ev}}
	mk := func(name string, vrid uint8, vip string, mv *logMover) *Instance {
		return NewInstance(InstanceConfig{
			Name: name, VRID: vrid,
			Machine:   MachineConfig{Version: V3, Priority: prio, Interval: 20 * time.Millisecond, Preempt: true},
			Addresses: []netip.Addr{netip.MustParseAddr(vip)},
			Group:     netip.MustParseAddr("224.0.0.18"),
			Gate:      GateHold,
			OnMember:  func(ms MemberStatus) { d.report(name, ms) },
			Logger:    quietLog(),
		}, n, mv)
	}
	gn.out, gn.in = mk("out", 7, "192.0.2.10", gn.outMover), mk("in", 8, "10.0.0.1", gn.inMover)
	d.ins["out"], d.ins["in"] = gn.out, gn.in
	n.disp = NewDispatcher(n, "eth0", netip.MustParseAddr("224.0.0.18"), []*Instance{gn.out, gn.in}, quietLog())
	w.mu.Lock()
	w.nodes = append(w.nodes, n)
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, in := range []*Instance{gn.out, gn.in} {
		go func() { done <- in.Run(ctx, true) }()
	}
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop", node)
			}
		}
	})
	return gn
}

func (g *groupNode) masterOf() []bool {
	return []bool{g.out.Stats().State == StateMaster, g.in.Stats().State == StateMaster}
}

// Two nodes, each with the NAT pair in a group. When a's inside instance
// loses its link, b takes both VIPs and a keeps neither; when the link
// returns, a (higher priority) takes both back.
func TestSyncGroupPairMovesTogether(t *testing.T) {
	w := &wire{cut: map[netip.Addr]bool{}}
	ev := &eventLog{}
	a := startGroupNode(t, w, ev, "a", "10.0.0.11", 150)
	b := startGroupNode(t, w, ev, "b", "10.0.0.12", 100)
	eventually(t, "a master of both", func() bool {
		return slices.Equal(a.masterOf(), []bool{true, true}) && slices.Equal(b.masterOf(), []bool{false, false})
	})

	a.in.SetLink(false)
	eventually(t, "b master of both, a of neither, a's VIPs released", func() bool {
		return slices.Equal(b.masterOf(), []bool{true, true}) && slices.Equal(a.masterOf(), []bool{false, false}) &&
			!a.outMover.Held() && !a.inMover.Held() && b.outMover.Held() && b.inMover.Held()
	})
	if s := a.out.Stats(); s.State != StateBackup || s.Gate != GateHold {
		t.Errorf("a.out while a.in is in FAULT: %s, gate %s; want BACKUP held", s.State, s.Gate)
	}

	a.in.SetLink(true)
	eventually(t, "a master of both again", func() bool {
		return slices.Equal(a.masterOf(), []bool{true, true}) && slices.Equal(b.masterOf(), []bool{false, false}) &&
			a.outMover.Held() && a.inMover.Held()
	})
}
