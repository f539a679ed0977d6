package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/testwait"
)

// gateMover's Take waits until the test opens the gate, ignoring its
// context like a hung cloud call.
type gateMover struct {
	gate    chan struct{}
	mu      sync.Mutex
	entered bool
}

func (g *gateMover) Take(context.Context) error {
	g.mu.Lock()
	g.entered = true
	g.mu.Unlock()
	<-g.gate
	return nil
}
func (g *gateMover) Announce(context.Context) error { return nil }
func (g *gateMover) Release(context.Context) error  { return nil }
func (g *gateMover) inTake() bool                   { g.mu.Lock(); defer g.mu.Unlock(); return g.entered }

// notes records state notes in order.
type notes struct {
	mu sync.Mutex
	s  []State
}

func (n *notes) add(s State, _ uint8) { n.mu.Lock(); n.s = append(n.s, s); n.mu.Unlock() }
func (n *notes) get() []State         { n.mu.Lock(); defer n.mu.Unlock(); return slices.Clone(n.s) }

// A MASTER note follows the completed Take; a move hung past its timeout
// makes the worker report itself stuck (for the watchdog) until it returns.
func TestMoverWorkerNoteAfterMoveAndStuck(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := &gateMover{gate: make(chan struct{})}
	w := newMoverWorker(g, quietLog(), 10*time.Second, clock)
	w.assume(false)
	var n notes
	w.set(true)
	w.notify(n.add, StateMaster, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()
	testwait.Eventually(t, 5*time.Second, "Take entered", g.inTake)
	if got := n.get(); len(got) != 0 {
		t.Fatalf("note %v delivered before the Take finished", got)
	}
	if err := w.stuck(); err != nil {
		t.Fatalf("stuck within the timeout: %v", err)
	}
	mu.Lock()
	now = now.Add(10*time.Second + stuckGrace + time.Second)
	mu.Unlock()
	if err := w.stuck(); err == nil {
		t.Fatal("a Take hung past its timeout is not reported stuck")
	}
	close(g.gate)
	testwait.Eventually(t, 5*time.Second, "MASTER note", func() bool { return slices.Equal(n.get(), []State{StateMaster}) })
	testwait.Eventually(t, 5*time.Second, "not stuck once the pass ends", func() bool { return w.stuck() == nil })
}

// A graceful stop delivers the STOPPED note after the VIPs are released.
func TestInstanceStopNote(t *testing.T) {
	la := &lastAdvert{src: netip.MustParseAddr("10.0.0.11")}
	ev := &eventLog{}
	mv := &logMover{name: "a", log: ev}
	var n notes
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 150, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
		Notify:    n.add,
	}, la, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	eventually(t, "MASTER note", func() bool { return slices.Contains(n.get(), StateMaster) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := n.get()
	if len(got) == 0 || got[len(got)-1] != StateStopped {
		t.Errorf("notes %v, want the last to be STOPPED", got)
	}
	if mv.Held() {
		t.Error("VIPs held after stop")
	}
}

// skewClock is the real clock shifted by a settable offset.
type skewClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *skewClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}
func (c *skewClock) NewTimer(d time.Duration) Timer { return SystemClock{}.NewTimer(d) }
func (c *skewClock) skip(d time.Duration)           { c.mu.Lock(); c.off += d; c.mu.Unlock() }

// The watchdog's Ping fails while a VIP move hangs past its timeout,
// though the instance loop itself still answers.
func TestInstancePingFailsOnStuckMover(t *testing.T) {
	g := &gateMover{gate: make(chan struct{})}
	clock := &skewClock{}
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:     MachineConfig{Version: V3, Priority: 150, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses:   []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:       netip.MustParseAddr("224.0.0.18"),
		Logger:      quietLog(),
		Clock:       clock,
		MoveTimeout: time.Second,
	}, &lastAdvert{src: netip.MustParseAddr("10.0.0.11")}, g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { close(g.gate); cancel(); <-done }()
	testwait.Eventually(t, 5*time.Second, "Take entered", g.inTake)
	if err := in.Ping(context.Background()); err != nil {
		t.Fatalf("Ping within the timeout: %v", err)
	}
	clock.skip(time.Second + stuckGrace + time.Second)
	if err := in.Ping(context.Background()); err == nil {
		t.Error("Ping passed with the mover stuck past its timeout")
	}
}

// slowTakeMover models vip.Local on a loaded host: Take adds the
// addresses, then waits for the test's gate (the slow part), and
// announces only if its context is still live. It records announcements,
// releases and Quiet calls.
type slowTakeMover struct {
	gate chan struct{}

	mu                              sync.Mutex
	entered, returned, announced    bool
	releases, quiets, announceCalls int
}

func (m *slowTakeMover) Take(ctx context.Context) error {
	m.mu.Lock()
	m.entered = true
	m.mu.Unlock()
	select {
	case <-m.gate:
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.returned = true
	if err := ctx.Err(); err != nil {
		return err // added, not announced
	}
	m.announced = true
	return nil
}

func (m *slowTakeMover) Announce(context.Context) error {
	m.mu.Lock()
	m.announceCalls++
	m.mu.Unlock()
	return nil
}

func (m *slowTakeMover) Release(context.Context) error {
	m.mu.Lock()
	m.releases++
	m.mu.Unlock()
	return nil
}

func (m *slowTakeMover) Quiet() { m.mu.Lock(); m.quiets++; m.mu.Unlock() }

func (m *slowTakeMover) snap() (entered, returned, announced bool, releases, quiets, announces int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entered, m.returned, m.announced, m.releases, m.quiets, m.announceCalls
}

// A backup that became master takes the VIPs; if a higher priority is
// heard while that Take is still running, the Take must not announce
// them after the step-down (it would pull clients to a node that is
// letting the VIPs go, and the winner may have re-announced already);
// what it added is released. The winner's advert asks for a long hold
// (10 s), so only the step-down itself can stop the Take in time.
func TestStepDownCancelsTakeBeforeAnnouncing(t *testing.T) {
	mv := &slowTakeMover{gate: make(chan struct{})}
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 100, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
	}, &lastAdvert{src: netip.MustParseAddr("10.0.0.12")}, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { close(mv.gate); cancel(); <-done }()
	eventually(t, "MASTER, Take under way", func() bool {
		entered, _, _, _, _, _ := mv.snap()
		return entered && in.Stats().State == StateMaster
	})
	in.Deliver(Received{Src: netip.MustParseAddr("10.0.0.11"), Dst: netip.MustParseAddr("224.0.0.18"),
		Packet: &Packet{Version: V3, VRID: 7, Priority: 200, Interval: 10 * time.Second}})
	eventually(t, "BACKUP", func() bool { return in.Stats().State == StateBackup })
	eventually(t, "the Take returned", func() bool {
		if _, returned, _, _, _, _ := mv.snap(); returned {
			return true
		}
		// Before the fix nothing stops the Take: let it finish.
		select {
		case mv.gate <- struct{}{}:
		default:
		}
		return false
	})
	eventually(t, "the unannounced addresses released", func() bool {
		_, _, _, releases, _, _ := mv.snap()
		return releases > 0
	})
	if _, _, announced, _, _, announces := mv.snap(); announced || announces > 0 {
		t.Errorf("the VIPs were announced after the step-down (take announced %t, Announce calls %d)", announced, announces)
	}
}

// A master that steps down with its VIPs taken keeps them, quietly: no
// release until the successor is heard again, the rest of its
// announcements stopped (Quiet), and no re-announcement while it holds.
func TestStepDownHoldsQuietly(t *testing.T) {
	mv := &slowTakeMover{gate: make(chan struct{})}
	close(mv.gate) // Takes complete at once
	clock := &skewClock{}
	in := NewInstance(InstanceConfig{
		Clock: clock,
		Name:  "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 100, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
	}, &lastAdvert{src: netip.MustParseAddr("10.0.0.12")}, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { cancel(); <-done }()
	eventually(t, "MASTER with the VIPs announced", func() bool {
		_, _, announced, _, _, _ := mv.snap()
		return announced && in.Stats().State == StateMaster
	})
	_, _, _, releasesBefore, _, _ := mv.snap()
	winner := Received{Src: netip.MustParseAddr("10.0.0.11"), Dst: netip.MustParseAddr("224.0.0.18"),
		Packet: &Packet{Version: V3, VRID: 7, Priority: 200, Interval: 10 * time.Second}}
	in.Deliver(winner)
	eventually(t, "BACKUP, quiet", func() bool {
		_, _, _, _, quiets, _ := mv.snap()
		return in.Stats().State == StateBackup && quiets > 0
	})
	if _, _, _, releases, _, announces := mv.snap(); releases != releasesBefore || announces > 0 {
		t.Errorf("stepping down released %d times and announced %d times, want neither before the successor is heard again", releases-releasesBefore, announces)
	}
	// The successor's advert 1.5 of its intervals or more after the
	// step-down ends the hold.
	clock.skip(16 * time.Second)
	in.Deliver(winner)
	eventually(t, "released once the successor is heard again", func() bool {
		_, _, _, releases, _, _ := mv.snap()
		return releases > releasesBefore
	})
}

// stalledSocket is a Sender whose socket has a packet waiting unread
// until the test delivers it, as after a stall of the whole process.
type stalledSocket struct {
	lastAdvert
	pending atomic.Bool
	asked   chan struct{} // closed at the first Pending call while pending
	once    sync.Once
}

func (s *stalledSocket) Pending() bool {
	p := s.pending.Load()
	if p {
		s.once.Do(func() { close(s.asked) })
	}
	return p
}

// A Backup whose Master_Down_Timer fires while the Master's advert waits
// unread on the socket hears that advert first and stays Backup.
func TestBackupHearsPendingAdvertBeforeTakingOver(t *testing.T) {
	sock := &stalledSocket{lastAdvert: lastAdvert{src: netip.MustParseAddr("10.0.0.12")}, asked: make(chan struct{})}
	var mu sync.Mutex
	var states []State
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 100, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
		OnState:   func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() },
	}, sock, &logMover{name: "a", log: &eventLog{}})
	// The master's interval (learned) leaves about a second between its
	// advert and the timer for the test to mark the socket pending.
	master := Received{Src: netip.MustParseAddr("10.0.0.11"), Dst: netip.MustParseAddr("224.0.0.18"),
		Packet: &Packet{Version: V3, VRID: 7, Priority: 200, Interval: 300 * time.Millisecond}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { cancel(); <-done }()
	in.Deliver(master)
	eventually(t, "BACKUP hearing the master", func() bool { return in.Stats().AdvertsRecv == 1 })
	// The master's next advert "arrives" but stays unread until the
	// Master_Down_Timer has fired.
	sock.pending.Store(true)
	select {
	case <-sock.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the instance never looked at its socket when the timer fired")
	}
	in.Deliver(master)
	sock.pending.Store(false)
	eventually(t, "the pending advert handled", func() bool { return in.Stats().AdvertsRecv == 2 })
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(states, StateMaster) {
		t.Errorf("states %v: took over with the master's advert waiting on the socket", states)
	}
}

// A Backup's Master_Down_Timer runs from when the master's advert reached
// the host (Received.At, the kernel's receive time), not from when the
// instance got to it: a daemon that read its socket late would otherwise
// take over late by its own delay.
func TestMasterDownRunsFromArrival(t *testing.T) {
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 100, Interval: time.Second, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
	}, &lastAdvert{src: netip.MustParseAddr("10.0.0.12")}, &logMover{name: "a", log: &eventLog{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { cancel(); <-done }()
	// Master_Down_Interval at 1 s adverts and priority 100: about 3.6 s.
	// The advert arrived 3 s before the instance reads it.
	start := time.Now()
	in.Deliver(Received{Src: netip.MustParseAddr("10.0.0.11"), Dst: netip.MustParseAddr("224.0.0.18"), At: start.Add(-3 * time.Second),
		Packet: &Packet{Version: V3, VRID: 7, Priority: 200, Interval: time.Second}})
	eventually(t, "MASTER", func() bool { return in.Stats().State == StateMaster })
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("became MASTER %v after reading an advert that arrived 3 s earlier, want about 0.6 s", took)
	}
}
