package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/internal/vip"
	"github.com/director-lb/director/vrrp"
)

// Scenario tests: two VRRP instances, each with its own EC2Mover against
// one fake region, talking unicast VRRP over an in-memory wire, as a
// director pair on EC2 does.

// wire delivers unicast adverts between nodes; a cut node neither sends
// nor receives (a partition, or a dead host).
type wire struct {
	mu    sync.Mutex
	nodes map[netip.Addr]*vrrpNode
	cut   map[netip.Addr]bool
}

type wirePort struct {
	w    *wire
	addr netip.Addr
}

func (p wirePort) Source() netip.Addr { return p.addr }

func (p wirePort) WriteTo(b []byte, dst netip.Addr) error {
	p.w.mu.Lock()
	peer := p.w.nodes[dst]
	cut := p.w.cut[p.addr] || p.w.cut[dst]
	p.w.mu.Unlock()
	if cut || peer == nil {
		return nil
	}
	pkt, err := vrrp.Parse(slices.Clone(b), p.addr, dst)
	if err != nil {
		return err
	}
	peer.in.Deliver(vrrp.Received{Src: p.addr, Dst: dst, Packet: pkt})
	return nil
}

func (w *wire) setCut(addr netip.Addr, cut bool) {
	w.mu.Lock()
	w.cut[addr] = cut
	w.mu.Unlock()
}

type vrrpNode struct {
	name   string
	addr   netip.Addr
	in     *vrrp.Instance
	mover  *EC2Mover
	local  *vip.Fake
	cancel context.CancelFunc
	done   chan error
}

var (
	addrA = netip.MustParseAddr("10.0.1.11")
	addrB = netip.MustParseAddr("10.0.1.12")
)

const advertInterval = 50 * time.Millisecond

// startNode runs a VRRP instance for n with priority prio; wrap, if set,
// wraps the mover given to VRRP (to simulate a crash).
func startNode(t *testing.T, r *region, w *wire, n node, prio uint8, cfg EC2Config, wrap func(vrrp.Mover) vrrp.Mover) *vrrpNode {
	t.Helper()
	addr, peer, name := addrA, addrB, "a"
	if n == nodeB {
		addr, peer, name = addrB, addrA, "b"
	}
	local := &vip.Fake{}
	m := r.newMover(t, n, cfg, local)
	var mv vrrp.Mover = m
	if wrap != nil {
		mv = wrap(m)
	}
	in := vrrp.NewInstance(vrrp.InstanceConfig{
		Name:        name,
		VRID:        51,
		Machine:     vrrp.MachineConfig{Version: vrrp.V3, Priority: prio, Interval: advertInterval, Preempt: true},
		Addresses:   cfg.vipsOf(false), // adverts carry one family; the mover moves both
		Peers:       []netip.Addr{peer},
		Logger:      testLogger(t).With("node", name),
		MoveTimeout: 5 * time.Second,
	}, wirePort{w: w, addr: addr}, mv)
	vn := &vrrpNode{name: name, addr: addr, in: in, mover: m, local: local, done: make(chan error, 1)}
	w.mu.Lock()
	w.nodes[addr] = vn
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	vn.cancel = cancel
	go func() { vn.done <- in.Run(ctx, true) }()
	t.Cleanup(func() { vn.stop(t) })
	return vn
}

// stop stops the node gracefully (priority-0 advert, release) and waits.
func (n *vrrpNode) stop(t *testing.T) {
	n.cancel()
	select {
	case err, ok := <-n.done:
		if ok {
			close(n.done)
			_ = err // a crashed node's final release fails by design
		}
	case <-time.After(15 * time.Second):
		t.Errorf("node %s did not stop", n.name)
	}
}

// awaitAdverts waits until n has sent k more adverts: a span of VRRP
// activity measured in events, in which a settled pair must stay quiet.
func awaitAdverts(t *testing.T, n *vrrpNode, k uint64) {
	t.Helper()
	from := n.in.Stats().AdvertsSent
	testwait.Eventually(t, 5*time.Second, fmt.Sprintf("%d adverts from %s", k, n.name), func() bool {
		return n.in.Stats().AdvertsSent >= from+k
	})
}

func newWire() *wire {
	return &wire{nodes: map[netip.Addr]*vrrpNode{}, cut: map[netip.Addr]bool{}}
}

func (n *vrrpNode) master() bool { return n.in.Stats().State == vrrp.StateMaster }

// scenarioConfig is fastConfig with both EIPs, the second on vip2.
func scenarioConfig() EC2Config {
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip2}
	cfg.EIPs = []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip2}}
	return cfg
}

// realistic latency for EC2 control-plane calls.
var realistic = ec2fake.Options{MinLatency: 50 * time.Millisecond, MaxLatency: 200 * time.Millisecond, Lag: 100 * time.Millisecond}

// startPair brings up A (150) and B (100) and waits until A holds
// everything; the region starts with the VIPs on B, so this is already a
// take-over.
func startPair(t *testing.T, r *region, cfg EC2Config) (w *wire, a, b *vrrpNode) {
	t.Helper()
	w = newWire()
	b = startNode(t, r, w, nodeB, 100, cfg, nil)
	a = startNode(t, r, w, nodeA, 150, cfg, nil)
	testwait.Eventually(t, 10*time.Second, "A master holding VIPs and EIPs", func() bool {
		return a.master() && r.holds(nodeA, cfg) && a.mover.Status().Verified && a.local.Held()
	})
	testwait.Eventually(t, 5*time.Second, "B backup without local VIPs", func() bool {
		return b.in.Stats().State == vrrp.StateBackup && !b.local.Held()
	})
	return w, a, b
}

func TestScenarioFailover(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	_, a, b := startPair(t, r, cfg)

	start := time.Now()
	a.stop(t)
	testwait.Eventually(t, 10*time.Second, "B holds VIPs and EIPs", func() bool {
		return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified && b.local.Held()
	})
	took := time.Since(start)
	t.Logf("failover: A stopped → B verified in %s (B's move %s)", took.Round(time.Millisecond), b.mover.Status().LastMoveDuration.Round(time.Millisecond))
	if a.local.Held() || a.mover.Status().Holding {
		t.Fatal("stopped node still holds")
	}
	if took > 5*time.Second {
		t.Fatalf("failover took %s", took)
	}
}

func TestScenarioFailback(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	w, a, b := startPair(t, r, cfg)
	a.stop(t)
	testwait.Eventually(t, 10*time.Second, "B holds", func() bool { return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified })

	// A comes back with the higher priority and preempts.
	start := time.Now()
	a2 := startNode(t, r, w, nodeA, 150, cfg, nil)
	testwait.Eventually(t, 10*time.Second, "A holds again", func() bool {
		return a2.master() && r.holds(nodeA, cfg) && a2.mover.Status().Verified && a2.local.Held()
	})
	testwait.Eventually(t, 5*time.Second, "B released", func() bool {
		return b.in.Stats().State == vrrp.StateBackup && !b.local.Held() && !b.mover.Status().Holding
	})
	t.Logf("failback in %s", time.Since(start).Round(time.Millisecond))
	// Settled: nobody moves anything any more, over ten adverts of A's.
	settled := time.Now()
	awaitAdverts(t, a2, 10)
	if n := r.arrivalsSince(settled, "AssignPrivateIpAddresses", ""); n != 0 || !r.holds(nodeA, cfg) {
		t.Fatalf("%d assignments after failback settled", n)
	}
}

// IPv6 VIPs follow the master through failover and failback along with
// the IPv4 ones, although EC2 cannot reassign them: each new master
// unassigns them from the old one's ENI first.
func TestScenarioIPv6FailoverAndFailback(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	cfg.VIPs = append(cfg.VIPs, vip6, vip7)
	w, a, b := startPair(t, r, cfg)
	if r.fake.Owner(vip6) != eniA || r.fake.Owner(vip7) != eniA {
		t.Fatalf("A master without the IPv6 VIPs: %+v", r.fake.Snapshot())
	}

	start := time.Now()
	a.stop(t)
	testwait.Eventually(t, 10*time.Second, "B holds every VIP and EIP", func() bool {
		return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified && b.local.Held()
	})
	t.Logf("failover with IPv6 VIPs: A stopped → B verified in %s (B's move %s)",
		time.Since(start).Round(time.Millisecond), b.mover.Status().LastMoveDuration.Round(time.Millisecond))

	start = time.Now()
	a2 := startNode(t, r, w, nodeA, 150, cfg, nil)
	testwait.Eventually(t, 10*time.Second, "A holds again", func() bool {
		return a2.master() && r.holds(nodeA, cfg) && a2.mover.Status().Verified && a2.local.Held()
	})
	testwait.Eventually(t, 5*time.Second, "B released", func() bool {
		return b.in.Stats().State == vrrp.StateBackup && !b.local.Held() && !b.mover.Status().Holding
	})
	t.Logf("failback with IPv6 VIPs in %s", time.Since(start).Round(time.Millisecond))
	if un := r.callsOf("UnassignIpv6Addresses", keyA); len(un) == 0 || un[len(un)-1].ENI != eniB {
		t.Fatalf("A's unassignments %+v: the failback did not free the VIPs on B's ENI", un)
	}
	settled := time.Now()
	awaitAdverts(t, a2, 10)
	if n := r.arrivalsSince(settled, "AssignIpv6Addresses", "") + r.arrivalsSince(settled, "UnassignIpv6Addresses", ""); n != 0 || !r.holds(nodeA, cfg) {
		t.Fatalf("%d IPv6 calls after failback settled", n)
	}
}

func TestScenarioThrottledFailover(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	_, a, b := startPair(t, r, cfg)

	// B's first calls of each kind are throttled or fail.
	r.fake.InjectFault(ec2fake.Fault{Action: "AssignPrivateIpAddresses", AccessKey: keyB, Status: 503, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Count: 3})
	r.fake.InjectFault(ec2fake.Fault{Action: "AssociateAddress", AccessKey: keyB, Status: 503, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Count: 2})
	r.fake.InjectFault(ec2fake.Fault{Action: "DescribeNetworkInterfaces", AccessKey: keyB, Status: 500, Count: 2})
	start := time.Now()
	a.stop(t)
	testwait.Eventually(t, 10*time.Second, "B holds despite throttling", func() bool {
		return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified
	})
	st := b.mover.Status()
	t.Logf("throttled failover in %s: %d retries, %d throttled", time.Since(start).Round(time.Millisecond), st.Retries, st.Throttles)
	if st.Throttles < 3 || st.Retries < 5 {
		t.Fatalf("status %+v: the faults were not met", st)
	}
}

func TestScenarioPermissionError(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	_, a, b := startPair(t, r, cfg)

	r.fake.Deny(keyB, "AssignPrivateIpAddresses")
	start := time.Now()
	a.stop(t)
	testwait.Eventually(t, 5*time.Second, "B master reporting the permission error", func() bool {
		st := b.mover.Status()
		return b.master() && st.PermissionErrors > 0 && len(st.Suspended) == 1 && st.Suspended[0].Op == "AssignPrivateIpAddresses"
	})
	// VRRP's worker retries Take with backoff; the mover makes no API call
	// for PermissionBackoff after each refusal.
	failed := b.mover.Status().FailedMoves
	testwait.Eventually(t, 5*time.Second, "VRRP retrying the refused take", func() bool {
		return b.mover.Status().FailedMoves >= failed+3
	})
	elapsed := time.Since(start)
	calls := r.arrivalsSince(start, "AssignPrivateIpAddresses", keyB)
	if limit := int(elapsed/cfg.PermissionBackoff) + 1; calls > limit {
		t.Fatalf("%d assign calls in %s: more than one per permission backoff (%d)", calls, elapsed, limit)
	}
	if r.fake.Owner(vip1) != eniA {
		t.Fatal("VIP moved without permission")
	}
	if !b.local.Held() {
		t.Fatal("B (master) did not add the VIPs locally")
	}

	r.fake.Allow(keyB, "AssignPrivateIpAddresses")
	testwait.Eventually(t, 10*time.Second, "B holds once the policy is fixed", func() bool {
		return r.holds(nodeB, cfg) && b.mover.Status().Verified
	})
}

// A partition of the VRRP path while both nodes reach the EC2 API: both are
// master and, with the background recheck on, both contest the VIP. The
// contest backoff bounds the reassignments; when the partition heals, VRRP
// elects A and the VIPs settle on A.
func TestScenarioPartitionBoundsFlipFlop(t *testing.T) {
	r := newRegion(t, realistic)
	cfg := scenarioConfig()
	cfg.Recheck = 100 * time.Millisecond
	cfg.ContestBackoff = 200 * time.Millisecond
	cfg.ContestBackoffMax = 2 * time.Second
	w, a, b := startPair(t, r, cfg)

	start := time.Now()
	before := r.fake.Reassignments(vip1)
	w.setCut(addrA, true)
	testwait.Eventually(t, 5*time.Second, "both master", func() bool { return a.master() && b.master() })
	// Wait until one node has contested three times: its backoff has
	// doubled twice (200ms, then 400ms).
	testwait.Eventually(t, 15*time.Second, "a node contesting three times", func() bool {
		return max(a.mover.Status().Contests, b.mover.Status().Contests) >= 3
	})
	elapsed := time.Since(start)
	flips := r.fake.Reassignments(vip1) - before
	contests := a.mover.Status().Contests + b.mover.Status().Contests
	t.Logf("partition of %s: %d reassignments (A contests %d, B contests %d)", elapsed, flips, a.mover.Status().Contests, b.mover.Status().Contests)
	// Each take-back follows a contest and its backoff: besides the first
	// take by the new master, at most one reassignment per contest (and
	// one in flight). Without the backoff, a 100ms recheck would flip the
	// VIP back and forth at API speed.
	if flips < 1 || uint64(flips) > contests+2 {
		t.Fatalf("%d reassignments for %d contests", flips, contests)
	}
	if want := cfg.ContestBackoff + 2*cfg.ContestBackoff; elapsed < want {
		t.Fatalf("three contests in %s: the backoffs alone take %s", elapsed, want)
	}

	w.setCut(addrA, false)
	testwait.Eventually(t, 10*time.Second, "VRRP converges on A and A holds", func() bool {
		return a.master() && b.in.Stats().State == vrrp.StateBackup && r.holds(nodeA, cfg) && a.mover.Status().Verified
	})
	testwait.Eventually(t, 2*time.Second, "B released", func() bool { return !b.local.Held() && !b.mover.Status().Holding })
	settled := time.Now()
	awaitAdverts(t, a, 20)
	if n := r.arrivalsSince(settled, "AssignPrivateIpAddresses", ""); n != 0 || !r.holds(nodeA, cfg) {
		t.Fatalf("%d assignments after the heal settled", n)
	}
}

// crashable wraps a mover and can "crash" it: the in-flight call is
// abandoned (its context cancelled, as when the process dies) and every
// later call fails.
type crashable struct {
	inner vrrp.Mover
	dead  context.Context
	crash context.CancelFunc

	mu      sync.Mutex
	results []error // Take results
}

var errCrashed = errors.New("node crashed")

func newCrashable() *crashable {
	c := &crashable{}
	c.dead, c.crash = context.WithCancel(context.Background())
	return c
}

func (c *crashable) guard(ctx context.Context, f func(context.Context) error) error {
	if c.dead.Err() != nil {
		return errCrashed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.dead, cancel)
	defer stop()
	return f(ctx)
}

func (c *crashable) Take(ctx context.Context) error {
	err := c.guard(ctx, c.inner.Take)
	c.mu.Lock()
	c.results = append(c.results, err)
	c.mu.Unlock()
	return err
}
func (c *crashable) Announce(ctx context.Context) error { return c.guard(ctx, c.inner.Announce) }
func (c *crashable) Release(ctx context.Context) error  { return c.guard(ctx, c.inner.Release) }

// A crashes in the middle of its take-over; B, the next master, completes
// the move, and A's abandoned request does not undo it.
func TestScenarioCrashMidMove(t *testing.T) {
	r := newRegion(t, ec2fake.Options{MinLatency: 100 * time.Millisecond, MaxLatency: 150 * time.Millisecond, Lag: 100 * time.Millisecond})
	cfg := scenarioConfig()
	w := newWire()
	// B starts alone and holds (the VIPs are on its ENI already).
	b := startNode(t, r, w, nodeB, 100, cfg, nil)
	testwait.Eventually(t, 10*time.Second, "B holds", func() bool { return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified })

	// A joins with a higher priority, preempts, and crashes as soon as its
	// assignment request reaches EC2.
	cr := newCrashable()
	var crashAt time.Time
	var crashOnce sync.Once
	r.fake.SetHook(func(c ec2fake.Call) {
		r.record(c)
		if c.Action == "AssignPrivateIpAddresses" && c.AccessKey == keyA {
			crashOnce.Do(func() {
				crashAt = time.Now()
				w.setCut(addrA, true)
				cr.crash()
			})
		}
	})
	a := startNode(t, r, w, nodeA, 150, cfg, func(m vrrp.Mover) vrrp.Mover { cr.inner = m; return cr })

	testwait.Eventually(t, 10*time.Second, "A crashed mid-take", func() bool {
		cr.mu.Lock()
		defer cr.mu.Unlock()
		return len(cr.results) > 0
	})
	cr.mu.Lock()
	first := cr.results[0]
	cr.mu.Unlock()
	if !errors.Is(first, context.Canceled) {
		t.Fatalf("A's interrupted Take returned %v, want context.Canceled", first)
	}
	testwait.Eventually(t, 10*time.Second, "B completes the move", func() bool {
		return b.master() && r.holds(nodeB, cfg) && b.mover.Status().Verified
	})
	// A's assignment was carried out by EC2 after A died; B took it back.
	if r.fake.CountCalls("AssignPrivateIpAddresses", keyA) != 1 {
		t.Fatal("A's in-flight assignment did not reach EC2")
	}
	testwait.Eventually(t, 2*time.Second, "A's abandoned requests carried out", func() bool { return r.drained(keyA) })
	if !r.holds(nodeB, cfg) {
		t.Fatal("A's abandoned request undid B's move")
	}
	if n := r.arrivalsSince(crashAt.Add(time.Millisecond), "", keyA); n != 0 {
		t.Fatalf("crashed A made %d more calls", n)
	}
	_ = a
}
