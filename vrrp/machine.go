package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// State is a state of the VRRP state machine. INIT, BACKUP and MASTER are
// RFC 5798's; FAULT and STOPPED are keepalived's words for "carrier lost"
// and "shut down".
type State uint8

const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStopped
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStopped:
		return "STOPPED"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ownerPriority is the priority of the router that owns the virtual
// addresses; it becomes Master at once and always preempts.
const ownerPriority = 255

// defaultInterval is used when MachineConfig.Interval is not positive; it is
// keepalived's and the RFC's default of one second.
const defaultInterval = time.Second

// MachineConfig is the static configuration of one virtual router.
type MachineConfig struct {
	// Version selects the Skew_Time formula and interval learning. Anything
	// but V2 behaves as V3.
	Version Version
	// Priority is 1..254, or 255 for the address owner. 0 is reserved for
	// "master is leaving" and is raised to 1.
	Priority uint8
	// Interval is our Advertisement_Interval; 0 or less means one second.
	Interval time.Duration
	// Preempt is the RFC Preempt_Mode; false is keepalived's nopreempt.
	// The address owner (priority 255) preempts regardless.
	Preempt bool
	// PreemptDelay is keepalived's preempt_delay: a Backup keeps deferring
	// to a lower-priority Master for this long after it first heard it.
	PreemptDelay time.Duration
	// Addr is our primary address, the tie-break between equal priorities.
	Addr netip.Addr
	// StopTimeout caps how long a stopping Master keeps its addresses while
	// waiting for a successor. 0 or less means 3*Interval + Skew_Time of our
	// own priority and interval: a backup that hears our priority-0 advert
	// takes over within its Skew_Time (< Interval), and this leaves room for
	// two lost priority-0 adverts before giving up.
	StopTimeout time.Duration
}

// Advert is what the caller extracted from a received, already validated
// advertisement.
type Advert struct {
	Src      netip.Addr
	Priority uint8
	// Interval is the sender's Max Adver Int (v3) or Adver Int (v2).
	Interval time.Duration
}

// ActionKind says what the caller must do.
type ActionKind uint8

const (
	ActSendAdvert  ActionKind = iota // send an advertisement with Action.Priority now
	ActTakeVIPs                      // add the virtual addresses and announce them (GARP / unsolicited NA)
	ActReleaseVIPs                   // remove the virtual addresses
	ActReannounce                    // send GARP / NA again for addresses we hold (split-brain repair)
	ActTransition                    // the state changed: Action.From, Action.To, Action.Reason
	ActStopped                       // a graceful Stop has finished; the caller may exit
)

func (k ActionKind) String() string {
	switch k {
	case ActSendAdvert:
		return "SendAdvert"
	case ActTakeVIPs:
		return "TakeVIPs"
	case ActReleaseVIPs:
		return "ReleaseVIPs"
	case ActReannounce:
		return "Reannounce"
	case ActTransition:
		return "Transition"
	case ActStopped:
		return "Stopped"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one step for the caller to perform, in order.
type Action struct {
	Kind     ActionKind
	Priority uint8 // ActSendAdvert: the priority to advertise
	From, To State // ActTransition
	Reason   string
}

// Machine is the VRRP state machine of RFC 5798 section 6.4 (RFC 3768 for
// v2), plus keepalived's preempt_delay, a FAULT state, split-brain repair and
// a make-before-break shutdown. It is pure: it reads no clock and does no
// I/O; it is not safe for concurrent use.
type Machine struct {
	cfg   MachineConfig
	prio  uint8
	state State
	mai   time.Duration // Master_Adver_Interval
	// master is the last known Master; invalid when unknown.
	master netip.Addr

	// Timers; the zero Time means "not armed". Only the ones that belong to
	// the current state are ever armed.
	adverAt time.Time // Adver_Timer (Master, also while stopping)
	downAt  time.Time // Master_Down_Timer (Backup)
	stopAt  time.Time // make-before-break cap (stopping Master)
	// reannLeft is how many of a Master's next adverts come with a
	// re-announcement, while another Master's hold may end (see
	// armReannounce).
	reannLeft int

	// stopping is set while a Master that was told to Stop still holds the
	// addresses and advertises priority 0.
	stopping bool
	// successor is the first router heard advertising while stopping;
	// stopReason says why the stop will finish when stopAt fires.
	successor  netip.Addr
	stopReason string

	// holding is set while a Backup that was just Master keeps the VIPs
	// until its successor has surely taken them (make-before-break):
	// holdFor's advert at least 1.5 of its intervals after the
	// hold began, or holdUntil. holdFor is invalid until the successor is
	// known.
	holding   bool
	holdFor   netip.Addr
	holdUntil time.Time
	// holdSince is when the hold began: see advertBackup.
	holdSince time.Time

	// yielding disables preemption after a manual failover, until we are
	// Master again, so that the handover sticks.
	yielding bool

	// masterPrio is the priority the known Master advertised.
	masterPrio uint8

	// lowerSince is when, as Backup, we first heard the current
	// lower-priority Master (preempt_delay); valid when lowerSeen.
	lowerSeen  bool
	lowerSince time.Time

	// lastReassert rate-limits split-brain repair; valid when reasserted.
	reasserted   bool
	lastReassert time.Time

	// gate is what the instance's sync group allows (GateFree outside a
	// group). ready is set while a gated Backup's Master_Down_Timer has
	// expired with nobody heard since: it would be Master but for the group.
	gate  GroupGate
	ready bool
}

// NewMachine returns a machine in INIT. Call Start to run it.
func NewMachine(cfg MachineConfig) *Machine {
	if cfg.Version != V2 {
		cfg.Version = V3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	m := &Machine{cfg: cfg, state: StateInit}
	m.prio = clampPriority(cfg.Priority)
	m.mai = cfg.Interval
	return m
}

func clampPriority(p uint8) uint8 {
	if p == 0 {
		return 1
	}
	return p
}

// State returns the current state. A Master that is stopping stays MASTER
// until it has released the addresses.
func (m *Machine) State() State { return m.state }

// Priority returns the current effective priority.
func (m *Machine) Priority() uint8 { return m.prio }

// MasterAdverInterval is the Master's advertisement interval: learned from
// adverts in v3, always our own Interval in v2 and while we are Master.
func (m *Machine) MasterAdverInterval() time.Duration { return m.mai }

// SkewTime is RFC 5798's ((256-Priority)*Master_Adver_Interval)/256, or RFC
// 3768's (256-Priority)/256 seconds for v2.
func (m *Machine) SkewTime() time.Duration {
	return skew(m.cfg.Version, m.prio, m.mai)
}

func skew(v Version, prio uint8, interval time.Duration) time.Duration {
	if v == V2 {
		interval = time.Second
	}
	return time.Duration(256-int64(prio)) * interval / 256
}

// MasterDownInterval is 3*Master_Adver_Interval + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.mai + m.SkewTime()
}

// MasterAddr returns the last known Master, ourselves when Master; invalid
// when unknown (INIT, FAULT, STOPPED, or a Backup that has heard nobody).
func (m *Machine) MasterAddr() netip.Addr { return m.master }

// Deadline returns the earliest armed timer, or the zero Time if none is.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range [...]time.Time{m.adverAt, m.downAt, m.stopAt, m.holdUntil} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Start is the RFC Startup event. It acts only from INIT or STOPPED; in
// FAULT the machine waits for LinkUp, and a running machine ignores it.
func (m *Machine) Start(now time.Time) []Action {
	if m.state != StateInit && m.state != StateStopped {
		return nil
	}
	return m.initialize(now, "startup")
}

// initialize is RFC 5798 6.4.1: the owner becomes Master at once, anyone
// else waits a Master_Down_Interval as Backup.
func (m *Machine) initialize(now time.Time, reason string) []Action {
	m.stopping = false
	if m.prio == ownerPriority {
		if m.gate != GateFree {
			// The owner is ready at once, but its group decides.
			acts := m.transition(nil, StateBackup, reason+", address owner (priority 255) waiting for its sync group")
			m.downAt = now
			return acts
		}
		return m.becomeMaster(now, reason+", address owner (priority 255)")
	}
	return m.becomeBackup(now, reason)
}

// StartHolding is Start for a node that finds the VIPs already on it (a
// restart after a crash): it starts as Backup but holds them, as after a
// step-down, until another master has surely taken them, or it becomes
// Master itself when the Master_Down_Timer fires, without a gap.
func (m *Machine) StartHolding(now time.Time) []Action {
	acts := m.Start(now)
	if m.state == StateBackup {
		m.holding, m.holdFor, m.holdUntil = true, netip.Addr{}, m.downAt
	}
	return acts
}

// Stop is the RFC Shutdown event, made graceful. A Master advertises
// priority 0 but keeps the addresses until a successor advertises (or
// StopTimeout passes), so that clients never see a gap; any other state
// stops at once. Calling it again has no effect.
func (m *Machine) Stop(now time.Time) []Action {
	if m.stopping || m.state == StateStopped {
		return nil
	}
	if m.state != StateMaster {
		return m.transition(nil, StateStopped, "shutdown", ActStopped)
	}
	timeout := m.cfg.StopTimeout
	if timeout <= 0 {
		timeout = 3*m.cfg.Interval + skew(m.cfg.Version, m.prio, m.cfg.Interval)
	}
	m.stopping = true
	m.successor = netip.Addr{}
	m.stopReason = "no new master within stop timeout"
	m.stopAt = now.Add(timeout)
	m.adverAt = now.Add(m.cfg.Interval)
	return []Action{{Kind: ActSendAdvert, Priority: 0}}
}

// finishStop ends a make-before-break shutdown.
func (m *Machine) finishStop(reason string) []Action {
	m.stopping = false
	acts := []Action{{Kind: ActReleaseVIPs}}
	return m.transition(acts, StateStopped, reason, ActStopped)
}

// Advert handles a received advertisement.
func (m *Machine) Advert(now time.Time, a Advert) []Action {
	if a.Src == m.cfg.Addr {
		return nil // our own advert, looped back
	}
	switch {
	case m.stopping:
		if a.Priority == 0 {
			return nil
		}
		reason := fmt.Sprintf("new master %v (priority %d) took over", a.Src, a.Priority)
		if a.Src == m.successor {
			return m.finishStop(reason)
		}
		// The successor's first advert can leave before it has added the
		// VIPs and sent gratuitous ARP (its mover runs asynchronously), so
		// keep forwarding until its next advert, or one of its intervals.
		m.successor = a.Src
		m.stopReason = reason
		if at := now.Add(m.successorInterval(a)); at.Before(m.stopAt) {
			m.stopAt = at
		}
		return nil
	case m.state == StateBackup:
		return m.advertBackup(now, a)
	case m.state == StateMaster:
		return m.advertMaster(now, a)
	}
	return nil // INIT, FAULT, STOPPED listen to nobody
}

func (m *Machine) advertBackup(now time.Time, a Advert) []Action {
	var acts []Action
	if m.holding && a.Priority > 0 {
		switch {
		case a.Src == m.holdFor && now.Sub(m.holdSince) >= holdFrom(m.successorInterval(a)):
			// The successor has announced by now, and announces again
			// with this very advert (armReannounce), for clients we
			// answered while holding. Its announcement leaves a moment
			// after the advert: let go holdGrace later, so that such a
			// client has moved before we stop forwarding.
			if at := now.Add(holdGrace(m.successorInterval(a))); at.Before(m.holdUntil) {
				m.holdUntil = at
			}
		case a.Src == m.holdFor:
			// Too soon: the successor's answer to our priority-0 advert
			// (reassert), sent at once, or its first regular advert,
			// both possibly before its own VIP move and gratuitous ARP
			// are done. They prove nothing about the clients: keep
			// holding.
		case !m.holdFor.IsValid():
			m.holdFor = a.Src
			if at := now.Add(holdCap(m.successorInterval(a))); at.Before(m.holdUntil) {
				m.holdUntil = at
			}
		}
	}
	return append(acts, m.advertBackupRFC(now, a)...)
}

func (m *Machine) advertBackupRFC(now time.Time, a Advert) []Action {
	if a.Priority == 0 {
		// The Master is leaving: the Backup with the highest priority has
		// the shortest skew and so takes over first.
		m.downAt = now.Add(m.SkewTime())
		m.ready = false
		return nil
	}
	m.master = a.Src
	m.masterPrio = a.Priority
	if a.Priority >= m.prio {
		m.lowerSeen = false
	}
	if !m.preempts() || a.Priority >= m.prio || m.inPreemptDelay(now) {
		m.learn(a)
		m.downAt = now.Add(m.MasterDownInterval())
		m.ready = false
	}
	// Otherwise discard: we preempt when the Master_Down_Timer fires.
	return nil
}

// preempts reports Preempt_Mode; the owner always preempts (RFC 5798 6.1).
func (m *Machine) preempts() bool {
	return (m.cfg.Preempt && !m.yielding) || m.prio == ownerPriority
}

// inPreemptDelay reports whether a Backup that hears a lower-priority Master
// should still defer to it, starting the delay on first hearing.
func (m *Machine) inPreemptDelay(now time.Time) bool {
	if m.cfg.PreemptDelay <= 0 {
		return false
	}
	if !m.lowerSeen {
		m.lowerSeen = true
		m.lowerSince = now
	}
	return now.Sub(m.lowerSince) < m.cfg.PreemptDelay
}

// learn takes the Master's interval from a v3 advert. v2 routers must agree
// on the interval, and the caller drops adverts that don't.
func (m *Machine) learn(a Advert) {
	if m.cfg.Version == V3 && a.Interval > 0 {
		m.mai = a.Interval
	}
}

func (m *Machine) advertMaster(now time.Time, a Advert) []Action {
	if m.yieldsTo(a) {
		reason := fmt.Sprintf("higher priority %d from %v", a.Priority, a.Src)
		if a.Priority == m.prio {
			reason = fmt.Sprintf("equal priority %d from higher address %v", a.Priority, a.Src)
		}
		acts := m.stepDown(now, reason, a.Src, now.Add(holdCap(m.successorInterval(a))))
		// transition resets timers and interval for a fresh Backup; keep
		// what this advert taught us instead.
		m.learn(a)
		m.master = a.Src
		m.masterPrio = a.Priority
		m.downAt = now.Add(m.MasterDownInterval())
		return acts
	}
	// Another Master that we outrank, or that is leaving, may hold the
	// VIPs a while yet.
	m.armReannounce()
	if a.Priority == 0 {
		// Another Master is leaving: a stopping peer, or the loser of a
		// split brain stepping down. Its clients must find us now, so
		// re-announce as well as advertise (the RFC asks only the advert).
		if m.reasserted && now.Sub(m.lastReassert) < m.mai {
			m.adverAt = now.Add(m.cfg.Interval)
			return []Action{{Kind: ActSendAdvert, Priority: m.prio}}
		}
		return m.reassert(now)
	}
	// The RFC discards a weaker Master's advert. After a partition heals
	// both sides are Master; answer at once so the loser steps down now,
	// and pull clients' ARP/ND caches back. Rate-limited so a misbehaving
	// peer cannot make us flood.
	if m.reasserted && now.Sub(m.lastReassert) < m.mai {
		return nil
	}
	return m.reassert(now)
}

// yieldsTo reports whether a Master steps down for another Master's
// advert a (priority above 0): a higher priority, or an equal one from a
// higher address (RFC 5798 6.4.3).
func (m *Machine) yieldsTo(a Advert) bool {
	return a.Priority > 0 && (a.Priority > m.prio || (a.Priority == m.prio && a.Src.Compare(m.cfg.Addr) > 0))
}

// armReannounce makes the next reannAdverts adverts come with a
// gratuitous ARP / NA (asked of the mover as the advert goes, so they
// leave within moments of each other): another Master, which steps
// down for us or has just done so, holds the VIPs make-before-break,
// answering ARP requests meanwhile, and a client that asked then may have
// been sent to it. That Master ends its hold holdGrace after the first
// of our adverts that comes holdFrom after its step-down (or at holdCap),
// so the announcement that comes with that advert moves such a client
// before the hold ends, not an interval later.
func (m *Machine) armReannounce() {
	m.reannLeft = reannAdverts
}

// reannAdverts covers the adverts that can end a hold: the one holdFrom
// (1.5 intervals) after the step-down falls within the next two, and the
// third covers a late one.
const reannAdverts = holdLimit + 1

// stepDown leaves MASTER for BACKUP. The priority-0 advert tells the new
// Master we are leaving: without it, if the winner's advert reached us
// first after a partition heals, it would never learn that clients
// followed us, and would not re-announce the VIPs to pull them back. The
// VIPs stay until the successor (succ, or the first router heard) has
// surely taken them, or until the deadline: make-before-break.
func (m *Machine) stepDown(now time.Time, reason string, succ netip.Addr, until time.Time) []Action {
	acts := m.transition([]Action{{Kind: ActSendAdvert, Priority: 0}}, StateBackup, reason)
	if m.gate != GateFree {
		// A sync group member lets go at once (break-before-make, as
		// keepalived's groups do): kept on, its VIP would sit on this
		// node while the successor already holds the group's other ones,
		// the split the group exists to prevent. See
		// docs/design/sync-groups.md.
		return append(acts, Action{Kind: ActReleaseVIPs})
	}
	m.holding, m.holdFor, m.holdUntil, m.holdSince = true, succ, until, now
	return acts
}

// releaseHeld ends a make-before-break hold.
func (m *Machine) releaseHeld() []Action {
	m.holding, m.holdFor, m.holdUntil = false, netip.Addr{}, time.Time{}
	return []Action{{Kind: ActReleaseVIPs}}
}

// A Master that stepped down holds its VIPs until holdGrace after its
// successor's advert that comes holdFrom after the step down, or at most
// holdCap. One interval was not enough: a
// successor that moves its VIPs through EC2, or on a busy host, had not
// announced them by its first regular advert, and in the lab the clients
// lost up to 70 ms at a failback. Holding longer costs nothing: the
// holder is quiet (no gratuitous ARP) and still forwards.
const holdLimit = 2

// holdFrom is how long after the step down a successor's advert, of
// interval iv, may end the hold: 1.5 intervals.
func holdFrom(iv time.Duration) time.Duration { return iv * 3 / 2 }

// holdCap is the longest hold, from the step-down or from the first
// sight of the successor: holdLimit of its intervals, and the grace
// after the advert that ends it. Without the grace in the cap, a Master
// that stepped down for a stronger one's advert (preemption, a failback,
// a healed split) would let go at the very moment of the successor's
// ending advert, which comes holdLimit intervals after the advert it
// stepped down for, before that advert's announcement is out.
func holdCap(iv time.Duration) time.Duration { return holdLimit*iv + holdGrace(iv) }

// holdGrace is how long a hold outlasts the successor's advert that
// ends it: half the successor's interval, at least 100 ms (a busy host
// runs the successor's announcement tens of milliseconds after its
// advert). The hold's cap (holdUntil) still applies.
func holdGrace(iv time.Duration) time.Duration { return max(iv/2, 100*time.Millisecond) }

// successorInterval is how long to wait for a new Master's next advert.
func (m *Machine) successorInterval(a Advert) time.Duration {
	if m.cfg.Version == V2 || a.Interval <= 0 {
		return m.cfg.Interval
	}
	return a.Interval
}

// ErrNotBackup and ErrNotMaster refuse a manual handover in the wrong state.
var (
	ErrNotBackup = errors.New("not BACKUP")
	ErrNotMaster = errors.New("not MASTER")
	// ErrGroupHold refuses a failback while the instance's sync group
	// holds every member in BACKUP (another member is not ready).
	ErrGroupHold = errors.New("its sync group holds it in BACKUP: another member is not ready")
)

// Failback makes a Backup Master now: a one-time preemption, even with
// preempt off. It refuses when the current Master outranks us, since that
// Master would win straight back.
func (m *Machine) Failback(now time.Time) ([]Action, error) {
	if m.state != StateBackup || m.stopping {
		if m.state == StateMaster {
			return nil, fmt.Errorf("already MASTER: %w", ErrNotBackup)
		}
		return nil, fmt.Errorf("state is %s: %w", m.state, ErrNotBackup)
	}
	if m.gate == GateHold {
		return nil, ErrGroupHold
	}
	if m.master.IsValid() && (m.masterPrio > m.prio || (m.masterPrio == m.prio && m.master.Compare(m.cfg.Addr) > 0)) {
		return nil, fmt.Errorf("master %v has priority %d, ours is %d: it would take over again", m.master, m.masterPrio, m.prio)
	}
	return m.becomeMaster(now, "failback requested"), nil
}

// Failover hands mastership to the peer: the Master advertises priority 0,
// becomes Backup holding the VIPs until the successor has them, and does
// not preempt again until it is next Master. If nobody takes over, the
// Master_Down_Timer makes us Master again rather than leave the VIPs dark.
func (m *Machine) Failover(now time.Time) ([]Action, error) {
	if m.state != StateMaster || m.stopping {
		return nil, fmt.Errorf("state is %s: %w", m.state, ErrNotMaster)
	}
	acts := m.stepDown(now, "failover requested", netip.Addr{}, now.Add(m.MasterDownInterval()))
	m.yielding = true
	m.downAt = now.Add(m.MasterDownInterval())
	return acts, nil
}

// reassert advertises and re-announces the VIPs at once.
func (m *Machine) reassert(now time.Time) []Action {
	m.reasserted = true
	m.lastReassert = now
	m.adverAt = now.Add(m.cfg.Interval)
	return []Action{{Kind: ActSendAdvert, Priority: m.prio}, {Kind: ActReannounce}}
}

// TakeoverDue reports whether Timer(now) would find a Backup's
// Master_Down_Timer expired.
func (m *Machine) TakeoverDue(now time.Time) bool {
	return m.state == StateBackup && due(m.downAt, now)
}

// Timer fires every timer due at or before now, in order.
func (m *Machine) Timer(now time.Time) []Action {
	var acts []Action
	for {
		switch {
		case m.stopping && due(m.stopAt, now):
			acts = append(acts, m.finishStop(m.stopReason)...)
		case m.state == StateBackup && due(m.downAt, now) && m.gate != GateFree:
			// A sync group member only reports that it is ready; the
			// group lets every member become Master together (SetGate).
			m.downAt = time.Time{}
			m.ready = true
			m.master, m.masterPrio = netip.Addr{}, 0 // nobody heard for a Master_Down_Interval
			if m.gate == GateOpen {
				acts = append(acts, m.becomeMaster(now, "master down timer expired, sync group ready")...)
			}
		case m.state == StateBackup && due(m.downAt, now):
			// Before the hold: becoming Master keeps held VIPs without a gap.
			acts = append(acts, m.becomeMaster(now, "master down timer expired")...)
		case m.holding && due(m.holdUntil, now):
			acts = append(acts, m.releaseHeld()...)
		case m.state == StateMaster && due(m.adverAt, now):
			p := m.prio
			if m.stopping {
				p = 0
			} else if m.reannLeft > 0 {
				// Announce with the advert, which may end another
				// Master's hold (armReannounce). A stopping Master is
				// letting its VIPs go, so it stays quiet.
				m.reannLeft--
				acts = append(acts, Action{Kind: ActReannounce})
			}
			// Re-arm from now, not from the missed deadline: a late caller
			// gets one advert, not a burst.
			m.adverAt = now.Add(m.cfg.Interval)
			acts = append(acts, Action{Kind: ActSendAdvert, Priority: p})
		default:
			return acts
		}
	}
}

func due(t, now time.Time) bool { return !t.IsZero() && !t.After(now) }

// LinkDown moves any started state to FAULT, releasing the addresses if we
// hold them; from INIT it records the fault so that LinkUp starts later. A
// stopping Master simply finishes stopping: nobody can hear it anyway.
func (m *Machine) LinkDown(now time.Time) []Action {
	switch {
	case m.stopping:
		return m.finishStop("link down while stopping")
	case m.state == StateFault || m.state == StateStopped:
		return nil
	}
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, Action{Kind: ActReleaseVIPs})
	}
	return m.transition(acts, StateFault, "link down")
}

// Fault moves any started state to FAULT for a reason other than the link
// (a tracked object at weight 0, a maintenance file): the interface still
// works, so a Master says goodbye with a priority-0 advert, as on stop, and
// its Backup takes over after the skew time rather than the whole
// master-down interval. LinkUp leaves this FAULT too. A stopping Master
// carries on stopping.
func (m *Machine) Fault(now time.Time, reason string) []Action {
	if m.stopping || m.state == StateFault || m.state == StateStopped {
		return nil
	}
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, Action{Kind: ActSendAdvert, Priority: 0}, Action{Kind: ActReleaseVIPs})
	}
	return m.transition(acts, StateFault, reason)
}

// LinkUp leaves FAULT the way Start leaves INIT; in any other state it does
// nothing.
func (m *Machine) LinkUp(now time.Time) []Action {
	if m.state != StateFault {
		return nil
	}
	return m.initialize(now, "link up")
}

// SetPriority changes our priority (check tracking). A Master advertises the
// new value at once so Backups can preempt without waiting; a Backup just
// applies the normal rules with the new value from now on.
func (m *Machine) SetPriority(now time.Time, p uint8) []Action {
	p = clampPriority(p)
	if p == m.prio {
		return nil
	}
	m.prio = p
	if m.state != StateMaster || m.stopping {
		return nil
	}
	m.adverAt = now.Add(m.cfg.Interval)
	return []Action{{Kind: ActSendAdvert, Priority: p}}
}

func (m *Machine) becomeMaster(now time.Time, reason string) []Action {
	// Still holding from a recent step-down: Take is idempotent, so the
	// VIPs simply stay.
	m.holding, m.holdFor, m.holdUntil = false, netip.Addr{}, time.Time{}
	m.yielding = false
	acts := []Action{{Kind: ActSendAdvert, Priority: m.prio}, {Kind: ActTakeVIPs}}
	acts = m.transition(acts, StateMaster, reason)
	m.master = m.cfg.Addr
	m.adverAt = now.Add(m.cfg.Interval)
	// The previous Master may hold the VIPs a while yet (a handover, or
	// one that stepped down for us): re-announce as its hold ends.
	m.armReannounce()
	return acts
}

func (m *Machine) becomeBackup(now time.Time, reason string) []Action {
	acts := m.transition(nil, StateBackup, reason)
	m.downAt = now.Add(m.MasterDownInterval())
	return acts
}

// transition enters state to, resetting everything that belongs to a
// state, and appends the Transition action and any extra actions to acts.
// Callers arm the new state's timers afterwards.
func (m *Machine) transition(acts []Action, to State, reason string, extra ...ActionKind) []Action {
	if m.holding && to != StateMaster {
		acts = append(acts, m.releaseHeld()...)
	}
	from := m.state
	m.state = to
	m.adverAt, m.downAt, m.stopAt, m.reannLeft = time.Time{}, time.Time{}, time.Time{}, 0
	m.master = netip.Addr{}
	m.masterPrio = 0
	m.mai = m.cfg.Interval
	m.lowerSeen = false
	m.ready = false
	acts = append(acts, Action{Kind: ActTransition, From: from, To: to, Reason: reason})
	for _, k := range extra {
		acts = append(acts, Action{Kind: k})
	}
	return acts
}
