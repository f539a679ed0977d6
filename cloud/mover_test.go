package cloud

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/internal/vip"
)

func TestDiscover(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	meta := imds.New(imds.Options{Endpoint: r.imds[instA].URL, EnableFallback: aws.FalseTernary})
	ctx := context.Background()

	id, err := Discover(ctx, meta, EC2Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != (Identity{InstanceID: instA, Region: "eu-west-1", ENI: eniA, MAC: macA}) {
		t.Fatalf("primary interface: %+v", id)
	}

	byIface := func(mac string) func(string) (net.HardwareAddr, error) {
		return func(name string) (net.HardwareAddr, error) {
			if name != "ens5" {
				return nil, errors.New("no such interface")
			}
			return net.ParseMAC(mac)
		}
	}
	id, err = Discover(ctx, meta, EC2Config{Interface: "ens5"}, byIface(macA))
	if err != nil || id.ENI != eniA {
		t.Fatalf("by interface: %+v %v", id, err)
	}
	// B's MAC is not an interface of instance A.
	if _, err := Discover(ctx, meta, EC2Config{Interface: "ens5"}, byIface(macB)); err == nil || !strings.Contains(err.Error(), macB) {
		t.Fatalf("foreign MAC: %v", err)
	}
	if _, err := Discover(ctx, meta, EC2Config{Interface: "ens6"}, byIface(macA)); err == nil {
		t.Fatal("missing interface accepted")
	}

	// Everything overridden: the metadata service is not asked at all.
	id, err = Discover(ctx, failingMeta{t}, EC2Config{InstanceID: instB, Region: "us-east-2", ENI: eniB}, nil)
	if err != nil || id != (Identity{InstanceID: instB, Region: "us-east-2", ENI: eniB}) {
		t.Fatalf("overrides: %+v %v", id, err)
	}

	// IMDSv1 only (no token endpoint): refused rather than falling back.
	v1 := http.NewServeMux()
	v1.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(instA))
	})
	srv := newServer(t, v1)
	if _, err := Discover(ctx, imds.New(imds.Options{Endpoint: srv, EnableFallback: aws.FalseTernary}), EC2Config{}, nil); err == nil {
		t.Fatal("IMDSv1 fallback happened")
	}
}

type failingMeta struct{ t *testing.T }

func (f failingMeta) GetMetadata(context.Context, *imds.GetMetadataInput, ...func(*imds.Options)) (*imds.GetMetadataOutput, error) {
	f.t.Error("metadata service asked despite overrides")
	return nil, errors.New("no")
}

func (f failingMeta) GetInstanceIdentityDocument(context.Context, *imds.GetInstanceIdentityDocumentInput, ...func(*imds.Options)) (*imds.GetInstanceIdentityDocumentOutput, error) {
	f.t.Error("metadata service asked despite overrides")
	return nil, errors.New("no")
}

func TestTakeMovesVIPAndEIPs(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip2}
	cfg.EIPs = []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip2}}
	local := &vip.Fake{}
	m := r.newMover(t, nodeA, cfg, local)
	start := time.Now()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeA, cfg) {
		t.Fatalf("EC2 state after Take: %+v", r.fake.Snapshot())
	}
	if !local.Held() {
		t.Fatal("VIPs not added locally")
	}
	st := m.Status()
	if !st.Holding || !st.Verified || st.Moves != 1 || st.LastMoveDuration <= 0 || st.MovesInProgress != 0 || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	// One assignment for both VIPs, one association per EIP.
	if n := r.arrivalsSince(start, "AssignPrivateIpAddresses", keyA); n != 1 {
		t.Errorf("%d assign calls, want 1", n)
	}
	if n := r.arrivalsSince(start, "AssociateAddress", keyA); n != 2 {
		t.Errorf("%d associate calls, want 2", n)
	}
	// The metadata service confirmed the remap.
	if m.Identity().MAC != macA {
		t.Errorf("MAC %q", m.Identity().MAC)
	}

	// Taking again while verified only looks.
	before := time.Now()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.arrivalsSince(before, "AssignPrivateIpAddresses", "") + r.arrivalsSince(before, "AssociateAddress", ""); n != 0 {
		t.Errorf("re-Take sent %d changes", n)
	}
	if err := m.Announce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.arrivalsSince(before, "AssignPrivateIpAddresses", ""); n != 0 || m.Status().Moves != 1 {
		t.Errorf("Announce on a healthy hold changed something: %d assigns, status %+v", n, m.Status())
	}
}

func TestTakeWaitsForLateAssignment(t *testing.T) {
	r := newRegion(t, ec2fake.Options{Lag: 300 * time.Millisecond})
	// RedriveAfter well above the lag: with the two equal, a loaded machine
	// could legitimately re-send before the change became visible.
	cfg := fastConfig()
	cfg.RedriveAfter = 1500 * time.Millisecond
	m := r.newMover(t, nodeA, cfg, nil)
	start := time.Now()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("Take returned after %s, before EC2 showed the change", took)
	}
	if r.fake.VisibleOwner(vip1) != eniA {
		t.Fatal("returned before the assignment was visible")
	}
	if n := r.arrivalsSince(start, "AssignPrivateIpAddresses", ""); n != 1 {
		t.Fatalf("%d assignments; the lag is shorter than RedriveAfter, want 1", n)
	}
}

// Another actor moves the VIP away right after our assignment, before we
// ever saw it: the mover sends the assignment again.
func TestTakeRedrivesOverriddenAssignment(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	once := make(chan struct{}, 1)
	once <- struct{}{}
	r.fake.SetHook(func(c ec2fake.Call) {
		if c.Action == "DescribeNetworkInterfaces" {
			select {
			case <-once:
				if err := r.fake.MoveIP(vip1, eniB); err != nil {
					t.Error(err)
				}
			default:
			}
		}
		r.record(c)
	})
	cfg := fastConfig()
	m := r.newMover(t, nodeA, cfg, nil)
	start := time.Now()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeA, cfg) {
		t.Fatal("not held after Take")
	}
	if n := r.arrivalsSince(start, "AssignPrivateIpAddresses", ""); n != 2 {
		t.Fatalf("%d assignments, want 2", n)
	}
	if took := time.Since(start); took < cfg.RedriveAfter {
		t.Fatalf("re-sent after %s, before RedriveAfter", took)
	}
	if m.Status().Contests != 0 {
		t.Fatal("an unconfirmed assignment counted as a contest")
	}
}

func TestThrottlingAndServerErrorsAreRetried(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.Throttle("AssignPrivateIpAddresses", 3)
	r.fake.Throttle("DescribeNetworkInterfaces", 2)
	r.fake.InjectFault(ec2fake.Fault{Action: "AssociateAddress", Count: 1, AfterCommit: true})
	r.fake.InjectFault(ec2fake.Fault{Action: "DescribeAddresses", Status: 502, Body: []byte("<html><body>Bad Gateway</body></html>"), Count: 1})
	r.fake.InjectFault(ec2fake.Fault{Action: "DescribeAddresses", Status: 200, Body: []byte("<DescribeAddressesResponse><addressesSet><item>"), Count: 1})
	cfg := fastConfig()
	m := r.newMover(t, nodeA, cfg, nil)
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeA, cfg) {
		t.Fatal("not held")
	}
	st := m.Status()
	if st.Throttles != 5 || st.Retries != 8 {
		t.Fatalf("throttles %d retries %d, want 5 and 8", st.Throttles, st.Retries)
	}
}

func TestPermissionErrorIsTypedAndNotHammered(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.Deny(keyA, "AssignPrivateIpAddresses")
	cfg := fastConfig()
	cfg.PermissionBackoff = time.Minute // ended by the clock, not waited for
	local := &vip.Fake{}
	clock := &skewClock{}
	m := r.newMoverOn(t, nodeA, cfg, local, clock)
	start := time.Now()
	err := m.Take(context.Background())
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Op != "AssignPrivateIpAddresses" || pe.Code != "UnauthorizedOperation" || !IsPermission(err) {
		t.Fatalf("want a PermissionError for AssignPrivateIpAddresses, got %v", err)
	}
	if !strings.Contains(err.Error(), "ec2:AssignPrivateIpAddresses") {
		t.Errorf("error does not say what to grant: %v", err)
	}
	if !local.Held() {
		t.Error("local addresses not added: VRRP says we are master")
	}
	st := m.Status()
	if st.PermissionErrors != 1 || len(st.Suspended) != 1 || st.Suspended[0].Op != "AssignPrivateIpAddresses" || st.LastError == "" || st.FailedMoves != 1 {
		t.Fatalf("status %+v", st)
	}
	// The VRRP worker retries quickly; the mover must not call EC2 again.
	for range 5 {
		if err := m.Take(context.Background()); !IsPermission(err) {
			t.Fatalf("retry: %v", err)
		}
	}
	if n := r.arrivalsSince(start, "AssignPrivateIpAddresses", keyA); n != 1 {
		t.Fatalf("%d assign calls during the permission backoff, want 1", n)
	}
	// The policy is fixed and the suspension runs out.
	r.fake.Allow(keyA, "AssignPrivateIpAddresses")
	clock.Advance(cfg.PermissionBackoff)
	if err := m.Take(context.Background()); err != nil {
		t.Fatalf("after the policy is fixed: %v", err)
	}
	if !r.holds(nodeA, cfg) || len(m.Status().Suspended) != 0 {
		t.Fatal("not held after the fix")
	}
}

// Without AssociateAddress the EIP still follows the private IP; the
// failover succeeds and the refusal is counted. An EIP that was not on the
// VIP cannot be fixed, and Take says why.
func TestAssociatePermissionOnlyMattersWhenNeeded(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.Deny(keyA, "AssociateAddress")
	cfg := fastConfig()
	m := r.newMover(t, nodeA, cfg, nil)
	if err := m.Take(context.Background()); err != nil {
		t.Fatalf("EIP followed the IP, yet: %v", err)
	}
	if !r.holds(nodeA, cfg) || m.Status().PermissionErrors != 1 {
		t.Fatalf("held %v, status %+v", r.holds(nodeA, cfg), m.Status())
	}

	cfg2 := fastConfig()
	cfg2.EIPs = []EIP{{AllocationID: alloc2}} // unassociated
	m2 := r.newMover(t, nodeA, cfg2, nil)
	err := m2.Take(context.Background())
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Op != "AssociateAddress" {
		t.Fatalf("want AssociateAddress PermissionError, got %v", err)
	}
}

func TestUnknownIDsFailFast(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.EIPs = []EIP{{AllocationID: "eipalloc-0fffffffffffffff0"}}
	m := r.newMover(t, nodeA, cfg, nil)
	start := time.Now()
	err := m.Take(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Kind != KindNotFound || ae.Code != "InvalidAllocationID.NotFound" {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("took %s to give up on a missing allocation", time.Since(start))
	}

	cfg = fastConfig()
	cfg.Endpoint, cfg.IMDSEndpoint = r.api.URL, r.imds[instA].URL
	cfg.ENI = "eni-0fffffffffffffff0"
	m2, err := New(context.Background(), cfg, nil, Options{Credentials: staticCreds(keyA)})
	if err != nil {
		t.Fatal(err)
	}
	err = m2.Take(context.Background())
	if !errors.As(err, &ae) || ae.Code != "InvalidNetworkInterfaceID.NotFound" {
		t.Fatalf("got %v", err)
	}
}

// A node that loses mastership mid-move stops moving.
func TestCancelStopsTheMove(t *testing.T) {
	r := newRegion(t, ec2fake.Options{MinLatency: 200 * time.Millisecond, MaxLatency: 200 * time.Millisecond})
	local := &vip.Fake{}
	m := r.newMover(t, nodeA, fastConfig(), local)
	ctx, cancel := context.WithCancel(context.Background())
	// Mastership flips while the assignment is in flight.
	cancelledAt := make(chan time.Time, 1)
	var once sync.Once
	r.fake.SetHook(func(c ec2fake.Call) {
		r.record(c)
		if c.Action == "AssignPrivateIpAddresses" {
			once.Do(func() { cancelledAt <- time.Now(); cancel() })
		}
	})
	err := m.Take(ctx)
	returned := time.Now()
	var cancelled time.Time
	select {
	case cancelled = <-cancelledAt:
	case <-time.After(5 * time.Second):
		t.Fatalf("Take returned %v, but its assignment never reached EC2", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	// Finishing the move would take the rest of this 200 ms call and two
	// more.
	if d := returned.Sub(cancelled); d > 300*time.Millisecond {
		t.Fatalf("Take returned %s after the cancel; it should stop at once", d)
	}
	// A failed Take counts as not taken (VRRP will not Release): the
	// local addresses must be gone.
	if local.Held() || m.Status().Holding {
		t.Fatal("cancelled Take left the VIPs held")
	}
	// The assignment already sent is carried out by EC2 regardless.
	testwait.Eventually(t, 2*time.Second, "the in-flight assignment carried out", func() bool { return r.drained(keyA) })
	if r.fake.Owner(vip1) != eniA {
		t.Fatal("the in-flight assignment was lost")
	}
	if n := r.arrivalsSince(cancelled, "", keyA); n != 0 {
		t.Fatalf("%d calls after the cancel", n)
	}
}

func TestRelease(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	local := &vip.Fake{}
	m := r.newMover(t, nodeA, cfg, local)
	ctx := context.Background()
	if err := m.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if local.Held() || m.Status().Holding {
		t.Fatal("still holding after Release")
	}
	if r.fake.Owner(vip1) != eniA {
		t.Fatal("VIP unassigned without unassign_on_release")
	}

	cfg.UnassignOnRelease = true
	m2 := r.newMover(t, nodeA, cfg, local)
	if err := m2.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if r.fake.Owner(vip1) != "" {
		t.Fatal("VIP still assigned")
	}
	if eni, _ := r.fake.Association(alloc1); eni != "" {
		t.Fatal("EIP still associated after its private IP was unassigned")
	}
	// The next master already has it: releasing is not an error.
	if err := r.fake.MoveIP(vip1, eniB); err != nil {
		t.Fatal(err)
	}
	if err := m2.Release(ctx); err != nil {
		t.Fatalf("release after the peer took over: %v", err)
	}
	if r.fake.Owner(vip1) != eniB {
		t.Fatal("release took the VIP from the new master")
	}
}

// The peer takes the VIP while we are master: Announce takes it back, but
// only after a backoff that doubles with each contest.
func TestAnnounceBacksOffFromContest(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	m := r.newMover(t, nodeA, cfg, nil)
	ctx := context.Background()
	if err := m.Take(ctx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{cfg.ContestBackoff, 2 * cfg.ContestBackoff} {
		if err := r.fake.MoveIP(vip1, eniB); err != nil {
			t.Fatal(err)
		}
		moved := time.Now()
		if err := m.Announce(ctx); err != nil {
			t.Fatalf("contest %d: %v", i+1, err)
		}
		if !r.holds(nodeA, cfg) {
			t.Fatalf("contest %d: not taken back", i+1)
		}
		r.mu.Lock()
		var retake time.Time
		for _, a := range r.arrivals {
			if a.call.Action == "AssignPrivateIpAddresses" && a.at.After(moved) {
				retake = a.at
				break
			}
		}
		r.mu.Unlock()
		if d := retake.Sub(moved); d < want {
			t.Fatalf("contest %d: took it back after %s, want at least %s", i+1, d, want)
		}
		if st := m.Status(); st.Contests != uint64(i+1) {
			t.Fatalf("contests %d, want %d", st.Contests, i+1)
		}
	}

	// A backoff longer than the caller's deadline fails at once; the VRRP
	// worker retries later.
	cfg.ContestBackoff = 5 * time.Second
	m2 := r.newMover(t, nodeA, cfg, nil)
	if err := m2.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.fake.MoveIP(vip1, eniB); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	if err := m2.Announce(short); !errors.Is(err, ErrContestBackoff) {
		t.Fatalf("want ErrContestBackoff, got %v", err)
	}
	if time.Since(start) > 500*time.Millisecond || r.fake.Owner(vip1) != eniB {
		t.Fatal("did not give up at once, or took the VIP during the backoff")
	}
	if m2.Status().ContestBackoffUntil.IsZero() {
		t.Fatal("status does not show the backoff")
	}
}

func TestRecheckRepairsAndStopsOnRelease(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.Recheck = 30 * time.Millisecond
	m := r.newMover(t, nodeA, cfg, nil)
	ctx := context.Background()
	if err := m.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.fake.MoveIP(vip1, eniB); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 3*time.Second, "background repair", func() bool { return r.holds(nodeA, cfg) })
	if m.Status().Contests != 1 {
		t.Fatalf("contests %d", m.Status().Contests)
	}
	m.mu.Lock()
	running := m.recheckDone
	m.mu.Unlock()
	if running == nil {
		t.Fatal("no background check while holding")
	}
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Release returns only once the background check has stopped: it is
	// the only source of calls between moves.
	select {
	case <-running:
	default:
		t.Fatal("background check still running after Release")
	}
	m.mu.Lock()
	restarted := m.recheckDone != nil
	m.mu.Unlock()
	if restarted {
		t.Fatal("background check restarted after Release")
	}
}

// A master that stepped down holds its VIPs quietly while the successor
// moves them: its background check must not take them back meanwhile.
func TestQuietStopsRecheck(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.Recheck = 30 * time.Millisecond
	m := r.newMover(t, nodeA, cfg, nil)
	ctx := context.Background()
	if err := m.Take(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	running := m.recheckDone
	m.mu.Unlock()
	if running == nil {
		t.Fatal("no background check while holding")
	}
	m.Quiet()
	select {
	case <-running:
	default:
		t.Fatal("background check still running after Quiet")
	}
	if st := m.Status(); st.Contests != 0 || !st.Holding {
		t.Fatalf("after Quiet: contests %d, holding %t; want 0 and still holding", st.Contests, st.Holding)
	}
	// Master again: Announce verifies and starts the check again.
	if err := m.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	restarted := m.recheckDone != nil
	m.mu.Unlock()
	if !restarted {
		t.Fatal("no background check after Announce")
	}
}

func TestPreflight(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	m := r.newMover(t, nodeA, cfg, nil)
	ctx := context.Background()
	if err := m.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if r.fake.Owner(vip1) != eniB {
		t.Fatal("preflight changed the state")
	}
	r.fake.Deny(keyA, "AssociateAddress")
	if err := m.Preflight(ctx); !IsPermission(err) {
		t.Fatalf("want a permission error, got %v", err)
	}
	r.fake.Allow(keyA, "AssociateAddress")

	wrong := fastConfig()
	wrong.Endpoint, wrong.IMDSEndpoint, wrong.ENI = r.api.URL, r.imds[instA].URL, eniB
	m2, err := New(ctx, wrong, nil, Options{Credentials: staticCreds(keyA)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Preflight(ctx); err == nil || !strings.Contains(err.Error(), "attached to") {
		t.Fatalf("ENI of another instance: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := EC2Config{VIPs: []netip.Addr{vip1, vip2}, EIPs: []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip2}}}
	got, err := ok.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.EIPs[0].PrivateIP != vip1 || got.MoveTimeout != DefaultMoveTimeout || got.PermissionBackoff != DefaultPermissionBackoff {
		t.Fatalf("defaults: %+v", got)
	}
	// IPv6 VIPs mix with IPv4 ones; an Elastic IP defaults to the first IPv4.
	mixed, err := EC2Config{VIPs: []netip.Addr{vip6, vip1}, EIPs: []EIP{{AllocationID: alloc1}}}.WithDefaults()
	if err != nil || mixed.EIPs[0].PrivateIP != vip1 {
		t.Fatalf("mixed families: %v %+v", err, mixed.EIPs)
	}
	if _, err := (EC2Config{VIPs: []netip.Addr{vip6}}).WithDefaults(); err != nil {
		t.Fatalf("IPv6 alone: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  EC2Config
		want string
	}{
		{"no vips", EC2Config{}, "vips: at least one"},
		{"link-local ipv6", EC2Config{VIPs: []netip.Addr{netip.MustParseAddr("fe80::1")}}, "fe80::1 is not a unicast address EC2 can assign"},
		{"ipv6 with zone", EC2Config{VIPs: []netip.Addr{netip.MustParseAddr("2001:db8::1%eth0")}}, "without a zone"},
		{"mapped ipv4", EC2Config{VIPs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.1.100")}}, "write IPv4 addresses as such"},
		{"multicast", EC2Config{VIPs: []netip.Addr{netip.MustParseAddr("ff02::12")}}, "not a unicast address"},
		{"eip on ipv6", EC2Config{VIPs: []netip.Addr{vip1, vip6}, EIPs: []EIP{{AllocationID: alloc1, PrivateIP: vip6}}}, "points at 2001:db8:0:1::100, an IPv6 address; Elastic IPs are IPv4"},
		{"eip without ipv4 vip", EC2Config{VIPs: []netip.Addr{vip6}, EIPs: []EIP{{AllocationID: alloc1}}}, "has no IPv4 VIP to point at"},
		{"dup vip", EC2Config{VIPs: []netip.Addr{vip1, vip1}}, "listed twice"},
		{"bad alloc", EC2Config{VIPs: []netip.Addr{vip1}, EIPs: []EIP{{AllocationID: "203.0.113.1"}}}, "not an allocation ID"},
		{"eip off vip", EC2Config{VIPs: []netip.Addr{vip1}, EIPs: []EIP{{AllocationID: alloc1, PrivateIP: vip2}}}, "not one of the vips"},
		{"two eips one ip", EC2Config{VIPs: []netip.Addr{vip1}, EIPs: []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip1}}}, "carries one Elastic IP"},
		{"bad eni", EC2Config{VIPs: []netip.Addr{vip1}, ENI: "eth0"}, "not a network interface ID"},
		{"negative", EC2Config{VIPs: []netip.Addr{vip1}, Recheck: -time.Second}, "recheck: negative"},
		{"call > move", EC2Config{VIPs: []netip.Addr{vip1}, CallTimeout: time.Minute, MoveTimeout: time.Second}, "exceeds move_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want Kind
	}{
		{ctx, apiErr("RequestLimitExceeded"), KindThrottle},
		{ctx, apiErr("Throttling"), KindThrottle},
		{ctx, apiErr("UnauthorizedOperation"), KindPermission},
		{ctx, apiErr("AuthFailure"), KindPermission},
		{ctx, apiErr("InternalError"), KindTransient},
		{ctx, apiErr("InvalidNetworkInterfaceID.NotFound"), KindNotFound},
		{ctx, apiErr("InvalidNetworkInterfaceID.Malformed"), KindNotFound},
		{ctx, apiErr("InvalidParameterValue"), KindInvalid},
		{ctx, apiErr("UnknownError"), KindTransient},
		{ctx, errors.New("connection refused"), KindTransient},
		{done, apiErr("RequestLimitExceeded"), KindCanceled},
	} {
		if got, _ := Classify(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}

// ObserveCall hears each EC2 operation with its name, duration and error.
func TestObserveCalls(t *testing.T) {
	r := newRegion(t, ec2fake.Options{MinLatency: 5 * time.Millisecond, MaxLatency: 10 * time.Millisecond})
	cfg := fastConfig()
	cfg.Endpoint = r.api.URL
	cfg.IMDSEndpoint = r.imds[nodeA.instance].URL
	var mu sync.Mutex
	calls := map[string][]time.Duration{}
	m, err := New(context.Background(), cfg, nil, Options{
		Logger:      testLogger(t),
		Credentials: credentials.NewStaticCredentialsProvider(nodeA.key, "secret", ""),
		ObserveCall: func(op string, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				calls[op] = append(calls[op], took)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	a := calls["AssignPrivateIpAddresses"]
	if len(a) == 0 || a[0] < 5*time.Millisecond {
		t.Errorf("observed calls %v: want AssignPrivateIpAddresses taking at least the fake's 5ms", calls)
	}
}

// A failed association is a warning that names the Elastic IP and where
// it should point: it is where a stuck move starts.
func TestAssociationFailureWarns(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.InjectFault(ec2fake.Fault{Action: "AssociateAddress", Count: 1, Status: 400, Code: "InvalidParameterValue", Message: "not yet"})
	cfg := fastConfig()
	cfg.Endpoint = r.api.URL
	cfg.IMDSEndpoint = r.imds[nodeA.instance].URL
	var logs bytes.Buffer
	var mu sync.Mutex
	m, err := New(context.Background(), cfg, nil, Options{
		Logger:      slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Credentials: credentials.NewStaticCredentialsProvider(nodeA.key, "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "Elastic IP association failed") || !strings.Contains(out, "on "+nodeA.eni) {
		t.Errorf("warnings:\n%s", out)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
