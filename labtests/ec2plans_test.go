package labtests

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/config"
	lp "github.com/director-lb/director/labtests/labplan"
)

func TestEC2FailbackPlan(t *testing.T) {
	plan := EC2FailbackPlan("x")
	if err := plan.Validate(); err != nil {
		t.Fatal(err)
	}
	got := labels(plan)
	order := []string{LabelElected, LabelEC2LB1, LabelLB2Ready, LabelFail, LabelTakeover, LabelEC2LB2, LabelRecover,
		LabelHealedState, LabelFailback, LabelEC2Back, LabelProbe, LabelStateLB2}
	last := -1
	for _, want := range order {
		i := slices.Index(got, want)
		if i <= last {
			t.Fatalf("label %q at %d, want after %d: %v", want, i, last, got)
		}
		last = i
	}
	// EC2 without unicast, or with keepalived, cannot be expressed.
	p := EC2Params()
	p.Unicast = false
	if p.Validate() == nil {
		t.Error("EC2 over multicast validated")
	}
	p = EC2Params()
	p.Impl[lp.LB2] = lp.Keepalived
	if p.Validate() == nil {
		t.Error("EC2 with keepalived validated")
	}
}

// The generated configuration must pass director's own validation, with
// each node naming its own instance, ENI and metadata port.
func TestEC2DirectorConfig(t *testing.T) {
	for _, n := range []string{lp.LB1, lp.LB2} {
		body, err := lp.DirectorConfig(EC2Params(), n)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(n+".yaml", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v\n%s", n, err, body)
		}
		e := c.Instances[0].EC2
		want := lp.EC2Nodes()[n]
		if e == nil || e.ENI != want.ENI || e.InstanceID != want.Instance || !strings.HasSuffix(e.IMDSEndpoint, ":"+strconv.Itoa(want.IMDSPort)) {
			t.Fatalf("%s: ec2 block %+v, want %+v", n, e, want)
		}
		// Both VIPs move through EC2: the IPv6 one is excluded from the
		// (IPv4) adverts and moved with move_excluded.
		if got := e.Cloud.VIPs; !slices.Equal(got, []netip.Addr{netip.MustParseAddr(lp.VIP4Addr), lp.VIP6.Addr()}) {
			t.Errorf("%s: the EC2 mover moves %v", n, got)
		}
	}
}

// The seed must load into the fake, and EC2Holds must tell the holder
// from the other node in the fake's real snapshot format.
func TestEC2SeedAndHolds(t *testing.T) {
	seed, err := lp.EC2Seed()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ec2fake.LoadSeed(strings.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2fake.FromSeed(ec2fake.Options{}, s); err != nil {
		t.Fatalf("fake rejects the seed: %v", err)
	}
	vip := netip.MustParseAddr(lp.VIP4Addr)
	nodes := lp.EC2Nodes()
	// The IPv6 VIP can be assigned in the seeded region.
	f, err := ec2fake.FromSeed(ec2fake.Options{}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.MoveIP(lp.VIP6.Addr(), nodes[lp.LB1].ENI); err != nil {
		t.Fatalf("the seed's subnet has no room for %s: %v", lp.VIP6.Addr(), err)
	}
	state := func(ipENI, eipENI string, ip6ENI ...string) string {
		st := ec2fake.State{
			IPs: map[netip.Addr]string{vip: ipENI, netip.MustParseAddr("10.0.0.11"): nodes[lp.LB1].ENI,
				netip.MustParseAddr("10.0.0.12"): nodes[lp.LB2].ENI, lp.VIP6.Addr(): ipENI},
			Associations: map[string]ec2fake.AssociationState{lp.EC2AllocID: {AssociationID: "eipassoc-1", ENI: eipENI, PrivateIP: vip}},
			Calls:        3,
		}
		if len(ip6ENI) > 0 {
			st.IPs[lp.VIP6.Addr()] = ip6ENI[0]
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a, b := nodes[lp.LB1].ENI, nodes[lp.LB2].ENI
	for _, c := range []struct {
		ip, eip, ip6, node string
		want               bool
	}{
		{a, a, a, lp.LB1, true}, {a, a, a, lp.LB2, false},
		{b, b, b, lp.LB2, true}, {b, b, b, lp.LB1, false},
		{a, b, a, lp.LB1, false}, {b, a, a, lp.LB1, false},
		// The IPv6 VIP still on the other ENI, or on none.
		{a, a, b, lp.LB1, false}, {b, b, a, lp.LB2, false}, {a, a, "", lp.LB1, false},
	} {
		if got := regexp.MustCompile(EC2Holds(c.node)).MatchString(state(c.ip, c.eip, c.ip6)); got != c.want {
			t.Errorf("VIP on %s, IPv6 VIP on %q, EIP on %s: EC2Holds(%s) = %t", c.ip, c.ip6, c.eip, c.node, got)
		}
	}
}
