package vrrp

import (
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var (
	addrLow  = netip.MustParseAddr("10.0.0.11")
	addrSelf = netip.MustParseAddr("10.0.0.12")
	addrHigh = netip.MustParseAddr("10.0.0.13")
)

// Shorthands for expected actions. A Transition's Reason is matched as a
// substring when set, and must be non-empty in any case.
func send(p uint8) Action { return Action{Kind: ActSendAdvert, Priority: p} }
func trans(from, to State, reason string) Action {
	return Action{Kind: ActTransition, From: from, To: to, Reason: reason}
}

var (
	take     = Action{Kind: ActTakeVIPs}
	release  = Action{Kind: ActReleaseVIPs}
	reannoun = Action{Kind: ActReannounce}
	stopped  = Action{Kind: ActStopped}
)

func expect(t *testing.T, what string, got []Action, want ...Action) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		if g.Kind == ActTransition {
			ok = g.Reason != "" && strings.Contains(g.Reason, w.Reason)
			g.Reason, w.Reason = "", ""
		}
		ok = ok && g == w
	}
	if !ok {
		t.Fatalf("%s:\n got  %s\n want %s", what, fmtActs(got), fmtActs(want))
	}
}

func fmtActs(as []Action) string {
	var b strings.Builder
	b.WriteString("[")
	for i, a := range as {
		if i > 0 {
			b.WriteString(" ")
		}
		switch a.Kind {
		case ActSendAdvert:
			fmt.Fprintf(&b, "SendAdvert(%d)", a.Priority)
		case ActTransition:
			fmt.Fprintf(&b, "Transition(%v->%v %q)", a.From, a.To, a.Reason)
		default:
			b.WriteString(a.Kind.String())
		}
	}
	b.WriteString("]")
	return b.String()
}

func expectDeadline(t *testing.T, m *Machine, want time.Time) {
	t.Helper()
	if got := m.Deadline(); !got.Equal(want) {
		t.Fatalf("Deadline() = %v, want %v", fmtT(got), fmtT(want))
	}
}

func fmtT(x time.Time) string {
	if x.IsZero() {
		return "none"
	}
	return "t0+" + x.Sub(t0).String()
}

func expectState(t *testing.T, m *Machine, want State) {
	t.Helper()
	if got := m.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

func cfg(prio uint8) MachineConfig {
	return MachineConfig{Version: V3, Priority: prio, Interval: time.Second, Preempt: true, Addr: addrSelf}
}

// backup returns a machine started at t0 (so in BACKUP unless priority 255).
func started(t *testing.T, c MachineConfig) *Machine {
	t.Helper()
	m := NewMachine(c)
	m.Start(t0)
	return m
}

// master returns a machine that became Master by timeout; it returns the
// time at which it did.
func master(t *testing.T, c MachineConfig) (*Machine, time.Time) {
	t.Helper()
	m := started(t, c)
	now := m.Deadline()
	m.Timer(now)
	expectState(t, m, StateMaster)
	return m, now
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{
		StateInit: "INIT", StateBackup: "BACKUP", StateMaster: "MASTER",
		StateFault: "FAULT", StateStopped: "STOPPED", State(9): "State(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", s, got, want)
		}
	}
	if got := ActReannounce.String(); got != "Reannounce" {
		t.Errorf("ActReannounce.String() = %q", got)
	}
}

func TestTimingValues(t *testing.T) {
	for _, tc := range []struct {
		v        Version
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{V3, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{V3, 100, 2 * time.Second, 1218750 * time.Microsecond, 7218750 * time.Microsecond},
		{V3, 100, 100 * time.Millisecond, 60937500, 360937500},
		{V3, 255, time.Second, 3906250, 3003906250},
		{V3, 1, time.Second, 996093750, 3996093750},
		{V3, 254, 40950 * time.Millisecond, 319921875, 123169921875},
		// v2: the skew is in seconds whatever the interval.
		{V2, 100, 2 * time.Second, 609375 * time.Microsecond, 6609375 * time.Microsecond},
		{V2, 200, time.Second, 218750 * time.Microsecond, 3218750 * time.Microsecond},
		{V2, 100, 5 * time.Second, 609375 * time.Microsecond, 15609375 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("%v/p%d/%v", tc.v, tc.prio, tc.interval), func(t *testing.T) {
			c := cfg(tc.prio)
			c.Version, c.Interval = tc.v, tc.interval
			m := NewMachine(c)
			if got := m.MasterAdverInterval(); got != tc.interval {
				t.Errorf("MasterAdverInterval = %v, want %v", got, tc.interval)
			}
			if got := m.SkewTime(); got != tc.skew {
				t.Errorf("SkewTime = %v, want %v", got, tc.skew)
			}
			if got := m.MasterDownInterval(); got != tc.down {
				t.Errorf("MasterDownInterval = %v, want %v", got, tc.down)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	m := NewMachine(MachineConfig{Addr: addrSelf})
	if m.Priority() != 1 {
		t.Errorf("priority 0 should be raised to 1, got %d", m.Priority())
	}
	if m.MasterAdverInterval() != time.Second {
		t.Errorf("default interval = %v, want 1s", m.MasterAdverInterval())
	}
	// Version 0 behaves as v3: a learned interval changes the skew.
	m.Start(t0)
	m.Advert(t0, Advert{Src: addrHigh, Priority: 50, Interval: 2 * time.Second})
	if m.MasterAdverInterval() != 2*time.Second {
		t.Errorf("version 0 should learn like v3, MAI = %v", m.MasterAdverInterval())
	}
	expectState(t, m, StateBackup)
	expectDeadline(t, NewMachine(cfg(100)), time.Time{})
}

func TestStartBackup(t *testing.T) {
	m := NewMachine(cfg(100))
	expectState(t, m, StateInit)
	expect(t, "Start", m.Start(t0), trans(StateInit, StateBackup, "startup"))
	expectState(t, m, StateBackup)
	expectDeadline(t, m, at(3609375*time.Microsecond))
	if m.MasterAddr().IsValid() {
		t.Errorf("MasterAddr = %v before hearing anyone", m.MasterAddr())
	}
	expect(t, "second Start", m.Start(at(time.Second)))
	expectDeadline(t, m, at(3609375*time.Microsecond))
}

func TestStartOwner(t *testing.T) {
	m := NewMachine(cfg(255))
	expect(t, "Start", m.Start(t0), send(255), take, trans(StateInit, StateMaster, "owner"))
	expectState(t, m, StateMaster)
	expectDeadline(t, m, at(time.Second))
	if m.MasterAddr() != addrSelf {
		t.Errorf("MasterAddr = %v, want ourselves", m.MasterAddr())
	}
}

func TestAdvertIgnoredBeforeStart(t *testing.T) {
	m := NewMachine(cfg(100))
	expect(t, "Advert in INIT", m.Advert(t0, Advert{Src: addrHigh, Priority: 200, Interval: time.Second}))
	expect(t, "Timer in INIT", m.Timer(at(time.Hour)))
	expectState(t, m, StateInit)
	expectDeadline(t, m, time.Time{})
}

func TestBackupTimeoutBecomesMaster(t *testing.T) {
	m := started(t, cfg(100))
	down := at(3609375 * time.Microsecond)
	expect(t, "Timer before deadline", m.Timer(down.Add(-time.Nanosecond)))
	expectState(t, m, StateBackup)
	expectDeadline(t, m, down)
	expect(t, "Timer at deadline", m.Timer(down),
		send(100), take, trans(StateBackup, StateMaster, "master down timer expired"))
	expectDeadline(t, m, down.Add(time.Second))
	if m.MasterAddr() != addrSelf {
		t.Errorf("MasterAddr = %v, want ourselves", m.MasterAddr())
	}
	// The Adver_Timer runs every Interval. The next three adverts come
	// after a re-announcement each, for clients a previous Master
	// answered while it held the VIPs: one of them ends its hold.
	expect(t, "Timer early", m.Timer(down.Add(999*time.Millisecond)))
	for i := 1; i <= 3; i++ {
		expect(t, "Adver_Timer with re-announcement", m.Timer(down.Add(time.Duration(i)*time.Second)), reannoun, send(100))
		expectDeadline(t, m, down.Add(time.Duration(i+1)*time.Second))
	}
	expect(t, "Adver_Timer", m.Timer(down.Add(4*time.Second)), send(100))
	expectDeadline(t, m, down.Add(5*time.Second))
	// A late caller gets one advert, and the timer restarts from now.
	late := down.Add(10 * time.Second)
	expect(t, "late Timer", m.Timer(late), send(100))
	expectDeadline(t, m, late.Add(time.Second))
}

// A Master that hears another Master, which then steps down and holds
// the VIPs for up to two of our intervals, re-announces before each of
// its next three adverts (one of them ends the hold); a Master that steps
// down itself does not.
func TestMasterReannouncesAfterTheLosersHold(t *testing.T) {
	m, became := master(t, cfg(150))
	for i := 1; i <= 3; i++ { // the re-announcements of becoming Master
		expect(t, "Adver_Timer", m.Timer(became.Add(time.Duration(i)*time.Second)), reannoun, send(150))
	}
	now := became.Add(4 * time.Second)
	expect(t, "Adver_Timer", m.Timer(now), send(150))
	heard := now.Add(100 * time.Millisecond)
	acts := m.Advert(heard, Advert{Src: addrLow, Priority: 100, Interval: time.Second})
	expect(t, "a weaker Master's advert", acts, send(150), reannoun)
	expectDeadline(t, m, heard.Add(time.Second))
	expect(t, "Adver_Timer", m.Timer(heard.Add(time.Second)), reannoun, send(150))
	expect(t, "Adver_Timer", m.Timer(heard.Add(2*time.Second)), reannoun, send(150))
	// A stronger Master: we step down, and nothing more is announced.
	m.Advert(heard.Add(2700*time.Millisecond), Advert{Src: addrHigh, Priority: 200, Interval: time.Second})
	expectState(t, m, StateBackup)
	if m.reannLeft != 0 {
		t.Errorf("a Backup has %d re-announcements armed", m.reannLeft)
	}
}

// A stopping Master advertises priority 0 and re-announces nothing.
func TestStoppingMasterDoesNotReannounce(t *testing.T) {
	m, became := master(t, cfg(150))
	acts := m.Stop(became.Add(100 * time.Millisecond))
	for _, a := range acts {
		if a.Kind == ActReannounce {
			t.Fatalf("Stop: %v, want no re-announcement", acts)
		}
	}
	for _, a := range m.Timer(became.Add(time.Second)) {
		if a.Kind == ActReannounce {
			t.Fatalf("a stopping Master's advert came with a re-announcement")
		}
	}
}

func TestBackupAcceptsAdvert(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preempt bool
		prio    uint8
	}{
		{"higher", true, 200},
		{"equal", true, 100},
		{"lower without preempt", false, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(100)
			c.Preempt = tc.preempt
			m := started(t, c)
			now := at(2 * time.Second)
			expect(t, "Advert", m.Advert(now, Advert{Src: addrLow, Priority: tc.prio, Interval: time.Second}))
			expectDeadline(t, m, now.Add(3609375*time.Microsecond))
			if m.MasterAddr() != addrLow {
				t.Errorf("MasterAddr = %v, want %v", m.MasterAddr(), addrLow)
			}
			// Keeps deferring as long as adverts come.
			for i := 3; i < 20; i++ {
				now = at(time.Duration(i) * time.Second)
				expect(t, "Timer", m.Timer(now))
				expect(t, "Advert", m.Advert(now, Advert{Src: addrLow, Priority: tc.prio, Interval: time.Second}))
			}
			expectState(t, m, StateBackup)
			expectDeadline(t, m, now.Add(3609375*time.Microsecond))
		})
	}
}

func TestBackupPreemptsLowerMaster(t *testing.T) {
	m := started(t, cfg(150))
	// skew(150) = 106/256 s = 414.0625ms
	down := at(3414062500)
	for i := 1; i <= 3; i++ {
		now := at(time.Duration(i) * time.Second)
		expect(t, "lower Advert", m.Advert(now, Advert{Src: addrHigh, Priority: 100, Interval: 2 * time.Second}))
		expectDeadline(t, m, down) // discarded: timer not reset
	}
	if m.MasterAdverInterval() != time.Second {
		t.Errorf("learned interval from a discarded advert: %v", m.MasterAdverInterval())
	}
	if m.MasterAddr() != addrHigh {
		t.Errorf("MasterAddr = %v, want the lower master %v", m.MasterAddr(), addrHigh)
	}
	expect(t, "Timer", m.Timer(down), send(150), take, trans(StateBackup, StateMaster, ""))
}

func TestOwnerAlwaysPreempts(t *testing.T) {
	c := cfg(255)
	c.Preempt = false
	m := NewMachine(c)
	m.Start(t0)
	// Knock it to Backup with another owner at a higher address.
	expect(t, "equal from higher", m.Advert(at(100*time.Millisecond), Advert{Src: addrHigh, Priority: 255, Interval: time.Second}),
		send(0), trans(StateMaster, StateBackup, "equal priority 255 from higher address 10.0.0.13"))
	down := m.Deadline()
	expect(t, "lower advert", m.Advert(at(time.Second), Advert{Src: addrLow, Priority: 254, Interval: time.Second}))
	expectDeadline(t, m, down)
}

func TestV3IntervalLearning(t *testing.T) {
	m := started(t, cfg(100))
	now := at(time.Second)
	m.Advert(now, Advert{Src: addrHigh, Priority: 200, Interval: 2 * time.Second})
	if got := m.MasterAdverInterval(); got != 2*time.Second {
		t.Fatalf("MAI = %v, want 2s", got)
	}
	if got := m.SkewTime(); got != 1218750*time.Microsecond {
		t.Errorf("Skew = %v, want 1.21875s", got)
	}
	expectDeadline(t, m, now.Add(7218750*time.Microsecond))

	now = at(3 * time.Second)
	m.Advert(now, Advert{Src: addrHigh, Priority: 200, Interval: 500 * time.Millisecond})
	expectDeadline(t, m, now.Add(1804687500))

	// A zero interval (should not get past the codec) is not learned.
	now = at(4 * time.Second)
	m.Advert(now, Advert{Src: addrHigh, Priority: 200})
	if got := m.MasterAdverInterval(); got != 500*time.Millisecond {
		t.Errorf("zero interval was learned: MAI = %v", got)
	}
	// Becoming Master resets it to our own.
	m.Timer(m.Deadline())
	expectState(t, m, StateMaster)
	if got := m.MasterAdverInterval(); got != time.Second {
		t.Errorf("Master's MAI = %v, want own 1s", got)
	}
}

func TestV2IgnoresAdvertInterval(t *testing.T) {
	c := cfg(100)
	c.Version = V2
	m := started(t, c)
	now := at(time.Second)
	m.Advert(now, Advert{Src: addrHigh, Priority: 200, Interval: 3 * time.Second})
	if got := m.MasterAdverInterval(); got != time.Second {
		t.Errorf("v2 learned interval: MAI = %v", got)
	}
	expectDeadline(t, m, now.Add(3609375*time.Microsecond))
}

func TestBackupPriorityZero(t *testing.T) {
	m := started(t, cfg(100))
	m.Advert(at(time.Second), Advert{Src: addrHigh, Priority: 200, Interval: 2 * time.Second})
	now := at(2 * time.Second)
	expect(t, "priority 0", m.Advert(now, Advert{Src: addrHigh, Priority: 0, Interval: 4 * time.Second}))
	// Skew only, with the interval learned before (2s); the 0 advert's own
	// interval is not learned.
	skew := 1218750 * time.Microsecond
	expectDeadline(t, m, now.Add(skew))
	if m.MasterAdverInterval() != 2*time.Second {
		t.Errorf("MAI = %v, want 2s", m.MasterAdverInterval())
	}
	expect(t, "before skew", m.Timer(now.Add(skew-1)))
	expect(t, "after skew", m.Timer(now.Add(skew)), send(100), take, trans(StateBackup, StateMaster, ""))
}

func TestPreemptDelay(t *testing.T) {
	c := cfg(150)
	c.PreemptDelay = 5 * time.Second
	const down = 3414062500 // Master_Down_Interval at priority 150, 1s

	t.Run("takes over after delay", func(t *testing.T) {
		m := started(t, c)
		lower := Advert{Src: addrLow, Priority: 100, Interval: time.Second}
		// First heard at 1s: adverts at 1..5s are within the delay and
		// accepted; 6s is 5s after the first and discarded.
		for i := 1; i <= 8; i++ {
			now := at(time.Duration(i) * time.Second)
			expect(t, "Timer", m.Timer(now))
			m.Advert(now, lower)
			last := min(i, 5)
			expectDeadline(t, m, at(time.Duration(last)*time.Second+down))
		}
		expect(t, "Timer", m.Timer(at(5*time.Second+down)), send(150), take, trans(StateBackup, StateMaster, ""))
	})

	t.Run("higher advert clears", func(t *testing.T) {
		m := started(t, c)
		lower := Advert{Src: addrLow, Priority: 100, Interval: time.Second}
		m.Advert(at(1*time.Second), lower)
		m.Advert(at(2*time.Second), lower)
		m.Advert(at(3*time.Second), Advert{Src: addrHigh, Priority: 200, Interval: time.Second})
		// The delay restarts at 4s, so 8s is still accepted and 9s is not.
		for i := 4; i <= 9; i++ {
			m.Advert(at(time.Duration(i)*time.Second), lower)
		}
		expectDeadline(t, m, at(8*time.Second+down))
	})

	t.Run("no delay without preempt", func(t *testing.T) {
		c := c
		c.Preempt = false
		m := started(t, c)
		for i := 1; i <= 20; i++ {
			m.Advert(at(time.Duration(i)*time.Second), Advert{Src: addrLow, Priority: 100, Interval: time.Second})
		}
		expectDeadline(t, m, at(20*time.Second+down))
	})

	t.Run("restarts after being master", func(t *testing.T) {
		m := started(t, c)
		lower := Advert{Src: addrLow, Priority: 100, Interval: time.Second}
		for i := 1; i <= 6; i++ {
			m.Advert(at(time.Duration(i)*time.Second), lower)
		}
		m.Timer(m.Deadline())
		expectState(t, m, StateMaster)
		m.Advert(at(10*time.Second), Advert{Src: addrHigh, Priority: 200, Interval: time.Second})
		expectState(t, m, StateBackup)
		// Make-before-break: the VIPs go two successor intervals and
		// the grace (half an interval) later.
		expect(t, "still held", m.Timer(at(12*time.Second)))
		expect(t, "hold expires", m.Timer(at(12500*time.Millisecond)), release)
		// A new lower master later gets a fresh 5s of deference.
		for i := 20; i <= 24; i++ {
			m.Advert(at(time.Duration(i)*time.Second), lower)
		}
		expectDeadline(t, m, at(24*time.Second+down))
	})
}

func TestMasterPriorityZero(t *testing.T) {
	m, became := master(t, cfg(100))
	now := became.Add(300 * time.Millisecond)
	// Another master leaving (a split-brain loser): advertise and re-announce.
	expect(t, "priority 0", m.Advert(now, Advert{Src: addrHigh, Priority: 0, Interval: time.Second}), send(100), reannoun)
	expectDeadline(t, m, now.Add(time.Second))
	expectState(t, m, StateMaster)
	// Rate-limited: within Master_Adver_Interval only the RFC's advert.
	expect(t, "priority 0 again", m.Advert(now.Add(time.Millisecond), Advert{Src: addrHigh, Priority: 0, Interval: time.Second}), send(100))
}

func TestMasterStepsDown(t *testing.T) {
	v6Self := netip.MustParseAddr("fe80::12")
	for _, tc := range []struct {
		name   string
		self   netip.Addr
		src    netip.Addr
		prio   uint8
		reason string
	}{
		{"higher priority", addrSelf, addrLow, 200, "higher priority 200 from 10.0.0.11"},
		{"equal priority higher addr", addrSelf, addrHigh, 100, "equal priority 100 from higher address 10.0.0.13"},
		{"equal priority higher addr v6", v6Self, netip.MustParseAddr("fe80::100"), 100, "from higher address fe80::100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(100)
			c.Addr = tc.self
			m, became := master(t, c)
			now := became.Add(500 * time.Millisecond)
			expect(t, "Advert", m.Advert(now, Advert{Src: tc.src, Priority: tc.prio, Interval: 2 * time.Second}),
				send(0), trans(StateMaster, StateBackup, tc.reason))
			expectState(t, m, StateBackup)
			if m.MasterAdverInterval() != 2*time.Second {
				t.Errorf("MAI = %v, want learned 2s", m.MasterAdverInterval())
			}
			// The VIPs stay until the new master's second advert, at
			// most two of its intervals and the grace (5s).
			expectDeadline(t, m, now.Add(5*time.Second))
			if m.MasterAddr() != tc.src {
				t.Errorf("MasterAddr = %v, want %v", m.MasterAddr(), tc.src)
			}
			adv := Advert{Src: tc.src, Priority: tc.prio, Interval: 2 * time.Second}
			expect(t, "its next advert, too soon", m.Advert(now.Add(2*time.Second), adv))
			// The one after ends the hold, a grace later (half its
			// interval), before the cap (two intervals and the grace).
			expect(t, "the one after", m.Advert(now.Add(3*time.Second), adv))
			expectDeadline(t, m, now.Add(4*time.Second))
			expect(t, "the hold's end", m.Timer(now.Add(4*time.Second)), release)
			expectDeadline(t, m, now.Add(3*time.Second+7218750*time.Microsecond))
		})
	}
}

func TestMasterReassertsAgainstWeakerMaster(t *testing.T) {
	for _, tc := range []struct {
		name string
		self netip.Addr
		src  netip.Addr
		prio uint8
	}{
		{"lower priority", addrSelf, addrHigh, 50},
		{"equal priority lower addr", addrSelf, addrLow, 100},
		{"equal priority lower addr v6", netip.MustParseAddr("2001:db8::12"), netip.MustParseAddr("2001:db8::2"), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(100)
			c.Addr = tc.self
			m, became := master(t, c)
			weak := Advert{Src: tc.src, Priority: tc.prio, Interval: time.Second}
			now := became.Add(100 * time.Millisecond)
			expect(t, "first", m.Advert(now, weak), send(100), reannoun)
			expectDeadline(t, m, now.Add(time.Second)) // Adver_Timer restarted
			expect(t, "rate-limited", m.Advert(became.Add(600*time.Millisecond), weak))
			expect(t, "rate-limited", m.Advert(became.Add(1099*time.Millisecond), weak))
			expect(t, "after interval", m.Advert(became.Add(1100*time.Millisecond), weak), send(100), reannoun)
			expectState(t, m, StateMaster)
			if m.MasterAddr() != tc.self {
				t.Errorf("MasterAddr = %v", m.MasterAddr())
			}
		})
	}
}

func TestIgnoresOwnAdvert(t *testing.T) {
	m := started(t, cfg(100))
	expect(t, "own advert in Backup", m.Advert(at(time.Second), Advert{Src: addrSelf, Priority: 200, Interval: time.Second}))
	expectDeadline(t, m, at(3609375*time.Microsecond))
	m.Timer(m.Deadline())
	expect(t, "own advert in Master", m.Advert(at(4*time.Second), Advert{Src: addrSelf, Priority: 200, Interval: time.Second}))
	expectState(t, m, StateMaster)
}

func TestStopMakeBeforeBreak(t *testing.T) {
	m, became := master(t, cfg(100))
	now := became.Add(200 * time.Millisecond)
	expect(t, "Stop", m.Stop(now), send(0))
	expectState(t, m, StateMaster) // still holding the VIPs
	expectDeadline(t, m, now.Add(time.Second))
	expect(t, "Stop again", m.Stop(now.Add(time.Millisecond)))
	expect(t, "resend", m.Timer(now.Add(time.Second)), send(0))
	expectDeadline(t, m, now.Add(2*time.Second))
	// Priority-0 adverts, our own echo and priority changes don't end it.
	expect(t, "priority 0", m.Advert(now.Add(1100*time.Millisecond), Advert{Src: addrHigh, Priority: 0, Interval: time.Second}))
	expect(t, "own", m.Advert(now.Add(1100*time.Millisecond), Advert{Src: addrSelf, Priority: 100, Interval: time.Second}))
	expect(t, "SetPriority", m.SetPriority(now.Add(1100*time.Millisecond), 120))
	expectState(t, m, StateMaster)
	// The new master (even a lower one) ends it at its second advert: the
	// first may leave before it has taken the VIPs.
	expect(t, "new master", m.Advert(now.Add(1200*time.Millisecond), Advert{Src: addrLow, Priority: 50, Interval: 500 * time.Millisecond}))
	expectState(t, m, StateMaster)
	expectDeadline(t, m, now.Add(1700*time.Millisecond))
	expect(t, "new master again", m.Advert(now.Add(1600*time.Millisecond), Advert{Src: addrLow, Priority: 50, Interval: 500 * time.Millisecond}),
		release, trans(StateMaster, StateStopped, "new master 10.0.0.11"), stopped)
	expectState(t, m, StateStopped)
	expectDeadline(t, m, time.Time{})
	expect(t, "Stop after stopped", m.Stop(now.Add(2*time.Second)))
	expect(t, "Advert after stopped", m.Advert(now.Add(2*time.Second), Advert{Src: addrLow, Priority: 50, Interval: time.Second}))
	expect(t, "Timer after stopped", m.Timer(now.Add(time.Hour)))
	if m.MasterAddr().IsValid() {
		t.Errorf("MasterAddr = %v after stop", m.MasterAddr())
	}
}

func TestStopTimeout(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		m, became := master(t, cfg(100))
		expect(t, "Stop", m.Stop(became), send(0))
		for i := 1; i <= 3; i++ {
			expect(t, "resend", m.Timer(became.Add(time.Duration(i)*time.Second)), send(0))
		}
		end := became.Add(3609375 * time.Microsecond)
		expectDeadline(t, m, end)
		expect(t, "before timeout", m.Timer(end.Add(-1)))
		expect(t, "timeout", m.Timer(end), release, trans(StateMaster, StateStopped, "no new master"), stopped)
		expectDeadline(t, m, time.Time{})
	})
	t.Run("configured", func(t *testing.T) {
		c := cfg(100)
		c.StopTimeout = 1500 * time.Millisecond
		m, became := master(t, c)
		m.Stop(became)
		// One late Timer call fires the resend and the timeout in order.
		expect(t, "late", m.Timer(became.Add(5*time.Second)),
			release, trans(StateMaster, StateStopped, ""), stopped)
	})
	t.Run("resend then timeout", func(t *testing.T) {
		c := cfg(100)
		c.StopTimeout = 1500 * time.Millisecond
		m, became := master(t, c)
		m.Stop(became)
		expect(t, "resend", m.Timer(became.Add(time.Second)), send(0))
		expectDeadline(t, m, became.Add(1500*time.Millisecond))
		expect(t, "timeout", m.Timer(became.Add(1500*time.Millisecond)), release, trans(StateMaster, StateStopped, ""), stopped)
	})
}

func TestStopFromOtherStates(t *testing.T) {
	t.Run("init", func(t *testing.T) {
		m := NewMachine(cfg(100))
		expect(t, "Stop", m.Stop(t0), trans(StateInit, StateStopped, "shutdown"), stopped)
		expect(t, "Stop again", m.Stop(t0))
	})
	t.Run("backup", func(t *testing.T) {
		m := started(t, cfg(100))
		expect(t, "Stop", m.Stop(at(time.Second)), trans(StateBackup, StateStopped, "shutdown"), stopped)
		expectDeadline(t, m, time.Time{})
		expect(t, "Stop again", m.Stop(at(2*time.Second)))
		// And it can be started again.
		expect(t, "Start", m.Start(at(3*time.Second)), trans(StateStopped, StateBackup, "startup"))
		expectDeadline(t, m, at(3*time.Second+3609375*time.Microsecond))
	})
	t.Run("fault", func(t *testing.T) {
		m := started(t, cfg(100))
		m.LinkDown(at(time.Second))
		expect(t, "Stop", m.Stop(at(2*time.Second)), trans(StateFault, StateStopped, ""), stopped)
		expect(t, "LinkUp after stop", m.LinkUp(at(3*time.Second)))
		expectState(t, m, StateStopped)
	})
}

func TestFault(t *testing.T) {
	t.Run("master", func(t *testing.T) {
		m, became := master(t, cfg(100))
		now := became.Add(time.Second / 2)
		expect(t, "LinkDown", m.LinkDown(now), release, trans(StateMaster, StateFault, "link down"))
		expectDeadline(t, m, time.Time{})
		expect(t, "LinkDown again", m.LinkDown(now))
		expect(t, "Advert in fault", m.Advert(now, Advert{Src: addrHigh, Priority: 0, Interval: time.Second}))
		expect(t, "Timer in fault", m.Timer(now.Add(time.Hour)))
		expect(t, "Start in fault", m.Start(now))
		expect(t, "SetPriority in fault", m.SetPriority(now, 90))
		expectState(t, m, StateFault)
		if m.MasterAddr().IsValid() {
			t.Errorf("MasterAddr = %v in fault", m.MasterAddr())
		}
		up := now.Add(10 * time.Second)
		expect(t, "LinkUp", m.LinkUp(up), trans(StateFault, StateBackup, "link up"))
		// skew(90) = 166/256 s = 648.4375ms
		expectDeadline(t, m, up.Add(3648437500))
		expect(t, "LinkUp again", m.LinkUp(up))
	})
	t.Run("tracked, master", func(t *testing.T) {
		// The link still works: the Master says goodbye (priority 0) so
		// that its Backup takes over after the skew time.
		m, became := master(t, cfg(100))
		now := became.Add(time.Second / 2)
		expect(t, "Fault", m.Fault(now, "tracked object down"), send(0), release, trans(StateMaster, StateFault, "tracked object down"))
		expect(t, "Fault again", m.Fault(now, "tracked object down"))
		expect(t, "LinkDown while faulted", m.LinkDown(now))
		expect(t, "LinkUp", m.LinkUp(now.Add(time.Second)), trans(StateFault, StateBackup, "link up"))
	})
	t.Run("tracked, backup", func(t *testing.T) {
		m := started(t, cfg(100))
		expect(t, "Fault", m.Fault(at(time.Second), "tracked"), trans(StateBackup, StateFault, "tracked"))
	})
	t.Run("backup", func(t *testing.T) {
		m := started(t, cfg(100))
		expect(t, "LinkDown", m.LinkDown(at(time.Second)), trans(StateBackup, StateFault, ""))
		expectDeadline(t, m, time.Time{})
	})
	t.Run("before start", func(t *testing.T) {
		m := NewMachine(cfg(100))
		expect(t, "LinkDown", m.LinkDown(t0), trans(StateInit, StateFault, ""))
		expect(t, "Start", m.Start(t0))
		expect(t, "LinkUp", m.LinkUp(at(time.Second)), trans(StateFault, StateBackup, ""))
	})
	t.Run("owner", func(t *testing.T) {
		m := started(t, cfg(255))
		m.LinkDown(at(time.Second))
		expect(t, "LinkUp", m.LinkUp(at(2*time.Second)), send(255), take, trans(StateFault, StateMaster, "link up"))
		expectDeadline(t, m, at(3*time.Second))
	})
	t.Run("stopping", func(t *testing.T) {
		m, became := master(t, cfg(100))
		m.Stop(became)
		expect(t, "LinkDown", m.LinkDown(became.Add(time.Second/2)),
			release, trans(StateMaster, StateStopped, "link down"), stopped)
	})
	t.Run("link up while running", func(t *testing.T) {
		m := started(t, cfg(100))
		expect(t, "LinkUp", m.LinkUp(at(time.Second)))
		expectDeadline(t, m, at(3609375*time.Microsecond))
	})
}

func TestSetPriority(t *testing.T) {
	t.Run("master advertises at once", func(t *testing.T) {
		m, became := master(t, cfg(100))
		now := became.Add(300 * time.Millisecond)
		expect(t, "lower", m.SetPriority(now, 80), send(80))
		expectDeadline(t, m, now.Add(time.Second))
		expect(t, "same", m.SetPriority(now, 80))
		// Still among the re-announcing adverts of becoming Master.
		expect(t, "Adver_Timer", m.Timer(now.Add(time.Second)), reannoun, send(80))
		if m.Priority() != 80 {
			t.Errorf("Priority = %d", m.Priority())
		}
		// Now an advert at 90 beats us.
		expect(t, "advert", m.Advert(now.Add(1500*time.Millisecond), Advert{Src: addrLow, Priority: 90, Interval: time.Second}),
			send(0), trans(StateMaster, StateBackup, "higher priority 90"))
	})
	t.Run("backup", func(t *testing.T) {
		m := started(t, cfg(100))
		expect(t, "SetPriority", m.SetPriority(at(time.Second), 200))
		expectDeadline(t, m, at(3609375*time.Microsecond)) // running timer untouched
		if m.SkewTime() != 218750*time.Microsecond {
			t.Errorf("Skew = %v after SetPriority(200)", m.SkewTime())
		}
		// With the new priority, a 150 master is now preempted.
		now := at(2 * time.Second)
		m.Advert(now, Advert{Src: addrLow, Priority: 150, Interval: time.Second})
		expectDeadline(t, m, at(3609375*time.Microsecond))
	})
	t.Run("zero is raised to one", func(t *testing.T) {
		m := started(t, cfg(100))
		m.SetPriority(t0, 0)
		if m.Priority() != 1 {
			t.Errorf("Priority = %d, want 1", m.Priority())
		}
	})
}

// --- simulation over a fake lossless wire ---

type simEvent struct {
	at   time.Time
	seq  int
	to   int // machine index
	kind int // evStart, evAdvert, evStop, evLinkDown, evLinkUp
	adv  Advert
}

const (
	evStart = iota
	evAdvert
	evStop
	evLinkDown
	evLinkUp
)

type simNode struct {
	m       *Machine
	state   State // as reported by transitions
	holds   bool  // holds the VIPs
	stopped bool  // got ActStopped
}

type transition struct {
	at       time.Time
	node     int
	from, to State
}

type sim struct {
	t       *testing.T
	nodes   []*simNode
	events  []simEvent
	seq     int
	delay   time.Duration
	now     time.Time
	history []transition
	// minHolders is the least number of VIP holders seen since trackFrom.
	trackFrom  time.Time
	minHolders int
}

func newSim(t *testing.T, delay time.Duration, cfgs ...MachineConfig) *sim {
	s := &sim{t: t, delay: delay, now: t0, minHolders: 1 << 30}
	for _, c := range cfgs {
		s.nodes = append(s.nodes, &simNode{m: NewMachine(c), state: StateInit})
	}
	return s
}

func (s *sim) schedule(at time.Time, to, kind int, adv Advert) {
	s.seq++
	e := simEvent{at: at, seq: s.seq, to: to, kind: kind, adv: adv}
	i, _ := slices.BinarySearchFunc(s.events, e, func(a, b simEvent) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	s.events = slices.Insert(s.events, i, e)
}

// apply carries out a node's actions and checks the transition invariants.
func (s *sim) apply(i int, acts []Action) {
	n := s.nodes[i]
	for _, a := range acts {
		switch a.Kind {
		case ActSendAdvert:
			adv := Advert{Src: n.m.cfg.Addr, Priority: a.Priority, Interval: n.m.cfg.Interval}
			for j := range s.nodes {
				if j != i {
					s.schedule(s.now.Add(s.delay), j, evAdvert, adv)
				}
			}
		case ActTakeVIPs:
			if n.holds {
				s.t.Fatalf("node %d: TakeVIPs while holding", i)
			}
			n.holds = true
		case ActReleaseVIPs:
			if !n.holds {
				s.t.Fatalf("node %d: ReleaseVIPs while not holding", i)
			}
			n.holds = false
		case ActReannounce:
			if !n.holds {
				s.t.Fatalf("node %d: Reannounce without VIPs", i)
			}
		case ActTransition:
			if a.From != n.state || a.From == a.To || a.Reason == "" {
				s.t.Fatalf("node %d: bad transition %s (tracked state %v)", i, fmtActs([]Action{a}), n.state)
			}
			n.state = a.To
			s.history = append(s.history, transition{s.now, i, a.From, a.To})
		case ActStopped:
			n.stopped = true
		}
	}
	if n.m.State() != n.state {
		s.t.Fatalf("node %d: State() = %v, transitions say %v", i, n.m.State(), n.state)
	}
	// A Master holds the VIPs; so may a Backup that just stepped down,
	// until its successor has them (make-before-break).
	if n.holds != (n.state == StateMaster) && !(n.holds && n.state == StateBackup && n.m.holding) {
		s.t.Fatalf("node %d: holds VIPs = %v in %v", i, n.holds, n.state)
	}
}

// run advances the simulation to end.
func (s *sim) run(end time.Time) {
	for steps := 0; ; steps++ {
		if steps > 1e6 {
			s.t.Fatal("simulation does not settle")
		}
		// Earliest of the queued events and the machines' timers; events
		// first on ties.
		next, node := time.Time{}, -1
		if len(s.events) > 0 {
			next = s.events[0].at
		}
		for i, n := range s.nodes {
			if d := n.m.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next, node = d, i
			}
		}
		if next.IsZero() || next.After(end) {
			s.now = end
			return
		}
		if next.Before(s.now) {
			s.t.Fatalf("time went backwards: %v < %v", next, s.now)
		}
		s.now = next
		if node >= 0 {
			// Timer() must do something when its Deadline is due.
			acts := s.nodes[node].m.Timer(next)
			if len(acts) == 0 {
				s.t.Fatalf("node %d: Timer at its Deadline did nothing", node)
			}
			s.apply(node, acts)
		} else {
			e := s.events[0]
			s.events = s.events[1:]
			m := s.nodes[e.to].m
			var acts []Action
			switch e.kind {
			case evStart:
				acts = m.Start(e.at)
			case evAdvert:
				acts = m.Advert(e.at, e.adv)
			case evStop:
				acts = m.Stop(e.at)
			case evLinkDown:
				acts = m.LinkDown(e.at)
			case evLinkUp:
				acts = m.LinkUp(e.at)
			}
			s.apply(e.to, acts)
		}
		if !s.trackFrom.IsZero() && !s.now.Before(s.trackFrom) {
			h := 0
			for _, n := range s.nodes {
				if n.holds {
					h++
				}
			}
			s.minHolders = min(s.minHolders, h)
		}
	}
}

func (s *sim) masters() []int {
	var ms []int
	for i, n := range s.nodes {
		if n.state == StateMaster {
			ms = append(ms, i)
		}
	}
	return ms
}

func (s *sim) changesSince(t time.Time) []transition {
	var out []transition
	for _, tr := range s.history {
		if !tr.at.Before(t) {
			out = append(out, tr)
		}
	}
	return out
}

func simAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)}) }

// TestConvergence simulates 2-3 routers with random priorities, start times
// and intervals (v3) and checks that exactly one ends up Master, that it is
// the right one, and that nothing changes once it has converged.
func TestConvergence(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		for seed := int64(1); seed <= 400; seed++ {
			rng := rand.New(rand.NewSource(seed))
			n := 2 + rng.Intn(2)
			var cfgs []MachineConfig
			starts := make([]time.Duration, n)
			sameStart := rng.Intn(4) == 0
			version := V3
			if rng.Intn(4) == 0 {
				version = V2
			}
			for i := range n {
				prio := uint8(1 + rng.Intn(255))
				if rng.Intn(3) == 0 && i > 0 {
					prio = cfgs[0].Priority // force ties
				}
				interval := time.Duration(1+rng.Intn(3)) * time.Second
				if version == V3 && rng.Intn(2) == 0 {
					interval = time.Duration(10+rng.Intn(200)) * 10 * time.Millisecond
				}
				if version == V2 && i > 0 {
					interval = cfgs[0].Interval // v2 routers must agree
				}
				cfgs = append(cfgs, MachineConfig{
					Version: version, Priority: prio, Interval: interval,
					Preempt: preempt, Addr: simAddr(i),
				})
				if !sameStart {
					starts[i] = time.Duration(rng.Int63n(int64(20 * time.Second)))
				}
			}
			name := fmt.Sprintf("preempt=%v/seed=%d", preempt, seed)
			t.Run(name, func(t *testing.T) {
				// A non-zero delay: with an instant wire, two Backups timing
				// out together would not both become Master, and the RFC
				// tie-break between Masters would never be exercised.
				delay := time.Microsecond + time.Duration(rng.Int63n(int64(5*time.Millisecond)))
				s := newSim(t, delay, cfgs...)
				for i, st := range starts {
					s.schedule(at(st), i, evStart, Advert{})
				}
				settled := at(20*time.Second + 2*time.Minute)
				s.run(settled)
				ms := s.masters()
				if len(ms) != 1 {
					t.Fatalf("masters = %v after convergence, cfgs %+v starts %v", ms, cfgs, starts)
				}
				got := ms[0]
				if preempt {
					want := expectedWinner(cfgs, starts)
					if want >= 0 && got != want {
						t.Fatalf("master is %d (prio %d), want %d (prio %d); starts %v",
							got, cfgs[got].Priority, want, cfgs[want].Priority, starts)
					}
					top := uint8(0)
					for _, c := range cfgs {
						top = max(top, c.Priority)
					}
					if cfgs[got].Priority != top {
						t.Fatalf("master %d has priority %d, top is %d", got, cfgs[got].Priority, top)
					}
				}
				s.run(settled.Add(5 * time.Minute))
				if ch := s.changesSince(settled); len(ch) > 0 {
					t.Fatalf("state changed after convergence: %+v", ch)
				}
				for i, nd := range s.nodes {
					if i != got && nd.m.MasterAddr() != simAddr(got) {
						t.Errorf("node %d: MasterAddr = %v, want %v", i, nd.m.MasterAddr(), simAddr(got))
					}
				}
			})
		}
	}
}

// expectedWinner returns the router that must win under preemption, or -1
// when the RFC leaves it to timing. The highest (priority, address) wins when
// its priority is unique, when the tied routers are owners (they go Master at
// once and settle by address), or when the tied routers start together with
// the same interval (they time out together and settle as Masters).
// Otherwise the first of them to become Master keeps it: a Backup accepts an
// advert of equal priority (RFC 5798 6.4.2).
func expectedWinner(cfgs []MachineConfig, starts []time.Duration) int {
	best := 0
	for i := range cfgs {
		if cfgs[i].Priority > cfgs[best].Priority ||
			cfgs[i].Priority == cfgs[best].Priority && cfgs[i].Addr.Compare(cfgs[best].Addr) > 0 {
			best = i
		}
	}
	for i := range cfgs {
		if i != best && cfgs[i].Priority == cfgs[best].Priority &&
			cfgs[best].Priority != 255 &&
			(starts[i] != starts[best] || cfgs[i].Interval != cfgs[best].Interval) {
			return -1
		}
	}
	return best
}

// TestSimStopHandsOver checks make-before-break end to end: the stopping
// master keeps the VIPs until the backup has taken them, then exits long
// before its StopTimeout.
func TestSimStopHandsOver(t *testing.T) {
	for _, version := range []Version{V2, V3} {
		t.Run(version.String(), func(t *testing.T) {
			a, b := cfg(200), cfg(100)
			a.Version, b.Version = version, version
			a.Addr, b.Addr = simAddr(0), simAddr(1)
			s := newSim(t, time.Millisecond, a, b)
			s.schedule(t0, 0, evStart, Advert{})
			s.schedule(t0, 1, evStart, Advert{})
			s.run(at(10 * time.Second))
			if ms := s.masters(); !slices.Equal(ms, []int{0}) {
				t.Fatalf("masters = %v, want [0]", ms)
			}
			stopAt := at(10*time.Second + 300*time.Millisecond)
			s.trackFrom = at(10 * time.Second)
			s.schedule(stopAt, 0, evStop, Advert{})
			s.run(at(20 * time.Second))
			if !s.nodes[0].stopped || s.nodes[0].state != StateStopped {
				t.Fatalf("node 0 did not stop: %v", s.nodes[0].state)
			}
			if ms := s.masters(); !slices.Equal(ms, []int{1}) {
				t.Fatalf("masters = %v, want [1]", ms)
			}
			if s.minHolders < 1 {
				t.Fatalf("VIPs were held by nobody during the handover")
			}
			var stoppedAt, tookAt time.Time
			for _, tr := range s.history {
				if tr.node == 0 && tr.to == StateStopped {
					stoppedAt = tr.at
				}
				if tr.node == 1 && tr.to == StateMaster && tr.at.After(stopAt) {
					tookAt = tr.at
				}
			}
			// Backup takes over after delay + skew(100) = 609.375ms. The old
			// master waits for the new one's second advert: its own
			// priority-0 resend one interval after Stop makes the new master
			// answer at once (RFC 5798 6.4.3), which arrives 2 delays later.
			wantTook := stopAt.Add(time.Millisecond + 609375*time.Microsecond)
			wantStopped := stopAt.Add(time.Second + 2*time.Millisecond)
			if !tookAt.Equal(wantTook) || !stoppedAt.Equal(wantStopped) {
				t.Fatalf("took over at %v, stopped at %v; want %v and %v", fmtT(tookAt), fmtT(stoppedAt), fmtT(wantTook), fmtT(wantStopped))
			}
		})
	}
}

// TestSimFaultAndRecovery: the master loses carrier, the backup takes over
// after Master_Down_Interval, and with preemption the master reclaims after
// its carrier returns; without preemption it stays Backup.
func TestSimFaultAndRecovery(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt=%v", preempt), func(t *testing.T) {
			a, b := cfg(200), cfg(100)
			a.Preempt, b.Preempt = preempt, preempt
			a.Addr, b.Addr = simAddr(0), simAddr(1)
			s := newSim(t, 0, a, b)
			s.schedule(t0, 0, evStart, Advert{})
			s.schedule(t0, 1, evStart, Advert{})
			s.run(at(10 * time.Second))
			if ms := s.masters(); !slices.Equal(ms, []int{0}) {
				t.Fatalf("masters = %v, want [0]", ms)
			}
			down := at(10*time.Second + 500*time.Millisecond)
			s.schedule(down, 0, evLinkDown, Advert{})
			s.run(at(20 * time.Second))
			if ms := s.masters(); !slices.Equal(ms, []int{1}) {
				t.Fatalf("masters after fault = %v, want [1]", ms)
			}
			s.schedule(at(30*time.Second), 0, evLinkUp, Advert{})
			s.run(at(60 * time.Second))
			want := []int{1}
			if preempt {
				want = []int{0}
			}
			if ms := s.masters(); !slices.Equal(ms, want) {
				t.Fatalf("masters after recovery = %v, want %v", ms, want)
			}
		})
	}
}

// TestSimSplitBrainHeals: two masters on either side of a partition; when it
// heals, the weaker one steps down within one advert of the first packet.
func TestSimSplitBrainHeals(t *testing.T) {
	a, b := cfg(100), cfg(100)
	a.Addr, b.Addr = simAddr(0), simAddr(1)
	a.Interval = 3 * time.Second // the winner advertises rarely
	ma, mb := NewMachine(a), NewMachine(b)
	ma.Start(t0)
	mb.Start(t0)
	ma.Timer(ma.Deadline())
	mb.Timer(mb.Deadline())
	expectState(t, ma, StateMaster)
	expectState(t, mb, StateMaster)
	// Partition heals: A (lower address) is heard by B first; B discards
	// it (RFC) but answers at once, and A steps down on that answer rather
	// than waiting for B's next scheduled advert.
	now := at(20 * time.Second)
	acts := mb.Advert(now, Advert{Src: a.Addr, Priority: 100, Interval: a.Interval})
	expect(t, "B reasserts", acts, send(100), reannoun)
	expect(t, "A steps down", ma.Advert(now, Advert{Src: b.Addr, Priority: acts[0].Priority, Interval: b.Interval}),
		send(0), trans(StateMaster, StateBackup, "higher address 10.0.0.2"))
}

func BenchmarkAdvert(b *testing.B) {
	b.Run("backup", func(b *testing.B) {
		m := NewMachine(cfg(100))
		m.Start(t0)
		adv := Advert{Src: addrHigh, Priority: 200, Interval: time.Second}
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Second)
			m.Advert(now, adv)
		}
	})
	b.Run("master-discard", func(b *testing.B) {
		m := NewMachine(cfg(255))
		m.Start(t0)
		adv := Advert{Src: addrLow, Priority: 100, Interval: time.Second}
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Millisecond)
			m.Advert(now, adv)
		}
	})
}

func TestStepDownHoldExpires(t *testing.T) {
	m, became := master(t, cfg(100))
	now := became.Add(100 * time.Millisecond)
	m.Advert(now, Advert{Src: addrLow, Priority: 200, Interval: time.Second})
	// Adverts from others don't end the hold; only the successor's or the timer.
	expect(t, "other", m.Advert(now.Add(10*time.Millisecond), Advert{Src: addrHigh, Priority: 50, Interval: time.Second}))
	expect(t, "before", m.Timer(now.Add(2500*time.Millisecond-1)))
	expect(t, "expiry", m.Timer(now.Add(2500*time.Millisecond)), release)
	expectState(t, m, StateBackup)
}

func TestFailbackAndFailover(t *testing.T) {
	c := cfg(100)
	c.Preempt = false
	t.Run("failback from backup", func(t *testing.T) {
		m := started(t, c)
		m.Advert(at(time.Second), Advert{Src: addrLow, Priority: 50, Interval: time.Second})
		acts, err := m.Failback(at(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "failback", acts, send(100), take, trans(StateBackup, StateMaster, "failback requested"))
		if _, err := m.Failback(at(3 * time.Second)); !errors.Is(err, ErrNotBackup) {
			t.Errorf("failback as master: err = %v", err)
		}
	})
	t.Run("failback refused against a stronger master", func(t *testing.T) {
		m := started(t, c)
		m.Advert(at(time.Second), Advert{Src: addrLow, Priority: 200, Interval: time.Second})
		if _, err := m.Failback(at(2 * time.Second)); err == nil || !strings.Contains(err.Error(), "priority 200") {
			t.Errorf("err = %v", err)
		}
		expectState(t, m, StateBackup)
	})
	t.Run("failover hands over and does not preempt back", func(t *testing.T) {
		pc := cfg(100)
		m, became := master(t, pc)
		if _, err := (NewMachine(pc)).Failover(became); !errors.Is(err, ErrNotMaster) {
			t.Errorf("failover in INIT: %v", err)
		}
		now := became.Add(100 * time.Millisecond)
		acts, err := m.Failover(now)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "failover", acts, send(0), trans(StateMaster, StateBackup, "failover requested"))
		// The peer (lower priority) takes over: first advert names it, the second releases.
		lower := Advert{Src: addrLow, Priority: 50, Interval: time.Second}
		expect(t, "successor", m.Advert(now.Add(700*time.Millisecond), lower))
		// The second ends the hold half an interval later.
		expect(t, "successor again", m.Advert(now.Add(1700*time.Millisecond), lower))
		expect(t, "before the grace ends", m.Timer(now.Add(2199*time.Millisecond)))
		expect(t, "the grace's end", m.Timer(now.Add(2200*time.Millisecond)), release)
		// Preempt is on, but a manual failover sticks: lower adverts are accepted.
		for i := 2; i < 10; i++ {
			m.Advert(now.Add(time.Duration(i)*time.Second+700*time.Millisecond), lower)
		}
		expect(t, "no preemption", m.Timer(now.Add(10*time.Second)))
		expectState(t, m, StateBackup)
	})
	t.Run("failover with nobody to take over comes back", func(t *testing.T) {
		m, became := master(t, cfg(100))
		m.Failover(became)
		acts := m.Timer(became.Add(m.MasterDownInterval()))
		expect(t, "back", acts, send(100), take, trans(StateBackup, StateMaster, "master down timer expired"))
	})
}

func TestStartHolding(t *testing.T) {
	t.Run("nobody else: master without a gap", func(t *testing.T) {
		m := NewMachine(cfg(100))
		expect(t, "start", m.StartHolding(t0), trans(StateInit, StateBackup, "startup"))
		expect(t, "down", m.Timer(t0.Add(m.MasterDownInterval())), send(100), take, trans(StateBackup, StateMaster, "master down timer expired"))
	})
	t.Run("another master: let go after its second advert", func(t *testing.T) {
		m := NewMachine(cfg(100))
		m.StartHolding(t0)
		high := Advert{Src: addrHigh, Priority: 200, Interval: time.Second}
		expect(t, "first", m.Advert(at(100*time.Millisecond), high))
		expect(t, "second", m.Advert(at(1100*time.Millisecond), high))
		expect(t, "half an interval later", m.Timer(at(1600*time.Millisecond)), release)
		expectState(t, m, StateBackup)
	})
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time               { return c.t }
func (c fixedClock) NewTimer(time.Duration) Timer { panic("no timers here") }

// The carrier and the tracked fault are two causes of one FAULT: the
// instance leaves it only when both are right, and says goodbye with a
// priority-0 advert only when the link still works.
func TestInstanceHealth(t *testing.T) {
	m, became := master(t, cfg(100))
	now := became.Add(time.Second)
	in := &Instance{m: m, clock: fixedClock{now}, carrier: true}
	expect(t, "tracked fault", in.health(now, true, true), send(0), release, trans(StateMaster, StateFault, "tracked object down"))
	expect(t, "carrier lost too", in.health(now, false, true))
	expect(t, "fault cleared, carrier still down", in.health(now, false, false))
	expectState(t, m, StateFault)
	expect(t, "carrier back", in.health(now, true, false), trans(StateFault, StateBackup, "link up"))
	expect(t, "carrier lost", in.health(now, false, false), trans(StateBackup, StateFault, "link down"))
}

// A Master that stepped down for a higher priority keeps its VIPs past
// the successor's answer to its priority-0 advert (sent at once, maybe
// before the successor's VIP move) and past the successor's first regular
// advert (its VIP move may still run: EC2, a busy host), and lets them go
// at the one after.
func TestStepDownHoldIgnoresReassertAnswer(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMachine(MachineConfig{Version: V3, Priority: 100, Interval: time.Second, Preempt: true, Addr: addrSelf})
	m.Start(now)
	m.Timer(now.Add(4 * time.Second)) // nobody heard: Master
	if m.State() != StateMaster {
		t.Fatalf("state %s, want MASTER", m.State())
	}
	at := now.Add(5 * time.Second)
	succ := Advert{Src: addrHigh, Priority: 150, Interval: time.Second}
	expect(t, "higher priority", m.Advert(at, succ), send(0), trans(StateMaster, StateBackup, "higher priority"))
	// The successor answers our priority-0 advert 5 ms later.
	expect(t, "the successor's answer to our priority 0", m.Advert(at.Add(5*time.Millisecond), succ))
	// Its next regular advert, an interval after its first: too soon.
	expect(t, "the successor's next advert", m.Advert(at.Add(time.Second), succ))
	// The one after: the successor has surely announced the VIPs.
	// The one after: the successor has surely announced the VIPs, and
	// announces again with it; the hold ends a grace later, before its
	// cap (two intervals and the grace after the step-down).
	expect(t, "the successor's advert after that", m.Advert(at.Add(1500*time.Millisecond), succ))
	expect(t, "the hold's end", m.Timer(at.Add(2*time.Second)), release)
}

// A Master that steps down for a stronger one's advert hears the
// successor's hold-ending advert two intervals later (its adverts run
// from its answer to our priority-0 advert): the hold must outlast that
// advert by the grace, so that the announcement sent with it is out
// before we let go (the cap once fell exactly there).
func TestStepDownHoldOutlastsEndingAdvert(t *testing.T) {
	m, became := master(t, cfg(100))
	now := became.Add(10 * time.Second)
	succ := Advert{Src: addrHigh, Priority: 200, Interval: time.Second}
	expect(t, "higher priority", m.Advert(now, succ), send(0), trans(StateMaster, StateBackup, "higher priority"))
	answer := now.Add(5 * time.Millisecond)
	expect(t, "its answer", m.Advert(answer, succ))
	expect(t, "its next advert: too soon", m.Advert(answer.Add(time.Second), succ))
	ending := answer.Add(2 * time.Second)
	expect(t, "the ending advert", m.Advert(ending, succ))
	expect(t, "its grace has not run out", m.Timer(ending.Add(400*time.Millisecond)))
	expect(t, "the cap", m.Timer(now.Add(2500*time.Millisecond)), release)
}
