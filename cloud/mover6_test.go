package cloud

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/vip"
)

// IPv6 VIPs against the fake region, where they start on B's ENI.

// callsOf lists the answered calls for action signed with key, oldest first.
func (r *region) callsOf(action, key string) []ec2fake.Call {
	var out []ec2fake.Call
	for _, c := range r.fake.Calls() {
		if c.Action == action && (key == "" || c.AccessKey == key) {
			out = append(out, c)
		}
	}
	return out
}

func TestTakeMovesIPv6VIPs(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip6, vip7}
	local := &vip.Fake{}
	a := r.newMover(t, nodeA, cfg, local)
	if err := a.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeA, cfg) || r.fake.Owner(vip6) != eniA || r.fake.Owner(vip7) != eniA {
		t.Fatalf("EC2 state after Take: %+v", r.fake.Snapshot())
	}
	if st := a.Status(); !st.Verified || st.Moves != 1 || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	// One unassignment from B's ENI, one assignment to ours, both VIPs each.
	un, as := r.callsOf("UnassignIpv6Addresses", keyA), r.callsOf("AssignIpv6Addresses", keyA)
	if len(un) != 1 || un[0].ENI != eniB || !slices.Equal(un[0].IPs, []netip.Addr{vip6, vip7}) {
		t.Errorf("unassign calls %+v, want one on %s for both", un, eniB)
	}
	if len(as) != 1 || as[0].ENI != eniA || as[0].Code != "" || !slices.Equal(as[0].IPs, []netip.Addr{vip6, vip7}) {
		t.Errorf("assign calls %+v, want one on %s for both", as, eniA)
	}
	if len(r.callsOf("AssignPrivateIpAddresses", keyA)) != 1 {
		t.Error("the IPv4 VIP was not assigned once")
	}

	// B takes everything back the same way.
	b := r.newMover(t, nodeB, cfg, nil)
	if err := b.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeB, cfg) {
		t.Fatalf("EC2 state after B's Take: %+v", r.fake.Snapshot())
	}
	// A, still believing it is master, sees the IPv6 VIPs gone (a
	// contest) and takes them back after its backoff.
	if err := a.Announce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !r.holds(nodeA, cfg) || a.Status().Contests != 1 {
		t.Fatalf("after A's Announce: %+v, contests %d", r.fake.Snapshot(), a.Status().Contests)
	}
}

// EC2 refusing the assignment (the address not yet free) is retried
// within the move, not fatal.
func TestRefusedIPv6AssignmentIsRetried(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.InjectFault(ec2fake.Fault{Action: "AssignIpv6Addresses", Status: 400, Code: "InvalidParameterValue",
		Message: "Address 2001:db8:0:1::100 is already assigned to another network interface", Count: 2})
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip6}
	cfg.EIPs = nil
	m := r.newMover(t, nodeA, cfg, nil)
	start := time.Now()
	if err := m.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.fake.Owner(vip6) != eniA {
		t.Fatalf("owner %q", r.fake.Owner(vip6))
	}
	as := r.callsOf("AssignIpv6Addresses", keyA)
	if len(as) != 3 || as[2].Code != "" {
		t.Fatalf("assign calls %+v, want two refused and one accepted", as)
	}
	// The pause after a refusal doubles from PollInterval: 20ms, then 40ms.
	if took := time.Since(start); took < 3*cfg.PollInterval {
		t.Fatalf("retried after %s, sooner than the pauses allow", took)
	}
	if m.Status().FailedMoves != 0 {
		t.Fatal("a retried refusal counted as a failed move")
	}
}

// A missing IAM permission to unassign from the peer's ENI is reported as
// such, naming the action and the ENI.
func TestIPv6UnassignPermission(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	r.fake.Deny(keyA, "UnassignIpv6Addresses")
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip6}
	m := r.newMover(t, nodeA, cfg, nil)
	err := m.Take(context.Background())
	t.Logf("error: %v", err)
	if !IsPermission(err) || !strings.Contains(err.Error(), "ec2:UnassignIpv6Addresses") || !strings.Contains(err.Error(), eniB) {
		t.Fatalf("want a permission error for UnassignIpv6Addresses on %s, got %v", eniB, err)
	}
	if r.fake.Owner(vip6) != eniB {
		t.Fatal("the VIP moved despite the refusal")
	}
}

// A move that runs out of time says what is missing and where it is.
func TestIPv6TimeoutSaysWhatIsMissing(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	// B's ENI never lets go (the unassignment "fails" as if already
	// done), so every assignment is refused.
	r.fake.InjectFault(ec2fake.Fault{Action: "UnassignIpv6Addresses", Status: 400, Code: "InvalidParameterValue", Message: "not assigned"})
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip6}
	m := r.newMover(t, nodeA, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err := m.Take(ctx)
	want := vip6.String() + " not on " + eniA + " (last seen on " + eniB + ")"
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want it to say %q", err, want)
	}
	if st := m.Status(); !strings.Contains(st.LastError, want) {
		t.Fatalf("status error %q", st.LastError)
	}
}

func TestReleaseUnassignsIPv6(t *testing.T) {
	r := newRegion(t, ec2fake.Options{})
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip6}
	cfg.UnassignOnRelease = true
	m := r.newMover(t, nodeA, cfg, nil)
	ctx := context.Background()
	if err := m.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if r.fake.Owner(vip6) != "" || r.fake.Owner(vip1) != "" {
		t.Fatalf("still assigned after Release: %+v", r.fake.Snapshot())
	}
	// The next master has it already: releasing again is no error.
	if err := r.fake.MoveIP(vip6, eniB); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx); err != nil || r.fake.Owner(vip6) != eniB {
		t.Fatalf("release after the peer took over: %v, owner %s", err, r.fake.Owner(vip6))
	}
}
