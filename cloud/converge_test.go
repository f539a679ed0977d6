package cloud

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/director-lb/director/internal/testwait"
)

// The convergence loop on a manual clock, against an in-process EC2 stub:
// time passes only when the test advances it, so "nothing happened before
// RedriveAfter" is checked at exact instants, without sleeping.

// stubEC2 shows vip1 and alloc1 on eniA once `showAfter` assignments have
// been accepted; deny makes assignments fail for lack of permission.
type stubEC2 struct {
	mu        sync.Mutex
	showAfter int
	deny      bool
	assigns   int // accepted or refused, as sent
	assocs    int
}

func (s *stubEC2) counts() (assigns, assocs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigns, s.assocs
}

func (s *stubEC2) visible() bool { return s.showAfter > 0 && s.assigns >= s.showAfter && !s.deny }

func (s *stubEC2) AssignPrivateIpAddresses(context.Context, *ec2.AssignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigns++
	if s.deny {
		return nil, apiErr("UnauthorizedOperation")
	}
	return &ec2.AssignPrivateIpAddressesOutput{}, nil
}

func (s *stubEC2) UnassignPrivateIpAddresses(context.Context, *ec2.UnassignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error) {
	return &ec2.UnassignPrivateIpAddressesOutput{}, nil
}

func (s *stubEC2) AssignIpv6Addresses(context.Context, *ec2.AssignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

func (s *stubEC2) UnassignIpv6Addresses(context.Context, *ec2.UnassignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.UnassignIpv6AddressesOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

func (s *stubEC2) AssociateAddress(context.Context, *ec2.AssociateAddressInput, ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assocs++
	return &ec2.AssociateAddressOutput{}, nil
}

func (s *stubEC2) DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ni := ec2types.NetworkInterface{NetworkInterfaceId: aws.String(eniA)}
	if s.visible() {
		ni.PrivateIpAddresses = []ec2types.NetworkInterfacePrivateIpAddress{{PrivateIpAddress: aws.String(vip1.String())}}
	}
	return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: []ec2types.NetworkInterface{ni}}, nil
}

func (s *stubEC2) DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := ec2types.Address{AllocationId: aws.String(alloc1)}
	if s.visible() {
		a.NetworkInterfaceId, a.PrivateIpAddress = aws.String(eniA), aws.String(vip1.String())
	}
	return &ec2.DescribeAddressesOutput{Addresses: []ec2types.Address{a}}, nil
}

func stubMover(t *testing.T, cfg EC2Config, api EC2API, clock Clock) *EC2Mover {
	t.Helper()
	m, err := newWithClients(cfg, Identity{InstanceID: instA, Region: "eu-west-1", ENI: eniA}, api, nil, nil, testLogger(t), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// An assignment EC2 keeps invisible is sent again at RedriveAfter on the
// mover's clock, and not a poll earlier.
func TestConvergeResendsAtRedriveAfter(t *testing.T) {
	cfg := fastConfig() // poll 20ms, redrive 300ms
	clock := newManualClock()
	api := &stubEC2{showAfter: 2}
	m := stubMover(t, cfg, api, clock)
	done := make(chan error, 1)
	go func() { done <- m.Take(context.Background()) }()

	for waited := time.Duration(0); waited < cfg.RedriveAfter; waited += cfg.PollInterval {
		testwait.Eventually(t, 5*time.Second, "the mover polling", func() bool { return clock.Waiting() == 1 })
		if assigns, assocs := api.counts(); assigns != 1 || assocs != 1 {
			t.Fatalf("after %s: %d assignments and %d associations, want 1 and 1 before RedriveAfter", waited, assigns, assocs)
		}
		clock.Advance(cfg.PollInterval)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Take did not finish once the resent assignment showed")
	}
	if assigns, assocs := api.counts(); assigns != 2 || assocs != 2 {
		t.Fatalf("%d assignments and %d associations, want both resent once", assigns, assocs)
	}
	if st := m.Status(); st.Moves != 1 || st.LastMoveDuration != cfg.RedriveAfter || !st.Verified {
		t.Fatalf("status %+v: want one verified move taking RedriveAfter on the mover's clock", st)
	}
}

// A refused call suspends that action until PermissionBackoff has passed
// on the mover's clock.
func TestPermissionSuspensionFollowsTheClock(t *testing.T) {
	cfg := fastConfig() // permission backoff 500ms
	clock := newManualClock()
	api := &stubEC2{showAfter: 1, deny: true}
	m := stubMover(t, cfg, api, clock)
	ctx := context.Background()
	if err := m.Take(ctx); !IsPermission(err) {
		t.Fatalf("want a permission error, got %v", err)
	}
	clock.Advance(cfg.PermissionBackoff - time.Millisecond)
	if err := m.Take(ctx); !IsPermission(err) {
		t.Fatalf("within the backoff: %v", err)
	}
	if assigns, _ := api.counts(); assigns != 1 {
		t.Fatalf("%d assignments sent during the backoff, want 1", assigns)
	}
	if st := m.Status(); len(st.Suspended) != 1 || !st.Suspended[0].Until.Equal(clock.Now().Add(time.Millisecond)) {
		t.Fatalf("status %+v", st)
	}
	api.mu.Lock()
	api.deny = false
	api.mu.Unlock()
	clock.Advance(2 * time.Millisecond)
	if err := m.Take(ctx); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if assigns, _ := api.counts(); assigns != 2 {
		t.Fatalf("%d assignments, want 2", assigns)
	}
}

// stub6EC2 holds vip6 on eniB until the mover unassigns it there; it
// refuses the first `refuse` assignments as EC2 does an address not yet
// free. Only the IPv6 calls and Describe are used.
type stub6EC2 struct {
	stubEC2
	mu      sync.Mutex
	owner   string
	refuse  int
	assigns int
}

func (s *stub6EC2) assigned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigns
}

func (s *stub6EC2) AssignIpv6Addresses(_ context.Context, in *ec2.AssignIpv6AddressesInput, _ ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigns++
	if s.refuse > 0 || (s.owner != "" && s.owner != aws.ToString(in.NetworkInterfaceId)) {
		s.refuse--
		return nil, apiErr("InvalidParameterValue")
	}
	s.owner = aws.ToString(in.NetworkInterfaceId)
	return &ec2.AssignIpv6AddressesOutput{}, nil
}

func (s *stub6EC2) UnassignIpv6Addresses(_ context.Context, in *ec2.UnassignIpv6AddressesInput, _ ...func(*ec2.Options)) (*ec2.UnassignIpv6AddressesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != aws.ToString(in.NetworkInterfaceId) {
		return nil, apiErr("InvalidParameterValue")
	}
	s.owner = ""
	return &ec2.UnassignIpv6AddressesOutput{}, nil
}

func (s *stub6EC2) DescribeNetworkInterfaces(_ context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out ec2.DescribeNetworkInterfacesOutput
	for _, eni := range []string{eniA, eniB} {
		ni := ec2types.NetworkInterface{NetworkInterfaceId: aws.String(eni)}
		if s.owner == eni {
			ni.Ipv6Addresses = []ec2types.NetworkInterfaceIpv6Address{{Ipv6Address: aws.String(vip6.String())}}
		}
		// By ID: our ENI. By filter: the holder.
		if slices.Contains(in.NetworkInterfaceIds, eni) || len(in.Filters) > 0 && s.owner == eni {
			out.NetworkInterfaces = append(out.NetworkInterfaces, ni)
		}
	}
	return &out, nil
}

// A refused IPv6 assignment is retried after PollInterval and then twice
// that on the mover's clock, not a moment sooner.
func TestConvergeRetriesRefusedIPv6(t *testing.T) {
	cfg := fastConfig() // poll 20ms
	cfg.VIPs, cfg.EIPs = []netip.Addr{vip6}, nil
	clock := newManualClock()
	api := &stub6EC2{owner: eniB, refuse: 2}
	m := stubMover(t, cfg, api, clock)
	done := make(chan error, 1)
	go func() { done <- m.Take(context.Background()) }()

	idle := func(at time.Duration, assigns int) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, "the mover waiting", func() bool { return clock.Waiting() == 1 })
		if got := api.assigned(); got != assigns {
			t.Fatalf("at %s: %d assignments, want %d", at, got, assigns)
		}
	}
	poll := cfg.PollInterval
	idle(0, 1)
	clock.Advance(poll - time.Millisecond)
	idle(poll-time.Millisecond, 1)
	clock.Advance(time.Millisecond) // the first pause is over: refused again
	idle(poll, 2)
	clock.Advance(poll)
	idle(2*poll, 2) // the pause doubled
	clock.Advance(poll - time.Millisecond)
	idle(3*poll-time.Millisecond, 2)
	clock.Advance(time.Millisecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Take did not finish after the accepted assignment")
	}
	if api.assigned() != 3 || api.owner != eniA {
		t.Fatalf("%d assignments, owner %s", api.assigned(), api.owner)
	}
	if st := m.Status(); st.Moves != 1 || st.LastMoveDuration != 3*poll {
		t.Fatalf("status %+v: want one move taking 3×PollInterval on the mover's clock", st)
	}
}
