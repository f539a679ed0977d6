package cloud

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The plan with IPv6 VIPs, stepped with made-up times as in plan_test.go.

// mixedConfig has an IPv4 and an IPv6 VIP and one Elastic IP (on vip1).
func mixedConfig(t *testing.T) EC2Config {
	t.Helper()
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip6}
	cfg.EIPs = []EIP{{AllocationID: alloc1}}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConvergencePlanIPv6(t *testing.T) {
	cfg := mixedConfig(t)
	poll, redrive := cfg.PollInterval, cfg.RedriveAfter // 20ms, 300ms
	var (
		nothing = seen(nil, nil)
		only4   = seen([]netip.Addr{vip1}, map[string]netip.Addr{alloc1: vip1})
		all     = seen([]netip.Addr{vip1, vip6}, map[string]netip.Addr{alloc1: vip1})
	)
	type took struct {
		f       family
		refused bool
	}
	type step struct {
		at     time.Duration
		took   []took
		sent   []EIP
		obs    observation
		take   [2]bool
		assoc  int // associations asked for
		wait   time.Duration
		done   bool
		redriv bool
	}
	for _, tc := range []struct {
		name       string
		optimistic bool
		verified   bool
		steps      []step
	}{
		{
			name: "promotion takes both families at once", optimistic: true,
			steps: []step{{took: []took{{fam4, false}, {fam6, false}}, sent: cfg.EIPs, obs: all, done: true}},
		},
		{
			name: "a refused IPv6 take is retried after PollInterval, doubling, without retaking IPv4", optimistic: true,
			steps: []step{
				{took: []took{{fam4, false}, {fam6, true}}, sent: cfg.EIPs, obs: only4}, // read alongside associations: look again at once
				{at: poll - time.Millisecond, obs: only4, wait: poll},
				{at: poll, obs: only4, take: [2]bool{false, true}},
				{at: poll, took: []took{{fam6, true}}, obs: only4, wait: poll},
				{at: 3*poll - time.Millisecond, obs: only4, wait: poll}, // paused 2×poll now
				{at: 3 * poll, obs: only4, take: [2]bool{false, true}},
				{at: 3 * poll, took: []took{{fam6, false}}, obs: all, done: true},
			},
		},
		{
			name: "an accepted IPv6 take still unseen is resent at RedriveAfter, IPv4 left alone", optimistic: true,
			steps: []step{
				{took: []took{{fam4, false}, {fam6, false}}, sent: cfg.EIPs, obs: only4},
				{at: redrive - time.Millisecond, obs: only4, wait: poll},
				{at: redrive, obs: only4, take: [2]bool{false, true}, redriv: true},
			},
		},
		{
			name: "read first (Announce): only the missing family is taken",
			steps: []step{
				{obs: seen([]netip.Addr{vip6}, nil), take: [2]bool{true, false}},
				{at: poll, took: []took{{fam4, false}}, obs: seen([]netip.Addr{vip1, vip6}, nil), assoc: 1},
			},
		},
		{
			name: "IPv6 VIP gone twice from a verified hold: contest, retake IPv6 only", verified: true,
			steps: []step{
				{obs: only4, wait: poll},
				{at: poll, obs: only4, take: [2]bool{false, true}},
			},
		},
		{
			name: "IMDS's ipv6s not yet listing the VIP keeps the move going", verified: true,
			steps: []step{
				{obs: func() observation {
					o := all
					o.imdsSeen = [2]bool{true, true}
					o.imdsIPs = map[netip.Addr]bool{vip1: true}
					return o
				}(), wait: poll},
				{at: poll, obs: func() observation {
					o := all
					o.imdsSeen = [2]bool{true, true}
					o.imdsIPs = map[netip.Addr]bool{vip1: true, vip6: true}
					return o
				}(), done: true},
			},
		},
		{
			name: "nothing on our ENI, not optimistic: both families taken, the EIP only after",
			steps: []step{
				{obs: nothing, take: [2]bool{true, true}},
				{at: poll, took: []took{{fam4, false}, {fam6, false}}, obs: nothing, assoc: 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			c, r := newConvergence(cfg, tc.optimistic, tc.verified)
			if r.take != [2]bool{tc.optimistic, tc.optimistic} {
				t.Fatalf("first round takes %v, optimistic %v", r.take, tc.optimistic)
			}
			contested := false
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				for _, tk := range s.took {
					c = c.took(now, tk.f, tk.refused)
				}
				var v verdict
				c, v = c.observed(now, s.sent, make([]error, len(s.sent)), s.obs, nil)
				contested = contested || v.contested != nil
				if v.done != s.done || (v.redrive > 0) != s.redriv {
					t.Fatalf("step %d at %s: verdict %+v", i, s.at, v)
				}
				if v.done {
					continue
				}
				if v.next.take != s.take || len(v.next.associate) != s.assoc || v.wait != s.wait {
					t.Fatalf("step %d at %s: next take=%v assoc=%d wait=%s, want take=%v assoc=%d wait=%s",
						i, s.at, v.next.take, len(v.next.associate), v.wait, s.take, s.assoc, s.wait)
				}
			}
			if strings.Contains(tc.name, "contest") != contested {
				t.Fatalf("contested %v", contested)
			}
		})
	}

	// An IPv6-only configuration never takes IPv4.
	only6, err := EC2Config{VIPs: []netip.Addr{vip6}, PollInterval: poll, RedriveAfter: redrive}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c, r := newConvergence(only6, true, false)
	if r.take != [2]bool{false, true} || len(r.associate) != 0 {
		t.Fatalf("IPv6-only first round %+v", r)
	}
	c = c.took(time.Time{}.Add(time.Hour), fam6, false)
	if _, v := c.observed(time.Time{}.Add(time.Hour+redrive), nil, nil, seen(nil, nil), nil); v.next.take != [2]bool{false, true} {
		t.Fatalf("IPv6-only redrive %+v", v.next)
	}
}

func TestTake6(t *testing.T) {
	other := "eni-0ccccccccccccccc3"
	for _, tc := range []struct {
		name    string
		holders map[netip.Addr]string
		free    map[string][]netip.Addr
		assign  []netip.Addr
	}{
		{"nobody holds them", nil, nil, []netip.Addr{vip6, vip7}},
		{"the peer holds them", map[netip.Addr]string{vip6: eniB, vip7: eniB}, map[string][]netip.Addr{eniB: {vip6, vip7}}, []netip.Addr{vip6, vip7}},
		{"ours already", map[netip.Addr]string{vip6: eniA, vip7: eniA}, nil, nil},
		{"spread out", map[netip.Addr]string{vip6: eniB, vip7: other}, map[string][]netip.Addr{eniB: {vip6}, other: {vip7}}, []netip.Addr{vip6, vip7}},
		{"one ours, one free", map[netip.Addr]string{vip6: eniA, vip7: ""}, nil, []netip.Addr{vip7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free, assign := take6(eniA, []netip.Addr{vip6, vip7}, tc.holders)
			if !maps.EqualFunc(free, tc.free, slices.Equal) || !slices.Equal(assign, tc.assign) {
				t.Fatalf("free %v assign %v, want %v %v", free, assign, tc.free, tc.assign)
			}
		})
	}
}

// A move's error says what is missing and where it is instead.
func TestDescribeMissing(t *testing.T) {
	cfg := mixedConfig(t)
	o := seen([]netip.Addr{vip1}, nil)
	o.eips[alloc1] = eipView{eni: eniB, ip: vip1}
	got := o.describeMissing(cfg, map[netip.Addr]string{vip6: eniB})
	for _, want := range []string{
		vip6.String() + " not on " + eniA + " (last seen on " + eniB + ")",
		alloc1 + " points at 10.0.1.100 on " + eniB + " (want 10.0.1.100 on " + eniA + ")",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	o = seen([]netip.Addr{vip1, vip6}, nil)
	o.imdsSeen[fam6] = true
	if got := o.describeMissing(cfg, nil); !strings.Contains(got, vip6.String()+" not yet listed by the metadata service") ||
		!strings.Contains(got, alloc1+" not listed by DescribeAddresses") {
		t.Errorf("IMDS lag and unknown EIP: %q", got)
	}
	if got := seen([]netip.Addr{vip1, vip6}, map[string]netip.Addr{alloc1: vip1}).describeMissing(cfg, nil); got != "" {
		t.Errorf("all in place: %q", got)
	}
}
