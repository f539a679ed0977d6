// Package ec2fake is an in-process fake of the parts of the EC2 Query API
// and of the instance metadata service (IMDSv2) that director's EC2 mover
// uses, faithful enough to test failover against:
//
//   - AssignPrivateIpAddresses with AllowReassignment moves a secondary
//     private IP between network interfaces, and the Elastic IP associated
//     with it moves along, as on EC2.
//   - AssociateAddress moves an Elastic IP; a private IP carries at most one.
//   - UnassignPrivateIpAddresses drops the IP and disassociates its EIP.
//   - AssignIpv6Addresses assigns IPv6 addresses from the subnet's IPv6
//     CIDR block. There is no AllowReassignment for IPv6: an address that
//     another ENI holds is refused until UnassignIpv6Addresses frees it.
//   - DescribeNetworkInterfaces, DescribeAddresses and the metadata
//     service's local-ipv4s and ipv6s may show the previous state for a
//     while after a change (Lag), because on EC2 remapping is asynchronous.
//   - Errors come in EC2's XML envelope with EC2's codes and HTTP statuses
//     (InvalidNetworkInterfaceID.NotFound, InvalidAllocationID.NotFound,
//     InvalidParameterValue, Resource.AlreadyAssociated, UnauthorizedOperation,
//     AuthFailure, RequestLimitExceeded, InternalError, DryRunOperation...).
//   - Faults can be injected: throttling, 5xx (before or after the change
//     is made), denied actions per access key, raw garbage bodies, and a
//     per-request latency.
//
// A Fake is an http.Handler for the EC2 endpoint; IMDS returns the handler of
// one instance's metadata service. cmd/ec2fake runs both as a server.
package ec2fake

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Instance describes an EC2 instance and its network interfaces.
type Instance struct {
	ID               string `json:"id"`
	Region           string `json:"region"`
	AvailabilityZone string `json:"availability_zone"`
	AccountID        string `json:"account_id"`
	// ENIs are in device order: the first is the primary interface.
	ENIs []ENI `json:"enis"`
}

// ENI describes one network interface.
type ENI struct {
	ID       string       `json:"id"`
	MAC      string       `json:"mac"`
	SubnetID string       `json:"subnet_id"`
	VPCID    string       `json:"vpc_id"`
	Subnet   netip.Prefix `json:"subnet"`
	// Subnet6 is the subnet's IPv6 CIDR block; without one the ENI takes
	// no IPv6 address.
	Subnet6 netip.Prefix `json:"subnet_ipv6,omitzero"`
	// Primary is the interface's primary private IP; it never moves.
	Primary netip.Addr `json:"primary"`
	// MaxIPs caps the private IPv4 addresses (primary included) and,
	// separately, the IPv6 addresses, as EC2's per-instance-type limit
	// does; 0 means no cap.
	MaxIPs int `json:"max_ips"`
}

// Address describes an Elastic IP allocation.
type Address struct {
	AllocationID string     `json:"allocation_id"`
	PublicIP     netip.Addr `json:"public_ip"`
}

// Options tune a Fake. Zero values are EC2-like defaults without delays.
type Options struct {
	// Lag is how long Describe calls and the metadata service keep showing
	// the state from before a change.
	Lag time.Duration
	// MinLatency and MaxLatency bound a uniformly random delay added to each
	// EC2 request, half before the change is made and half after, so that
	// a client that gives up mid-call may still have changed something.
	MinLatency, MaxLatency time.Duration
	// AccessKeys, if not empty, are the only access key IDs accepted in the
	// SigV4 Authorization header (signatures are not checked).
	AccessKeys []string
	// Seed makes generated IDs and latencies reproducible; 0 picks one.
	Seed uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Fake is the fake EC2 region. It is safe for concurrent use.
type Fake struct {
	opt Options

	mu        sync.Mutex
	rng       *rand.Rand
	instances map[string]*Instance
	enis      map[string]*eniState
	ips       map[netip.Addr]*history[string] // private IPv4 or IPv6 address → owning ENI ("" none)
	addrs     map[string]*addrState
	addrOrder []string
	faults    []*faultState
	denied    map[denyKey]bool
	calls     []Call
	lag       time.Duration
	lat       [2]time.Duration
	hook      func(Call)
}

type eniState struct {
	ENI
	instance string
	device   int
}

type addrState struct {
	Address
	assoc *history[association]
}

// association is where an Elastic IP points; the zero value means nowhere.
type association struct {
	ID        string
	ENI       string
	PrivateIP netip.Addr
}

// history keeps the recent values of one piece of state with the time each
// was set, so that a reader can be shown the value as of Lag ago.
type history[T comparable] struct {
	entries []entry[T]
}

type entry[T comparable] struct {
	at time.Time
	v  T
}

func (h *history[T]) current() T {
	var zero T
	if len(h.entries) == 0 {
		return zero
	}
	return h.entries[len(h.entries)-1].v
}

// visible is the value that was current at cutoff: the newest entry set at
// or before it.
func (h *history[T]) visible(cutoff time.Time) T {
	var zero T
	for i := len(h.entries) - 1; i >= 0; i-- {
		if !h.entries[i].at.After(cutoff) {
			return h.entries[i].v
		}
	}
	return zero
}

// set records v at now and forgets entries no reader can see any more.
func (h *history[T]) set(now time.Time, v T, lag time.Duration) {
	if len(h.entries) > 0 && h.entries[len(h.entries)-1].v == v {
		return
	}
	h.entries = append(h.entries, entry[T]{at: now, v: v})
	cutoff := now.Add(-lag)
	// Keep the newest entry at or before cutoff and everything after it.
	keep := 0
	for i := range h.entries {
		if !h.entries[i].at.After(cutoff) {
			keep = i
		}
	}
	h.entries = slices.Clone(h.entries[keep:])
}

// New builds a region holding instances and addresses. secondary maps
// secondary private IPs to the ENI that holds them at start; assoc maps
// allocation IDs to the private IP they are associated with at start.
func New(opt Options, instances []Instance, addresses []Address, secondary map[netip.Addr]string, assoc map[string]netip.Addr) (*Fake, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	seed := opt.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f := &Fake{
		opt:       opt,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		instances: map[string]*Instance{},
		enis:      map[string]*eniState{},
		ips:       map[netip.Addr]*history[string]{},
		addrs:     map[string]*addrState{},
		denied:    map[denyKey]bool{},
		lag:       opt.Lag,
		lat:       [2]time.Duration{opt.MinLatency, max(opt.MinLatency, opt.MaxLatency)},
	}
	// Seed state is set at the zero time, so that it is visible at once.
	var epoch time.Time
	for _, in := range instances {
		if in.ID == "" || len(in.ENIs) == 0 {
			return nil, fmt.Errorf("ec2fake: instance %q needs an ID and at least one ENI", in.ID)
		}
		if _, dup := f.instances[in.ID]; dup {
			return nil, fmt.Errorf("ec2fake: instance %s listed twice", in.ID)
		}
		in := in
		in.ENIs = slices.Clone(in.ENIs)
		if in.AccountID == "" {
			in.AccountID = "123456789012"
		}
		if in.Region == "" {
			in.Region = "us-east-1"
		}
		if in.AvailabilityZone == "" {
			in.AvailabilityZone = in.Region + "a"
		}
		f.instances[in.ID] = &in
		for i, e := range in.ENIs {
			if e.ID == "" || !e.Primary.Is4() || !e.Subnet.Contains(e.Primary) {
				return nil, fmt.Errorf("ec2fake: ENI %q of %s needs an ID and a primary IPv4 address inside its subnet", e.ID, in.ID)
			}
			if _, dup := f.enis[e.ID]; dup {
				return nil, fmt.Errorf("ec2fake: ENI %s listed twice", e.ID)
			}
			if _, dup := f.ips[e.Primary]; dup {
				return nil, fmt.Errorf("ec2fake: address %s assigned twice", e.Primary)
			}
			if e.Subnet6.IsValid() && (!e.Subnet6.Addr().Is6() || e.Subnet6.Addr().Is4In6() || e.Subnet6.Addr().Zone() != "") {
				return nil, fmt.Errorf("ec2fake: ENI %s: subnet_ipv6 %s is not an IPv6 prefix", e.ID, e.Subnet6)
			}
			e.Subnet = e.Subnet.Masked()
			e.Subnet6 = e.Subnet6.Masked()
			f.enis[e.ID] = &eniState{ENI: e, instance: in.ID, device: i}
			f.ips[e.Primary] = &history[string]{}
			f.ips[e.Primary].set(epoch, e.ID, 0)
		}
	}
	for ip, eni := range secondary {
		e, ok := f.enis[eni]
		if !ok {
			return nil, fmt.Errorf("ec2fake: secondary %s on unknown ENI %s", ip, eni)
		}
		if _, dup := f.ips[ip]; dup {
			return nil, fmt.Errorf("ec2fake: address %s assigned twice", ip)
		}
		if sub := e.subnetFor(ip); !sub.Contains(ip) {
			return nil, fmt.Errorf("ec2fake: secondary %s outside the subnet %s of %s", ip, sub, eni)
		}
		f.ips[ip] = &history[string]{}
		f.ips[ip].set(epoch, eni, 0)
	}
	for _, a := range addresses {
		if a.AllocationID == "" || !a.PublicIP.IsValid() {
			return nil, fmt.Errorf("ec2fake: address %q needs an allocation ID and a public IP", a.AllocationID)
		}
		if _, dup := f.addrs[a.AllocationID]; dup {
			return nil, fmt.Errorf("ec2fake: allocation %s listed twice", a.AllocationID)
		}
		f.addrs[a.AllocationID] = &addrState{Address: a, assoc: &history[association]{}}
		f.addrOrder = append(f.addrOrder, a.AllocationID)
	}
	for alloc, ip := range assoc {
		a, ok := f.addrs[alloc]
		if !ok {
			return nil, fmt.Errorf("ec2fake: association of unknown allocation %s", alloc)
		}
		h, ok := f.ips[ip]
		if !ok || h.current() == "" {
			return nil, fmt.Errorf("ec2fake: %s associated with unassigned private IP %s", alloc, ip)
		}
		a.assoc.set(epoch, association{ID: f.newID("eipassoc-"), ENI: h.current(), PrivateIP: ip}, 0)
	}
	return f, nil
}

// newID returns prefix and 17 hex digits, the shape of current EC2 IDs.
// f.mu must be held (or f not yet shared).
func (f *Fake) newID(prefix string) string {
	return fmt.Sprintf("%s%x%016x", prefix, f.rng.IntN(16), f.rng.Uint64())
}

func (f *Fake) now() time.Time { return f.opt.Now() }

// SetLag changes how long reads show the state from before a change.
func (f *Fake) SetLag(d time.Duration) {
	f.mu.Lock()
	f.lag = d
	f.mu.Unlock()
}

// SetLatency changes the per-request delay bounds.
func (f *Fake) SetLatency(minimum, maximum time.Duration) {
	f.mu.Lock()
	f.lat = [2]time.Duration{minimum, max(minimum, maximum)}
	f.mu.Unlock()
}

// SetHook installs a function called (without locks held) with every EC2
// request as it is received, before any latency; nil removes it.
func (f *Fake) SetHook(h func(Call)) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// Owner returns the ENI that holds ip now ("" if none).
func (f *Fake) Owner(ip netip.Addr) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.ips[ip]; ok {
		return h.current()
	}
	return ""
}

// VisibleOwner returns the ENI that Describe calls show holding ip now.
func (f *Fake) VisibleOwner(ip netip.Addr) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.ips[ip]; ok {
		return h.visible(f.now().Add(-f.lag))
	}
	return ""
}

// Association returns the ENI and private IP an Elastic IP points at now
// (empty if unassociated or unknown).
func (f *Fake) Association(allocationID string) (eni string, privateIP netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.addrs[allocationID]
	if !ok {
		return "", netip.Addr{}
	}
	c := a.assoc.current()
	return c.ENI, c.PrivateIP
}

// MoveIP reassigns ip to eni at once, as another actor (the peer, a human
// in the console) would; the associated Elastic IP moves along. An IPv6
// address moves too (as an unassign and an assign in one step).
func (f *Fake) MoveIP(ip netip.Addr, eni string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.enis[eni]
	if !ok {
		return fmt.Errorf("ec2fake: unknown ENI %s", eni)
	}
	if !e.subnetFor(ip).Contains(ip) {
		return fmt.Errorf("ec2fake: %s is outside the subnet of %s", ip, eni)
	}
	f.assignLocked(ip, eni)
	return nil
}

// subnetFor is the subnet block an address of ip's family comes from
// (the zero prefix, which contains nothing, for IPv6 without a block).
func (e *eniState) subnetFor(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return e.Subnet
	}
	return e.Subnet6
}

// assignLocked makes eni the owner of ip and moves its Elastic IP along.
func (f *Fake) assignLocked(ip netip.Addr, eni string) {
	now := f.now()
	h, ok := f.ips[ip]
	if !ok {
		h = &history[string]{}
		f.ips[ip] = h
	}
	if h.current() == eni {
		return
	}
	h.set(now, eni, f.lag)
	for _, id := range f.addrOrder {
		a := f.addrs[id]
		if c := a.assoc.current(); c.PrivateIP == ip && c.ENI != "" {
			c.ENI = eni
			a.assoc.set(now, c, f.lag)
		}
	}
}

// unassignLocked drops ip and disassociates its Elastic IP.
func (f *Fake) unassignLocked(ip netip.Addr) {
	now := f.now()
	if h, ok := f.ips[ip]; ok {
		h.set(now, "", f.lag)
	}
	for _, id := range f.addrOrder {
		a := f.addrs[id]
		if c := a.assoc.current(); c.PrivateIP == ip && c.ENI != "" {
			a.assoc.set(now, association{}, f.lag)
		}
	}
}

// ipsOfLocked lists the private IPv4 addresses of eni as of cutoff,
// primary first.
func (f *Fake) ipsOfLocked(e *eniState, cutoff time.Time) []netip.Addr {
	out := []netip.Addr{e.Primary}
	var sec []netip.Addr
	for ip, h := range f.ips {
		if ip.Is4() && ip != e.Primary && h.visible(cutoff) == e.ID {
			sec = append(sec, ip)
		}
	}
	slices.SortFunc(sec, netip.Addr.Compare)
	return append(out, sec...)
}

// ipv6sOfLocked lists the IPv6 addresses of eni as of cutoff, sorted.
func (f *Fake) ipv6sOfLocked(e *eniState, cutoff time.Time) []netip.Addr {
	var out []netip.Addr
	for ip, h := range f.ips {
		if !ip.Is4() && h.visible(cutoff) == e.ID {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// currentIPCountLocked counts the addresses of ip's family (IPv4 with
// v6 false) eni holds now.
func (f *Fake) currentIPCountLocked(eni string, v6 bool) int {
	n := 0
	for ip, h := range f.ips {
		if ip.Is4() != v6 && h.current() == eni {
			n++
		}
	}
	return n
}

// Reassignments counts the AssignPrivateIpAddresses calls that moved ip
// straight from one ENI to another, for tests that bound flip-flopping.
func (f *Fake) Reassignments(ip netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Action == "AssignPrivateIpAddresses" && c.Moved && slices.Contains(c.IPs, ip) {
			n++
		}
	}
	return n
}
