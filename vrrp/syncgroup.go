package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// GroupGate is what an instance's sync group lets it do.
type GroupGate uint8

const (
	// GateFree is plain VRRP: the instance is in no sync group.
	GateFree GroupGate = iota
	// GateHold keeps the instance out of MASTER: a Master steps down
	// (make-before-break), a Backup whose Master_Down_Timer expires only
	// reports that it is ready.
	GateHold
	// GateOpen lets a ready Backup become Master: every member of the
	// group is ready or Master.
	GateOpen
)

func (g GroupGate) String() string {
	switch g {
	case GateFree:
		return "free"
	case GateHold:
		return "hold"
	case GateOpen:
		return "open"
	}
	return fmt.Sprintf("GroupGate(%d)", uint8(g))
}

// SetGate applies the sync group's decision. Under GateHold a Master steps
// down as on a failover (priority 0 advert, VIPs kept until the successor
// has them) and stays Backup; under GateOpen or GateFree a ready Backup
// becomes Master at once.
func (m *Machine) SetGate(now time.Time, g GroupGate) []Action {
	m.gate = g
	switch {
	case m.stopping:
		return nil
	case g == GateHold && m.state == StateMaster:
		acts := m.stepDown(now, "sync group: another member is not MASTER", netip.Addr{}, now.Add(m.MasterDownInterval()))
		m.downAt = now.Add(m.MasterDownInterval())
		return acts
	case g != GateHold && m.state == StateBackup && m.ready:
		reason := "sync group: every member ready"
		if g == GateFree {
			reason = "left its sync group, master down timer had expired"
		}
		return m.becomeMaster(now, reason)
	}
	return nil
}

// Gate returns the sync group's last decision.
func (m *Machine) Gate() GroupGate { return m.gate }

// Ready reports whether a gated Backup would be Master but for its group.
func (m *Machine) Ready() bool { return m.state == StateBackup && m.ready }

// MemberStatus is what a sync group member reports to its group.
type MemberStatus struct {
	State State
	// Ready: a Backup whose Master_Down_Timer expired with no Master
	// heard since; it waits for the group to open.
	Ready bool
}

// willMaster reports whether the member is Master or ready to be.
func (s MemberStatus) willMaster() bool {
	return s.State == StateMaster || (s.State == StateBackup && s.Ready)
}

// GateCommand tells one member what its group allows.
type GateCommand struct {
	Member string
	Gate   GroupGate
}

// SyncGroup is keepalived's vrrp_sync_group as a pure coordinator: the
// caller reports each member's status and applies the commands it returns.
// Members share one state: the gate opens only when every member is Master
// or ready to be, so that they become Master together, and closes as soon
// as one is neither (FAULT, a stronger Master heard, stopped, not started),
// so that the others leave MASTER too. It reads no clock and is not safe
// for concurrent use.
type SyncGroup struct {
	name    string
	members []string
	status  map[string]MemberStatus
	gate    GroupGate
}

// NewSyncGroup returns a group whose members have not reported yet (INIT):
// its gate is closed until they have.
func NewSyncGroup(name string, members []string) *SyncGroup {
	return &SyncGroup{name: name, members: slices.Clone(members), status: map[string]MemberStatus{}, gate: GateHold}
}

// Name is the group's name.
func (g *SyncGroup) Name() string { return g.name }

// Members are the member names in configuration order.
func (g *SyncGroup) Members() []string { return slices.Clone(g.members) }

// Gate is the decision last given to every member.
func (g *SyncGroup) Gate() GroupGate { return g.gate }

// Status is a member's last report (INIT if none).
func (g *SyncGroup) Status(member string) MemberStatus { return g.status[member] }

// Commands returns the current gate for every member: what a caller gives
// members it has just started.
func (g *SyncGroup) Commands() []GateCommand {
	out := make([]GateCommand, len(g.members))
	for i, n := range g.members {
		out[i] = GateCommand{Member: n, Gate: g.gate}
	}
	return out
}

// Report records member's status and returns the commands for every
// member if the gate changed. Reports from non-members are ignored.
func (g *SyncGroup) Report(member string, s MemberStatus) []GateCommand {
	if !slices.Contains(g.members, member) {
		return nil
	}
	g.status[member] = s
	return g.recompute()
}

// SetMembers changes the membership (a reload), keeping the statuses of
// members that stay. Removed members are set free; added ones, and the
// others if the gate changed, get the new gate. A member is given a gate
// only when it differs from what it had, so unchanged members see nothing.
func (g *SyncGroup) SetMembers(members []string, status map[string]MemberStatus) []GateCommand {
	var out []GateCommand
	for _, n := range g.members {
		if !slices.Contains(members, n) {
			delete(g.status, n)
			out = append(out, GateCommand{Member: n, Gate: GateFree})
		}
	}
	var added []string
	for _, n := range members {
		if !slices.Contains(g.members, n) {
			added = append(added, n)
			g.status[n] = status[n]
		}
	}
	g.members = slices.Clone(members)
	changed := g.recompute()
	out = append(out, changed...)
	if changed == nil {
		for _, n := range added {
			out = append(out, GateCommand{Member: n, Gate: g.gate})
		}
	}
	return out
}

// recompute opens or closes the gate; it returns commands for every
// member when the gate changed.
func (g *SyncGroup) recompute() []GateCommand {
	next := GateOpen
	for _, n := range g.members {
		if !g.status[n].willMaster() {
			next = GateHold
			break
		}
	}
	if next == g.gate {
		return nil
	}
	g.gate = next
	return g.Commands()
}

// State is the group's one state: FAULT if any member is in FAULT, MASTER
// when every member is, INIT or STOPPED while a member is, BACKUP
// otherwise (including the moment members are leaving or joining MASTER
// together).
func (g *SyncGroup) State() State {
	all := len(g.members) > 0
	var init, stopped bool
	for _, n := range g.members {
		switch g.status[n].State {
		case StateFault:
			return StateFault
		case StateInit:
			init = true
		case StateStopped:
			stopped = true
		}
		if g.status[n].State != StateMaster {
			all = false
		}
	}
	switch {
	case all:
		return StateMaster
	case stopped:
		return StateStopped
	case init:
		return StateInit
	}
	return StateBackup
}
