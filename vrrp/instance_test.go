package vrrp

import (
	"github.com/director-lb/director/internal/testwait"

	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/vrrp/transport"
)

// wire is an in-memory segment: what one node sends, the others' dispatchers
// receive with TTL 255, as a real multicast segment would deliver it.
type wire struct {
	mu    sync.Mutex
	nodes []*wireNode
	// cut nodes neither send nor receive.
	cut map[netip.Addr]bool
}

type wireNode struct {
	w    *wire
	addr netip.Addr
	disp *Dispatcher
}

func (n *wireNode) Source() netip.Addr { return n.addr }

func (n *wireNode) Read([]byte) (transport.Frame, error) { select {} }

func (n *wireNode) WriteTo(b []byte, dst netip.Addr) error {
	n.w.mu.Lock()
	peers := slices.Clone(n.w.nodes)
	cut := n.w.cut[n.addr]
	n.w.mu.Unlock()
	if cut {
		return nil
	}
	for _, p := range peers {
		n.w.mu.Lock()
		pc := n.w.cut[p.addr]
		n.w.mu.Unlock()
		if p == n || pc || (!dst.IsMulticast() && dst != p.addr) {
			continue
		}
		p.disp.Handle(transport.Frame{Src: n.addr, Dst: dst, TTL: 255, Payload: slices.Clone(b)})
	}
	return nil
}

// eventLog records VIP moves of all nodes in one order, to check handovers.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	l.evs = append(l.evs, s)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

type logMover struct {
	name string
	log  *eventLog
	mu   sync.Mutex
	held bool
}

func (m *logMover) Take(context.Context) error {
	m.mu.Lock()
	m.held = true
	m.mu.Unlock()
	m.log.add(m.name + ":take")
	return nil
}
func (m *logMover) Announce(context.Context) error { m.log.add(m.name + ":announce"); return nil }
func (m *logMover) Release(context.Context) error {
	m.mu.Lock()
	was := m.held
	m.held = false
	m.mu.Unlock()
	if was {
		m.log.add(m.name + ":release")
	}
	return nil
}
func (m *logMover) Held() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.held }

type testNode struct {
	in     *Instance
	mover  *logMover
	node   *wireNode
	cancel context.CancelFunc
	done   chan error
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startNode(t *testing.T, w *wire, ev *eventLog, name string, addr string, prio uint8, interval time.Duration) *testNode {
	t.Helper()
	a := netip.MustParseAddr(addr)
	n := &wireNode{w: w, addr: a}
	mv := &logMover{name: name, log: ev}
	in := NewInstance(InstanceConfig{
		Name: name, VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: prio, Interval: interval, Preempt: true},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
	}, n, mv)
	n.disp = NewDispatcher(n, "eth0", netip.MustParseAddr("224.0.0.18"), []*Instance{in}, quietLog())
	w.mu.Lock()
	w.nodes = append(w.nodes, n)
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{in: in, mover: mv, node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- in.Run(ctx, true) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-tn.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	})
	return tn
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, what, cond)
}

func TestInstancePairElectsAndHandsOver(t *testing.T) {
	w := &wire{cut: map[netip.Addr]bool{}}
	ev := &eventLog{}
	a := startNode(t, w, ev, "a", "10.0.0.11", 150, 20*time.Millisecond)
	b := startNode(t, w, ev, "b", "10.0.0.12", 100, 20*time.Millisecond)

	eventually(t, "a master", func() bool { return a.in.Stats().State == StateMaster && a.mover.Held() })
	eventually(t, "b backup knowing a", func() bool {
		s := b.in.Stats()
		return s.State == StateBackup && s.Master == a.node.addr
	})
	if b.mover.Held() {
		t.Fatal("backup holds the VIPs")
	}

	// Graceful stop of the master: make-before-break means b takes the VIPs
	// before a releases them.
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("a.Run: %v", err)
		}
		a.done <- nil // for Cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("a did not stop")
	}
	if a.mover.Held() {
		t.Fatal("a still holds VIPs after stopping")
	}
	evs := ev.snapshot()
	bTake, aRel := slices.Index(evs, "b:take"), slices.Index(evs, "a:release")
	if bTake < 0 || aRel < 0 || bTake > aRel {
		t.Fatalf("want b:take before a:release, got %v", evs)
	}
	if st := a.in.Stats(); st.State != StateStopped || st.AdvertsSent == 0 {
		t.Errorf("a stats after stop: %+v", st)
	}
	eventually(t, "b master", func() bool { return b.in.Stats().State == StateMaster })
}

func TestInstanceCutOffAndSplitBrainHeal(t *testing.T) {
	w := &wire{cut: map[netip.Addr]bool{}}
	ev := &eventLog{}
	a := startNode(t, w, ev, "a", "10.0.0.11", 150, 20*time.Millisecond)
	b := startNode(t, w, ev, "b", "10.0.0.12", 100, 20*time.Millisecond)
	eventually(t, "a master", func() bool { return a.in.Stats().State == StateMaster })

	w.mu.Lock()
	w.cut[a.node.addr] = true
	w.mu.Unlock()
	eventually(t, "b master while a is cut off", func() bool { return b.in.Stats().State == StateMaster && b.mover.Held() })
	if a.in.Stats().State != StateMaster {
		t.Fatal("a should still believe it is master (split brain)")
	}

	w.mu.Lock()
	delete(w.cut, a.node.addr)
	w.mu.Unlock()
	eventually(t, "b steps down after heal", func() bool { return b.in.Stats().State == StateBackup && !b.mover.Held() })
	// The survivor re-announces so clients follow it back.
	eventually(t, "a re-announces", func() bool { return slices.Contains(ev.snapshot(), "a:announce") })
	if !a.mover.Held() {
		t.Fatal("a lost its VIPs")
	}
}

func TestInstanceLinkDownReleases(t *testing.T) {
	w := &wire{cut: map[netip.Addr]bool{}}
	ev := &eventLog{}
	a := startNode(t, w, ev, "a", "10.0.0.11", 150, 20*time.Millisecond)
	eventually(t, "a master", func() bool { return a.mover.Held() })
	a.in.SetLink(false)
	eventually(t, "fault releases", func() bool { return a.in.Stats().State == StateFault && !a.mover.Held() })
	a.in.SetLink(true)
	eventually(t, "master again", func() bool { return a.in.Stats().State == StateMaster && a.mover.Held() })
}

type fakeFrames struct{ src netip.Addr }

func (f fakeFrames) Read([]byte) (transport.Frame, error) { return transport.Frame{}, io.EOF }
func (f fakeFrames) Source() netip.Addr                   { return f.src }

// Every receive check drops and counts, and only a good packet reaches the instance.
func TestDispatcherDrops(t *testing.T) {
	own := netip.MustParseAddr("10.0.0.11")
	peer := netip.MustParseAddr("10.0.0.12")
	group := netip.MustParseAddr("224.0.0.18")
	mk := func(cfg InstanceConfig) *Instance {
		cfg.Logger = quietLog()
		cfg.Addresses = []netip.Addr{netip.MustParseAddr("10.0.0.100")}
		if cfg.Machine.Version == 0 {
			cfg.Machine.Version = V3
		}
		cfg.Machine.Priority, cfg.Machine.Interval = 100, time.Second
		return NewInstance(cfg, &wireNode{addr: own}, &logMover{log: &eventLog{}})
	}
	adv := func(v Version, vrid uint8, interval time.Duration, src, dst netip.Addr) []byte {
		p := Packet{Version: v, VRID: vrid, Priority: 200, Interval: interval, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
		b, err := p.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := adv(V3, 1, time.Second, peer, group)
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff

	mcast := mk(InstanceConfig{Name: "m", VRID: 1})
	v2 := mk(InstanceConfig{Name: "v2", VRID: 2, Machine: MachineConfig{Version: V2}, AuthType: 1, AuthData: [8]byte{'p', 'w'}})
	d := NewDispatcher(fakeFrames{src: own}, "eth0", group, []*Instance{mcast, v2}, quietLog())

	d.Handle(transport.Frame{Src: own, Dst: group, TTL: 255, Payload: good})
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 64, Payload: good})
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: corrupt})
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: good[:5]})
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: adv(V3, 9, time.Second, peer, group)})
	d.Handle(transport.Frame{Src: peer, Dst: own, TTL: 255, Payload: good}) // unicast: not this socket's
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: adv(V2, 1, time.Second, peer, group)})
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: adv(V2, 2, time.Second, peer, group)}) // no auth
	d.Handle(transport.Frame{Src: peer, Dst: group, TTL: 255, Payload: good})

	want := map[DropReason]uint64{DropOwn: 1, DropTTL: 1, DropChecksum: 1, DropShort: 1, DropVRID: 1}
	if got := d.Drops(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dispatcher drops = %v, want %v", got, want)
	}
	if got := mcast.Stats().Drops; got[DropVersion] != 1 || len(got) != 1 {
		t.Errorf("instance m drops = %v, want one version drop", got)
	}
	if got := v2.Stats().Drops; got[DropAuth] != 1 || len(got) != 1 {
		t.Errorf("instance v2 drops = %v, want one auth drop", got)
	}
	if n := len(mcast.inbox); n != 1 {
		t.Errorf("instance m got %d packets, want 1", n)
	}

	// Unicast: only listed peers.
	uni := mk(InstanceConfig{Name: "u", VRID: 3, Peers: []netip.Addr{peer}})
	ud := NewDispatcher(fakeFrames{src: own}, "eth0", netip.Addr{}, []*Instance{uni}, quietLog())
	stranger := netip.MustParseAddr("10.0.0.66")
	ud.Handle(transport.Frame{Src: stranger, Dst: own, TTL: 255, Payload: adv(V3, 3, time.Second, stranger, own)})
	// RFC 5798 5.1.1.3: TTL 255 in unicast too, unless routed; and only
	// adverts sent to our own address.
	ud.Handle(transport.Frame{Src: peer, Dst: own, TTL: 17, Payload: adv(V3, 3, time.Second, peer, own)})
	other := netip.MustParseAddr("10.0.0.77")
	ud.Handle(transport.Frame{Src: peer, Dst: other, TTL: 255, Payload: adv(V3, 3, time.Second, peer, other)})
	ud.Handle(transport.Frame{Src: peer, Dst: own, TTL: 255, Payload: adv(V3, 3, time.Second, peer, own)})
	if got := uni.Stats().Drops; got[DropStranger] != 1 {
		t.Errorf("unicast drops = %v, want one stranger", got)
	}
	if got := ud.Drops(); got[DropTTL] != 1 || got[DropDest] != 1 {
		t.Errorf("unicast dispatcher drops = %v, want one TTL and one destination", got)
	}
	if n := len(uni.inbox); n != 1 {
		t.Errorf("unicast instance got %d packets, want 1", n)
	}
	routed := mk(InstanceConfig{Name: "r", VRID: 3, Peers: []netip.Addr{peer}})
	rd := NewDispatcher(fakeFrames{src: own}, "eth0", netip.Addr{}, []*Instance{routed}, quietLog())
	rd.SetRouted(true)
	rd.Handle(transport.Frame{Src: peer, Dst: own, TTL: 17, Payload: adv(V3, 3, time.Second, peer, own)})
	if n := len(routed.inbox); n != 1 {
		t.Errorf("routed unicast instance got %d packets with TTL 17, want 1", n)
	}

	// A flood beyond the queue is dropped and counted, never blocking.
	for range inboxSize + 10 {
		ud.Handle(transport.Frame{Src: peer, Dst: own, TTL: 255, Payload: adv(V3, 3, time.Second, peer, own)})
	}
	if got := uni.Stats().Drops[DropOverflow]; got != 11 {
		t.Errorf("overflow drops = %d, want 11", got)
	}
}

func TestInstanceFailoverFailback(t *testing.T) {
	w := &wire{cut: map[netip.Addr]bool{}}
	ev := &eventLog{}
	a := startNode(t, w, ev, "a", "10.0.0.11", 150, 20*time.Millisecond)
	b := startNode(t, w, ev, "b", "10.0.0.12", 100, 20*time.Millisecond)
	// a's VIP move runs after its state change: wait for it too, or a
	// failover could overtake it, and a would never have held anything
	// to release (seen in CI: "got [b:take]").
	eventually(t, "a master", func() bool {
		return a.in.Stats().State == StateMaster && a.mover.Held() && b.in.Stats().State == StateBackup
	})

	ctx := context.Background()
	if err := b.in.Failover(ctx); err == nil {
		t.Error("failover on the backup succeeded")
	}
	if err := a.in.Failover(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b master after failover", func() bool { return b.in.Stats().State == StateMaster && b.mover.Held() && !a.mover.Held() })
	evs := ev.snapshot()
	j := len(evs) - 1
	for j >= 0 && evs[j] != "a:release" {
		j--
	}
	if i := slices.Index(evs, "b:take"); i < 0 || j < i {
		t.Fatalf("want b:take before a:release, got %v", evs)
	}
	// a has the higher priority and preempt on, yet the failover sticks.
	time.Sleep(200 * time.Millisecond)
	if a.in.Stats().State != StateBackup {
		t.Fatal("a preempted right after a manual failover")
	}
	if err := a.in.Failback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a master after failback", func() bool { return a.in.Stats().State == StateMaster && !b.mover.Held() })
}

type presentMover struct{ logMover }

func (m *presentMover) Present(context.Context) (bool, error) { return true, nil }

// A node restarted after a crash finds its VIPs and keeps them: no release
// before it is master again.
func TestInstanceRestartKeepsHeldVIPs(t *testing.T) {
	ev := &eventLog{}
	mv := &presentMover{logMover{name: "a", log: ev, held: true}}
	n := &wireNode{w: &wire{cut: map[netip.Addr]bool{}}, addr: netip.MustParseAddr("10.0.0.11")}
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7, Logger: quietLog(),
		Machine:   MachineConfig{Version: V3, Priority: 100, Interval: 20 * time.Millisecond},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
	}, n, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	eventually(t, "master", func() bool { return in.Stats().State == StateMaster })
	if evs := ev.snapshot(); slices.Contains(evs, "a:release") || !mv.Held() {
		t.Errorf("VIPs released on the way back to master: %v", evs)
	}
	cancel()
	<-done
}

// lastAdvert keeps the last advert an instance sent.
type lastAdvert struct {
	mu  sync.Mutex
	src netip.Addr
	b   []byte
}

func (l *lastAdvert) Source() netip.Addr { return l.src }

func (l *lastAdvert) WriteTo(b []byte, _ netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = slices.Clone(b)
	return nil
}

func (l *lastAdvert) get() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// A master told of new VIPs carries them in its next adverts and stays
// master: a reload that adds a VIP does not re-elect.
func TestInstanceSetAddresses(t *testing.T) {
	la := &lastAdvert{src: netip.MustParseAddr("10.0.0.11")}
	ev := &eventLog{}
	mv := &logMover{name: "a", log: ev}
	vip1, vip2 := netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("10.0.0.101")
	in := NewInstance(InstanceConfig{
		Name: "a", VRID: 7,
		Machine:   MachineConfig{Version: V3, Priority: 150, Interval: 20 * time.Millisecond, Preempt: true},
		Addresses: []netip.Addr{vip1},
		Group:     netip.MustParseAddr("224.0.0.18"),
		Logger:    quietLog(),
	}, la, mv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	defer func() { cancel(); <-done }()
	eventually(t, "master", func() bool { return in.Stats().State == StateMaster })
	transitions := in.Stats().Transitions
	in.SetAddresses([]netip.Addr{vip1, vip2})
	want := []netip.Addr{vip1, vip2}
	eventually(t, "adverts with both VIPs", func() bool {
		b := la.get()
		if b == nil {
			return false
		}
		p, err := Parse(b, la.src, netip.MustParseAddr("224.0.0.18"))
		return err == nil && slices.Equal(p.Addresses, want)
	})
	if s := in.Stats(); s.State != StateMaster || s.Transitions != transitions {
		t.Errorf("after SetAddresses: %s with %d transitions, want MASTER with %d", s.State, s.Transitions, transitions)
	}
}
