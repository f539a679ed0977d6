package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/internal/fdtimer"
)

// Mover holds or gives up an instance's virtual addresses: locally with
// netlink and gratuitous ARP, or in a cloud API. vip.Local and cloud.EC2Mover
// implement it; this is its only declaration.
//
// Take must not announce the addresses once ctx is done: the instance
// cancels a Take in flight when it steps down, and a late announcement
// would pull clients to a node that is letting the addresses go.
type Mover interface {
	Take(ctx context.Context) error
	Announce(ctx context.Context) error
	Release(ctx context.Context) error
}

// Quieter is implemented by movers that can stop announcing while they
// keep the addresses (vip.Local): a master that stepped down keeps its
// VIPs until the successor has surely taken them, and must not pull
// clients back with the rest of its announcement burst meanwhile.
type Quieter interface {
	Quiet()
}

// Sender sends encoded advertisements. *transport.Conn implements it.
type Sender interface {
	WriteTo(payload []byte, dst netip.Addr) error
	Source() netip.Addr
}

// Clock is the instance's source of time, faked in tests.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer an Instance uses. The value received
// from C is not used: the loop reads its clock. A Timer that holds
// resources also implements io.Closer; the Instance closes it when done.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// SystemClock is the real clock. Its timers are timerfds where the kernel
// has them (internal/fdtimer says why), else runtime timers.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) NewTimer(d time.Duration) Timer {
	if t, err := fdtimer.New(); err == nil {
		t.Reset(d)
		return t
	}
	return sysTimer{time.NewTimer(d)}
}

// releaseTimer stops t and frees what it holds.
func releaseTimer(t Timer) {
	t.Stop()
	if c, ok := t.(io.Closer); ok {
		_ = c.Close()
	}
}

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }
func (s sysTimer) Reset(d time.Duration) bool {
	return s.t.Reset(d)
}

// InstanceConfig is everything one VRRP instance needs.
type InstanceConfig struct {
	Name    string
	VRID    uint8
	Machine MachineConfig
	// Addresses are the VIPs carried in adverts.
	Addresses []netip.Addr
	// Peers are the unicast destinations; empty means multicast to Group.
	// In unicast only their adverts count.
	Peers []netip.Addr
	// Sources, in multicast, are the only addresses whose adverts count;
	// empty: any.
	Sources []netip.Addr
	Group   netip.Addr
	// AuthType and AuthData are VRRPv2 authentication (type 1, simple text).
	AuthType uint8
	AuthData [8]byte
	// Notify, if set, is called on every change to MASTER, BACKUP, FAULT
	// or STOPPED, in order, off the instance goroutine: on the VIP mover's,
	// after the move that change asked for (a MASTER note once the VIPs
	// are taken). It must not block: enqueue and return.
	Notify func(s State, priority uint8)
	// OnState, if set, is called on the instance goroutine after every
	// change of state. It must not block.
	OnState func(s State)
	// Gate is the sync group's decision at start (GateFree outside a
	// group); SetGate changes it.
	Gate GroupGate
	// OnMember, if set, is called on the instance goroutine whenever the
	// state or the readiness a sync group needs changes. It must not block.
	OnMember func(MemberStatus)
	Logger   *slog.Logger
	Clock    Clock
	// MoveTimeout bounds one Take/Release/Announce call.
	MoveTimeout time.Duration
}

// Received is an advertisement that passed the packet-level checks.
type Received struct {
	Src, Dst netip.Addr
	Packet   *Packet
	// At is when the packet reached this host (the kernel's receive
	// time); zero if unknown.
	At time.Time
}

// Stats is a snapshot of an instance for `director state` and metrics.
type Stats struct {
	Name           string
	VRID           uint8
	State          State
	Priority       uint8
	Master         netip.Addr
	LastTransition time.Time
	LastReason     string
	Transitions    uint64
	// Ready and Gate are the sync group's view (see MemberStatus).
	Ready       bool
	Gate        GroupGate
	AdvertsSent uint64
	AdvertsRecv uint64
	Drops       map[DropReason]uint64
}

// Instance runs one Machine. Deliver and Stats are safe from any goroutine;
// everything else happens on the goroutine that calls Run.
type Instance struct {
	cfg   InstanceConfig
	m     *Machine
	send  Sender
	mover *moverWorker
	log   *slog.Logger
	clock Clock

	inbox  chan Received
	linkCh chan bool
	// faultCh carries tracked faults (SetFault); carrier and faulted
	// are what the loop last applied from the two channels.
	faultCh          chan bool
	carrier, faulted bool
	prioCh           chan uint8
	addrCh           chan []netip.Addr
	gateCh           chan GroupGate
	reqCh            chan request
	// member is the status last given to OnMember.
	member MemberStatus

	sent, recv atomic.Uint64
	// late measures how late the loop's timer fires (see noteLate): only
	// the loop touches it.
	late  lateness
	mu    sync.Mutex // guards drops and snap
	drops map[DropReason]uint64
	snap  Stats
	buf   []byte
}

// inboxSize bounds the queue between the socket and the machine; a flood
// beyond it is dropped and counted rather than delaying our own timers.
const inboxSize = 128

// NewInstance prepares an instance; Run starts it.
func NewInstance(cfg InstanceConfig, send Sender, mover Mover) *Instance {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.MoveTimeout == 0 {
		cfg.MoveTimeout = 10 * time.Second
	}
	if !cfg.Machine.Addr.IsValid() {
		cfg.Machine.Addr = send.Source()
	}
	log := cfg.Logger.With("instance", cfg.Name, "vrid", cfg.VRID)
	in := &Instance{
		cfg:     cfg,
		m:       NewMachine(cfg.Machine),
		send:    send,
		log:     log,
		clock:   cfg.Clock,
		inbox:   make(chan Received, inboxSize),
		linkCh:  make(chan bool, 1),
		faultCh: make(chan bool, 1),
		prioCh:  make(chan uint8, 1),
		addrCh:  make(chan []netip.Addr, 1),
		gateCh:  make(chan GroupGate, 1),
		reqCh:   make(chan request),
		drops:   map[DropReason]uint64{},
	}
	in.mover = newMoverWorker(mover, log, cfg.MoveTimeout, cfg.Clock.Now)
	in.m.SetGate(cfg.Clock.Now(), cfg.Gate) // in INIT it only records the gate
	in.snapshot()
	return in
}

// presenceChecker is implemented by movers that can tell whether the VIPs
// are on this node now (vip.Local).
type presenceChecker interface {
	Present(ctx context.Context) (bool, error)
}

func (in *Instance) present() bool {
	pc, ok := in.mover.mover.(presenceChecker)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.MoveTimeout)
	defer cancel()
	held, err := pc.Present(ctx)
	if err != nil {
		in.log.Warn("cannot tell whether the VIPs are held; starting without them", "err", err)
		return false
	}
	return held
}

// Name is the instance's configured name.
func (in *Instance) Name() string { return in.cfg.Name }

// Drop counts a packet discarded for this instance.
func (in *Instance) Drop(r DropReason, src netip.Addr, detail string) {
	in.mu.Lock()
	in.drops[r]++
	n := in.drops[r]
	in.mu.Unlock()
	// Log the first of each kind and then sparsely, so a flood cannot fill the journal.
	if n == 1 || n&(n-1) == 0 {
		in.log.Warn("dropped advertisement", "reason", string(r), "from", src, "detail", detail, "count", n)
	}
}

// Deliver queues a received advert after the per-instance checks. It never
// blocks: when the queue is full the packet is dropped and counted.
func (in *Instance) Deliver(r Received) {
	p := r.Packet
	switch {
	case p.Version != in.cfg.Machine.Version:
		in.Drop(DropVersion, r.Src, fmt.Sprintf("version %d, this instance runs %d", p.Version, in.cfg.Machine.Version))
		return
	case len(in.cfg.Peers) > 0 && !slices.Contains(in.cfg.Peers, r.Src):
		in.Drop(DropStranger, r.Src, "not a configured unicast peer")
		return
	case len(in.cfg.Sources) > 0 && !slices.Contains(in.cfg.Sources, r.Src):
		in.Drop(DropStranger, r.Src, "not an allowed source")
		return
	case p.Version == V2 && (p.AuthType != in.cfg.AuthType || (p.AuthType == 1 && p.AuthData != in.cfg.AuthData)):
		in.Drop(DropAuth, r.Src, fmt.Sprintf("auth type %d", p.AuthType))
		return
	case p.Version == V2 && p.Interval != in.cfg.Machine.Interval:
		// RFC 3768 6.4.3: v2 routers must agree on the interval.
		in.Drop(DropInterval, r.Src, fmt.Sprintf("interval %s, ours %s", p.Interval, in.cfg.Machine.Interval))
		return
	}
	select {
	case in.inbox <- r:
	default:
		in.Drop(DropOverflow, r.Src, "receive queue full")
	}
}

// SetLink tells the instance its interface's carrier changed. It never
// blocks: only the latest state matters.
func (in *Instance) SetLink(up bool) { latest(in.linkCh, up) }

// SetFault puts the instance in FAULT (true) or lets it out (false) for
// a reason other than its link: a tracked object with weight 0 is down.
// It never blocks.
func (in *Instance) SetFault(fault bool) { latest(in.faultCh, fault) }

// health applies a change of carrier or tracked fault: FAULT while either
// is wrong, left once both are right again.
func (in *Instance) health(now time.Time, carrier, fault bool) []Action {
	wasOK := in.carrier && !in.faulted
	in.carrier, in.faulted = carrier, fault
	switch {
	case carrier && !fault && !wasOK:
		return in.m.LinkUp(now)
	case !carrier:
		return in.m.LinkDown(now)
	case fault:
		return in.m.Fault(now, "tracked object down")
	}
	return nil
}

// SetPriority changes the priority at run time (check tracking).
func (in *Instance) SetPriority(p uint8) { latest(in.prioCh, p) }

// SetAddresses changes the VIPs the adverts carry (a reload added or
// removed some); the state is kept. Moving the addresses themselves is the
// mover's business.
func (in *Instance) SetAddresses(a []netip.Addr) { latest(in.addrCh, slices.Clone(a)) }

// SetGate passes on the sync group's decision. It never blocks: only the
// latest decision matters.
func (in *Instance) SetGate(g GroupGate) { latest(in.gateCh, g) }

// latest puts v in a one-slot channel, replacing any value not yet taken.
func latest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}

// request is a manual command carried to the instance goroutine.
type request struct {
	failover bool // false: failback
	ping     bool // only prove the goroutine is alive
	reply    chan error
}

// Ping returns once the instance goroutine has answered and its VIP mover
// is not stuck past its timeout: the watchdog's proof that neither the
// VRRP loop nor the moves hang.
func (in *Instance) Ping(ctx context.Context) error {
	r := request{ping: true, reply: make(chan error, 1)}
	select {
	case in.reqCh <- r:
		if err := <-r.reply; err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("instance %s does not answer: %w", in.cfg.Name, ctx.Err())
	}
	if err := in.mover.stuck(); err != nil {
		return fmt.Errorf("instance %s: %w", in.cfg.Name, err)
	}
	return nil
}

// Failback makes this node master now, as a one-time preemption.
func (in *Instance) Failback(ctx context.Context) error { return in.request(ctx, false) }

// Failover hands mastership to the peer with a make-before-break handover.
func (in *Instance) Failover(ctx context.Context) error { return in.request(ctx, true) }

func (in *Instance) request(ctx context.Context, failover bool) error {
	r := request{failover: failover, reply: make(chan error, 1)}
	select {
	case in.reqCh <- r:
	case <-ctx.Done():
		return fmt.Errorf("instance %s is not running: %w", in.cfg.Name, ctx.Err())
	}
	return <-r.reply
}

// Stats returns a snapshot.
func (in *Instance) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.snap
	s.AdvertsSent = in.sent.Load()
	s.AdvertsRecv = in.recv.Load()
	s.Drops = make(map[DropReason]uint64, len(in.drops))
	for k, v := range in.drops {
		s.Drops[k] = v
	}
	return s
}

// Run runs the instance until ctx ends, then stops gracefully: a master
// sends a priority-0 advert and keeps its VIPs until the new master is
// heard (or the machine's stop timeout passes), then releases them.
// linkUp is the carrier state at start.
func (in *Instance) Run(ctx context.Context, linkUp bool) error {
	in.carrier = linkUp
	held := linkUp && in.present()
	if held {
		in.mover.assume(true) // before the worker starts, so it does not release them
	}
	moverCtx, stopMover := context.WithCancel(context.Background())
	moverDone := make(chan struct{})
	go func() { defer close(moverDone); in.mover.run(moverCtx) }()
	switch {
	case linkUp && held:
		// Restarted after a crash while master: the kernel still forwards
		// for the VIPs. Keep them as a make-before-break hold: we become
		// master again without a gap, or let go once another master is
		// heard, instead of dropping them first.
		in.apply(in.m.StartHolding(in.clock.Now()))
	case linkUp:
		in.mover.set(false)
		in.apply(in.m.Start(in.clock.Now()))
	default:
		in.mover.set(false)
		in.apply(in.m.LinkDown(in.clock.Now()))
	}
	done := ctx.Done()
	stopped := false
	// One timer, re-armed each turn, and two clock reads per turn (the
	// event's time, and the time it is re-armed at): inside a UML guest
	// every clock read and timer allocation is a trapped system call or
	// more runtime work, and at 20 ms adverts this loop turns 50 times a
	// second. The timer is armed from a fresh read so that a turn that
	// was slow (preempted while sending) does not push the next advert
	// back by its own delay. The timer channel's value is no substitute:
	// it is the time the timer was due, not when it fired.
	var t Timer
	defer func() {
		if t != nil {
			releaseTimer(t)
		}
	}()
	var now time.Time
	for !stopped {
		var timerC <-chan time.Time
		due := in.m.Deadline()
		switch {
		case !due.IsZero() && t == nil:
			t = in.clock.NewTimer(max(due.Sub(in.clock.Now()), 0))
			timerC = t.C()
		case !due.IsZero():
			t.Reset(max(due.Sub(in.clock.Now()), 0))
			timerC = t.C()
		case t != nil:
			t.Stop()
		}
		var acts []Action
		select {
		case <-done:
			now = in.clock.Now()
			done = nil // stop once; keep running until the machine says Stopped
			acts = in.m.Stop(now)
		case <-timerC:
			now = in.clock.Now()
			late := now.Sub(due)
			in.noteLate(now, late)
			if late >= lateTimer && in.m.TakeoverDue(now) {
				// Evidence for a takeover after a stall of this process.
				in.log.Info("master down timer fired late", "late", late.Round(time.Millisecond))
			}
			// After a stall, the advert that would have reset the timer may
			// be queued already; select picks at random, so hear it first
			// rather than take over for a few milliseconds.
			var heard bool
			acts, heard = in.drainInbox()
			more, waited := in.awaitPending(now)
			acts = append(acts, more...)
			if heard || waited {
				now = in.clock.Now()
			}
			acts = append(acts, in.m.Timer(now)...)
		case r := <-in.inbox:
			now = in.clock.Now()
			acts = in.advert(r, now)
		case up := <-in.linkCh:
			now = in.clock.Now()
			acts = in.health(now, up, in.faulted)
		case f := <-in.faultCh:
			now = in.clock.Now()
			acts = in.health(now, in.carrier, f)
		case p := <-in.prioCh:
			now = in.clock.Now()
			acts = in.m.SetPriority(now, p)
		case g := <-in.gateCh:
			if g != in.m.Gate() {
				in.log.Debug("sync group gate", "gate", g.String())
			}
			now = in.clock.Now()
			acts = in.m.SetGate(now, g)
		case a := <-in.addrCh:
			in.cfg.Addresses = a
			in.log.Info("advertised addresses changed", "addresses", a)
		case r := <-in.reqCh:
			var err error
			now = in.clock.Now()
			switch {
			case r.ping:
			case r.failover:
				acts, err = in.m.Failover(now)
			default:
				acts, err = in.m.Failback(now)
			}
			r.reply <- err
		}
		stopped = in.apply(acts)
	}
	stopMover()
	<-moverDone
	// Release synchronously so the addresses are gone before the process exits.
	rctx, cancel := context.WithTimeout(context.Background(), in.cfg.MoveTimeout)
	defer cancel()
	err := in.mover.mover.Release(rctx)
	in.mover.flushNotes() // the STOP note, after the VIPs are gone
	if err != nil {
		return fmt.Errorf("instance %s: release VIPs on stop: %w", in.cfg.Name, err)
	}
	return nil
}

// lateness counts the loop's timers that fired late. A master whose
// advert timer fires late sends late, and its backup may take over; a
// backup whose timer fires late misses nothing but shows the same
// starvation. Either way the cause is this process not getting the CPU
// in time, which the log then says, at most every lateLog.
type lateness struct {
	count  int           // timers late by more than half an interval since the last line
	max    time.Duration // the latest of them
	logged time.Time
}

const lateLog = 10 * time.Second

func (in *Instance) noteLate(now time.Time, late time.Duration) {
	if late <= in.cfg.Machine.Interval/2 {
		return
	}
	l := &in.late
	l.count++
	l.max = max(l.max, late)
	if now.Sub(l.logged) < lateLog {
		return
	}
	in.log.Warn("vrrp timer fired late: this process did not get the CPU in time", "late", l.max.Round(time.Millisecond).String(),
		"times", l.count, "interval", in.cfg.Machine.Interval.String(), "state", in.m.State().String())
	l.count, l.max, l.logged = 0, 0, now
}

// advert hands r to the machine; now is when this turn of the loop began.
func (in *Instance) advert(r Received, now time.Time) []Action {
	in.recv.Add(1)
	return in.m.Advert(in.arrival(r, now), Advert{Src: r.Src, Priority: r.Packet.Priority, Interval: r.Packet.Interval})
}

// arrival is the time the machine hears r at: when it reached this host,
// if the socket said and that lies within the last Master_Down_Interval,
// so that a daemon slow to read its socket (scheduling, a stall) does not
// push its Master_Down_Timer back by its own delay; else now.
func (in *Instance) arrival(r Received, now time.Time) time.Time {
	if r.At.IsZero() {
		return now
	}
	if d := now.Sub(r.At); d >= 0 && d < in.m.MasterDownInterval() {
		return r.At
	}
	return now
}

// pendingReader is a socket that can tell whether a packet waits to be
// read (transport.Conn).
type pendingReader interface{ Pending() bool }

// lateTimer is how late a Master_Down_Timer must fire to be logged.
const lateTimer = 10 * time.Millisecond

// pendingGrace bounds how long a Backup whose Master_Down_Timer is due
// waits for packets still unread on its socket.
const pendingGrace = 20 * time.Millisecond

// awaitPending runs when a timer fired. If the Master_Down_Timer is due
// but packets wait unread on the socket (this process was stalled: the
// timer and the socket became ready together, and the dispatcher has not
// run yet), it handles the adverts the dispatcher delivers, for up to
// pendingGrace, before the timer may make us Master. A live Master's
// advert that reached this host in time then keeps us Backup, instead of
// a takeover for a few milliseconds and a flap.
func (in *Instance) awaitPending(now time.Time) (acts []Action, waited bool) {
	pr, ok := in.send.(pendingReader)
	if !ok || !in.m.TakeoverDue(now) || !pr.Pending() {
		return nil, false
	}
	grace := in.clock.NewTimer(pendingGrace)
	defer releaseTimer(grace)
	// The packets may be for another VRID on a shared socket: re-check
	// every millisecond rather than wait for our inbox alone.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for pr.Pending() || len(in.inbox) > 0 {
		select {
		case r := <-in.inbox:
			acts = append(acts, in.advert(r, in.clock.Now())...)
		case <-tick.C:
		case <-grace.C():
			in.log.Debug("packets still unread after the grace; timers go ahead")
			return acts, true
		}
	}
	more, _ := in.drainInbox()
	return append(acts, more...), true
}

// drainInbox handles every advert already queued, and says whether there
// was one.
func (in *Instance) drainInbox() (acts []Action, heard bool) {
	for {
		select {
		case r := <-in.inbox:
			acts = append(acts, in.advert(r, in.clock.Now())...)
			heard = true
		default:
			return acts, heard
		}
	}
}

// apply carries out the machine's actions in order; it reports whether the
// machine has finished a graceful stop.
func (in *Instance) apply(acts []Action) (stopped bool) {
	for _, a := range acts {
		switch a.Kind {
		case ActSendAdvert:
			in.sendAdvert(a.Priority)
		case ActTakeVIPs:
			in.mover.set(true)
		case ActReleaseVIPs:
			in.mover.set(false)
		case ActReannounce:
			in.mover.announce()
		case ActTransition:
			in.transition(a)
			if a.From == StateMaster && a.To == StateBackup && in.m.holding {
				// Make-before-break: keep what is held, but take
				// nothing more and announce nothing.
				in.mover.hold()
			}
		case ActStopped:
			stopped = true
		}
	}
	in.snapshot()
	// Readiness changes without an action (a gated timer expiring), so
	// compare rather than report on transitions only.
	if ms := (MemberStatus{State: in.m.State(), Ready: in.m.Ready()}); ms != in.member {
		in.member = ms
		if in.cfg.OnMember != nil {
			in.cfg.OnMember(ms)
		}
	}
	return stopped
}

func (in *Instance) transition(a Action) {
	in.log.Info("state change", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason, "priority", in.m.Priority())
	in.mu.Lock()
	in.snap.LastTransition = in.clock.Now()
	in.snap.Transitions++
	in.snap.LastReason = a.Reason
	in.mu.Unlock()
	if in.cfg.OnState != nil {
		in.cfg.OnState(a.To)
	}
	if in.cfg.Notify != nil && a.To != StateInit {
		in.mover.notify(in.cfg.Notify, a.To, in.m.Priority())
	}
}

func (in *Instance) snapshot() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.snap.Name = in.cfg.Name
	in.snap.VRID = in.cfg.VRID
	in.snap.State = in.m.State()
	in.snap.Priority = in.m.Priority()
	in.snap.Master = in.m.MasterAddr()
	in.snap.Ready = in.m.Ready()
	in.snap.Gate = in.m.Gate()
}

func (in *Instance) sendAdvert(prio uint8) {
	p := Packet{
		Version:   in.cfg.Machine.Version,
		VRID:      in.cfg.VRID,
		Priority:  prio,
		Interval:  in.cfg.Machine.Interval,
		AuthType:  in.cfg.AuthType,
		AuthData:  in.cfg.AuthData,
		Addresses: in.cfg.Addresses,
	}
	dsts := in.cfg.Peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{in.cfg.Group}
	}
	src := in.send.Source()
	for _, dst := range dsts {
		b, err := p.AppendMarshal(in.buf[:0], src, dst)
		if err != nil {
			in.log.Error("encode advertisement", "err", err)
			return
		}
		in.buf = b
		if err := in.send.WriteTo(b, dst); err != nil {
			in.log.Warn("send advertisement", "to", dst, "err", err)
			continue
		}
		in.sent.Add(1)
	}
}
