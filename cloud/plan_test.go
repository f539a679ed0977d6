package cloud

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The convergence plan is stepped through with made-up times: no EC2, no
// clock, no sleeping.

// planConfig is fastConfig with defaults applied and both EIPs.
func planConfig(t *testing.T) EC2Config {
	t.Helper()
	cfg := fastConfig()
	cfg.VIPs = []netip.Addr{vip1, vip2}
	cfg.EIPs = []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip2}}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// seen is a read of our ENI (eniA) holding vips, with eips mapping an
// allocation to the VIP it points at on our ENI.
func seen(vips []netip.Addr, eips map[string]netip.Addr) observation {
	o := observation{eni: eniA, eniSeen: true, onENI: map[netip.Addr]bool{}, eips: map[string]eipView{}}
	for _, v := range vips {
		o.onENI[v] = true
	}
	for id, ip := range eips {
		o.eips[id] = eipView{eni: eniA, ip: ip}
	}
	return o
}

var (
	none     = seen(nil, nil)                                                                    // nothing ours yet
	allVIPs  = seen([]netip.Addr{vip1, vip2}, nil)                                               // VIPs, no EIPs
	complete = seen([]netip.Addr{vip1, vip2}, map[string]netip.Addr{alloc1: vip1, alloc2: vip2}) // all in place
	retryErr = &APIError{Op: "AssociateAddress", Kind: KindInvalid, Err: errors.New("not yet")}
	fatalErr = &APIError{Op: "AssociateAddress", Kind: KindNotFound, Err: errors.New("no such allocation")}
)

// step is one round's outcome as the driver reports it, and what the plan
// must answer.
type step struct {
	at       time.Duration // since the test's start
	assigned bool          // the round's assignment was accepted at `at`
	sent     []EIP
	errs     []error // per sent; nil: all succeeded
	obs      observation
	obsErr   error

	// The verdict wanted.
	assign    bool
	associate []string // allocation IDs
	wait      time.Duration
	done      bool
	failed    bool // done with an error
	verified  bool
	contested bool
	redrive   bool
	ignored   bool
}

func eips(cfg EC2Config, ids ...string) []EIP {
	var out []EIP
	for _, e := range cfg.EIPs {
		if slices.Contains(ids, e.AllocationID) {
			out = append(out, e)
		}
	}
	return out
}

func TestConvergencePlan(t *testing.T) {
	cfg := planConfig(t)
	poll, redrive := cfg.PollInterval, cfg.RedriveAfter // 20ms, 300ms
	both := []string{alloc1, alloc2}
	for _, tc := range []struct {
		name       string
		optimistic bool
		verified   bool
		steps      []step
		acted      bool
	}{
		{
			name: "promotion: all in place on the first read", optimistic: true, acted: true,
			steps: []step{{assigned: true, sent: eips(cfg, both...), obs: complete, done: true, verified: true}},
		},
		{
			name: "healthy hold: one read, nothing sent", verified: true,
			steps: []step{{obs: complete, done: true, verified: true}},
		},
		{
			name: "late assignment: nothing sent again before RedriveAfter, then resent with the pause doubled", optimistic: true, acted: true,
			steps: []step{
				{assigned: true, sent: eips(cfg, both...), obs: none},                  // read predates the change: look again at once
				{at: poll, obs: none, wait: poll},                                      // waiting for EC2
				{at: redrive - time.Millisecond, obs: none, wait: poll},                // still within RedriveAfter
				{at: redrive, obs: none, assign: true, associate: both, redrive: true}, // resent, EIPs too
				{at: redrive, assigned: true, sent: eips(cfg, both...), obs: none},
				{at: 2*redrive - time.Millisecond, obs: none, wait: poll},
				{at: 2 * redrive, obs: none, associate: both}, // EIPs keep RedriveAfter
				{at: 2 * redrive, sent: eips(cfg, both...), obs: none},
				{at: 3*redrive - time.Millisecond, obs: none, wait: poll}, // the assignment waits twice RedriveAfter
				{at: 3 * redrive, obs: none, assign: true, associate: both, redrive: true},
			},
		},
		{
			name: "assignment visible: EIPs just sent are not resent", optimistic: true, acted: true,
			steps: []step{
				{assigned: true, sent: eips(cfg, both...), obs: none},
				{at: poll, obs: allVIPs, verified: true, wait: poll}, // associations answered just now: wait
				{at: 2 * poll, obs: complete, done: true, verified: true},
			},
		},
		{
			name: "failed association retried after PollInterval, doubling, then RedriveAfter after a success", optimistic: true, acted: true,
			steps: []step{
				{assigned: true, sent: eips(cfg, alloc1), obs: allVIPs, errs: []error{retryErr}, verified: true, associate: []string{alloc2}}, // never sent: due
				{sent: eips(cfg, alloc2), obs: allVIPs, verified: true},                                                                       // alloc1's pause not over
				{at: poll - time.Millisecond, obs: allVIPs, verified: true, wait: poll},
				{at: poll, obs: allVIPs, verified: true, associate: []string{alloc1}},
				{at: poll, sent: eips(cfg, alloc1), errs: []error{retryErr}, obs: allVIPs, verified: true, wait: 0},
				{at: 3*poll - time.Millisecond, obs: allVIPs, verified: true, wait: poll}, // 2×poll now
				{at: 3 * poll, obs: allVIPs, verified: true, associate: []string{alloc1}},
				{at: 3 * poll, sent: eips(cfg, alloc1), obs: allVIPs, verified: true},
				{at: 3*poll + redrive - time.Millisecond, obs: allVIPs, verified: true, associate: []string{alloc2}}, // alloc1 succeeded: RedriveAfter
				{at: 3*poll + redrive, obs: allVIPs, verified: true, associate: both},
			},
		},
		{
			name: "no association before the VIP is ours or assigned",
			steps: []step{
				{obs: none, assign: true}, // not optimistic, never assigned: assign, EIPs wait
				{at: poll, assigned: true, obs: none, associate: both},
			},
			acted: true,
		},
		{
			name: "EIP elsewhere on a verified hold is re-associated without reassigning", verified: true,
			steps: []step{{obs: allVIPs, verified: true, associate: both}},
		},
		{
			name: "VIP gone once from a verified hold: a lagging read, not yet a contest", verified: true,
			steps: []step{
				{obs: none, wait: poll},
				{at: poll, obs: complete, done: true, verified: true},
			},
		},
		{
			name: "VIP gone twice from a verified hold: contest, then take back", verified: true,
			steps: []step{
				{obs: none, wait: poll},
				{at: poll, obs: none, contested: true, assign: true},
			},
		},
		{
			name: "fatal association error while incomplete fails the move", optimistic: true, acted: true,
			steps: []step{{assigned: true, sent: eips(cfg, both...), errs: []error{fatalErr, nil}, obs: allVIPs, done: true, failed: true}},
		},
		{
			name: "fatal association error is moot when everything is in place", optimistic: true, acted: true,
			steps: []step{{assigned: true, sent: eips(cfg, both...), errs: []error{nil, fatalErr}, obs: complete, done: true, verified: true, ignored: true}},
		},
		{
			name: "failed read fails the move", optimistic: true, acted: true,
			steps: []step{{assigned: true, obsErr: errors.New("describe failed"), done: true, failed: true}},
		},
		{
			name: "a read that does not list our ENI proves nothing", verified: true,
			steps: []step{
				{obs: observation{eni: eniA}, wait: poll},
				{at: poll, obs: observation{eni: eniA}, wait: poll},
			},
		},
		{
			name: "IMDS not yet showing the VIPs keeps the move going", optimistic: true, acted: true,
			steps: []step{
				{assigned: true, sent: eips(cfg, both...), obs: func() observation { o := complete; o.imdsSeen[fam4] = true; return o }(), verified: true},
				{at: poll, obs: func() observation {
					o := complete
					o.imdsSeen[fam4], o.imdsIPs = true, map[netip.Addr]bool{vip1: true, vip2: true}
					return o
				}(), done: true, verified: true},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			c, r := newConvergence(cfg, tc.optimistic, tc.verified)
			if r.take[fam4] != tc.optimistic || r.take[fam6] || (len(r.associate) == len(cfg.EIPs)) != tc.optimistic {
				t.Fatalf("first round %+v, optimistic %v", r, tc.optimistic)
			}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.assigned {
					c = c.assigned(now)
				}
				errs := s.errs
				if errs == nil {
					errs = make([]error, len(s.sent))
				}
				var v verdict
				c, v = c.observed(now, s.sent, errs, s.obs, s.obsErr)
				var got []string
				for _, e := range v.next.associate {
					got = append(got, e.AllocationID)
				}
				if v.done != s.done || (v.err != nil) != s.failed || v.verified != s.verified ||
					(v.contested != nil) != s.contested || (v.redrive > 0) != s.redrive || (v.ignored != nil) != s.ignored {
					t.Fatalf("step %d at %s: verdict %+v", i, s.at, v)
				}
				if v.done {
					continue
				}
				if v.next.take[fam4] != s.assign || v.next.take[fam6] || !slices.Equal(got, s.associate) || v.wait != s.wait {
					t.Fatalf("step %d at %s: next take=%v associate=%v wait=%s, want assign=%v associate=%v wait=%s",
						i, s.at, v.next.take, got, v.wait, s.assign, s.associate, s.wait)
				}
			}
			if c.acted != tc.acted {
				t.Fatalf("acted %v, want %v", c.acted, tc.acted)
			}
		})
	}
}

// assigned records every family's take as accepted at now.
func (c convergence) assigned(now time.Time) convergence {
	for f := range c.has {
		if c.has[f] {
			c = c.took(now, family(f), false)
		}
	}
	return c
}

// The redrive pause doubles up to MoveTimeout and no further.
func TestConvergenceRedriveCap(t *testing.T) {
	cfg := planConfig(t)
	cfg.MoveTimeout = 4 * cfg.RedriveAfter
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c, _ := newConvergence(cfg, true, false)
	now := t0
	var pauses []time.Duration
	for range 5 {
		c = c.assigned(now)
		last := now
		for {
			now = now.Add(cfg.PollInterval)
			var v verdict
			c, v = c.observed(now, nil, nil, none, nil)
			if v.next.take[fam4] {
				pauses = append(pauses, now.Sub(last))
				break
			}
		}
	}
	r := cfg.RedriveAfter
	want := []time.Duration{r, 2 * r, 4 * r, 4 * r, 4 * r}
	if !slices.Equal(pauses, want) {
		t.Fatalf("resent after %v, want %v", pauses, want)
	}
}

func TestContestBackoff(t *testing.T) {
	cfg := planConfig(t) // backoff 100ms, max 2s, window 1m
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	noJitter := func(time.Duration) time.Duration { return 0 }
	var c contestState
	var got []time.Duration
	now := t0
	for range 7 {
		var d time.Duration
		c, d = c.contest(now, cfg, noJitter)
		got = append(got, d)
		if c.until != now.Add(d) {
			t.Fatalf("until %s, want now+%s", c.until, d)
		}
		now = now.Add(10 * time.Second)
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms}
	if !slices.Equal(got, want) {
		t.Fatalf("backoffs %v, want %v", got, want)
	}
	// A contest after a quiet ContestWindow starts over.
	c, d := c.contest(now.Add(cfg.ContestWindow+time.Second), cfg, noJitter)
	if d != cfg.ContestBackoff || c.streak != 1 {
		t.Fatalf("after a quiet window: %s, streak %d", d, c.streak)
	}
	// Jitter is added on top.
	_, d = contestState{}.contest(t0, cfg, func(d time.Duration) time.Duration { return d / 4 })
	if d != 125*ms {
		t.Fatalf("with jitter %s, want 125ms", d)
	}

	// Waiting it out: the rest of the backoff, unless it outlasts the caller.
	c = contestState{until: t0.Add(time.Second)}
	for _, tc := range []struct {
		now  time.Time
		left time.Duration
		wait time.Duration
		ok   bool
	}{
		{t0, -1, time.Second, true},
		{t0, 2 * time.Second, time.Second, true},
		{t0, time.Second, time.Second, true},
		{t0, 999 * ms, time.Second, false},
		{t0.Add(400 * ms), 700 * ms, 600 * ms, true},
		{t0.Add(time.Second), 0, 0, true},
		{t0.Add(2 * time.Second), 0, 0, true},
	} {
		wait, ok := c.wait(tc.now, tc.left)
		if wait != tc.wait || ok != tc.ok {
			t.Errorf("at %s with %s left: wait %s ok %v, want %s %v", tc.now.Sub(t0), tc.left, wait, ok, tc.wait, tc.ok)
		}
	}
}
