package cloud

import (
	"errors"
	"net/netip"
	"slices"
	"time"
)

// The EC2 side of a move is planned by a pure state machine, convergence,
// and carried out by EC2Mover.converge, which only makes the calls the plan
// asks for and tells it what came back and when. Keeping the decisions
// (what to send, when to send it again, when to stop) free of I/O and of
// the clock lets tests step through them with made-up times instead of
// sleeping. docs/design/ec2-convergence.md has the overview.

// family indexes what the plan tracks per address family: IPv4 and IPv6
// VIPs move with different calls and fail differently.
type family int

const (
	fam4 family = iota
	fam6
)

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return fam4
	}
	return fam6
}

func (f family) String() string {
	if f == fam4 {
		return "IPv4"
	}
	return "IPv6"
}

// round is what the driver sends next: optionally a take of the VIPs
// first (after any contest backoff), then the associations together with
// one verification read.
type round struct {
	// take[f] moves the VIPs of family f to our ENI. IPv4: one
	// AssignPrivateIpAddresses with AllowReassignment. IPv6, which EC2
	// cannot reassign: find the ENIs holding them, unassign them there,
	// then AssignIpv6Addresses (take6 decides the calls).
	take      [2]bool
	associate []EIP // AssociateAddress for each, in parallel with the read
}

// taking reports whether the round takes any VIP.
func (r round) taking() bool { return r.take[fam4] || r.take[fam6] }

// verdict is the plan's answer to one round's results.
type verdict struct {
	// done ends the move with err (nil: verified).
	done bool
	err  error
	// next is the following round, sent after wait (0: at once).
	next round
	wait time.Duration

	// What the driver records or logs on the way.
	verified  bool         // the VIPs are on our ENI: mark the hold verified
	contested []netip.Addr // another ENI took these from a verified hold
	redrive   time.Duration
	// redrive > 0: a take went unseen this long and is resent.
	ignored error // a fatal call error, moot because all is in place
}

// eipProgress is what the plan remembers of one Elastic IP.
type eipProgress struct {
	last time.Time     // last association sent and answered (zero: none)
	wait time.Duration // pause after a failed one; 0 after a success
}

// takeProgress is what the plan remembers of the takes of one family.
type takeProgress struct {
	last    time.Time     // last take answered (zero: none)
	redrive time.Duration // how long an accepted take may stay unseen
	// pause > 0: EC2 refused the last take as it stood (an IPv6 address
	// still assigned elsewhere); retry after pause, doubling.
	pause time.Duration
}

// convergence is the state of one move's drive towards "every VIP on our
// ENI, every EIP on its VIP". It is a value: each step returns the next.
type convergence struct {
	cfg      EC2Config
	has      [2]bool // the VIPs include this family
	verified bool    // the hold's VIPs were seen on our ENI
	takes    [2]takeProgress
	eips     []eipProgress // by index in cfg.EIPs
	missing  int           // reads in a row missing a VIP
	acted    bool          // some change was sent and accepted
}

// newConvergence starts a move. optimistic acts before looking (a
// promotion: the VIPs are almost surely elsewhere); verified is whether
// this hold has already seen the VIPs on our ENI.
func newConvergence(cfg EC2Config, optimistic, verified bool) (convergence, round) {
	c := convergence{cfg: cfg, verified: verified, eips: make([]eipProgress, len(cfg.EIPs))}
	var r round
	for _, v := range cfg.VIPs {
		c.has[familyOf(v)] = true
	}
	for f := range c.takes {
		c.takes[f].redrive = cfg.RedriveAfter
		r.take[f] = optimistic && c.has[f]
	}
	if optimistic {
		r.associate = slices.Clone(cfg.EIPs)
	}
	return c, r
}

// took records the answer to a take of family f at now: accepted, or
// refused by EC2 as things stood (KindInvalid: an IPv6 address another
// ENI still holds), which is retried after a short pause, doubling up to
// RedriveAfter.
func (c convergence) took(now time.Time, f family, refused bool) convergence {
	t := &c.takes[f]
	t.last = now
	if refused {
		t.pause = min(max(2*t.pause, c.cfg.PollInterval), c.cfg.RedriveAfter)
		return c
	}
	c.acted, t.pause = true, 0
	return c
}

// observed takes one round's results at now: the associations sent
// (sent[i] answered with assocErrs[i]) and the verification read (obs, or
// obsErr), and decides what follows.
func (c convergence) observed(now time.Time, sent []EIP, assocErrs []error, obs observation, obsErr error) (convergence, verdict) {
	var v verdict
	c.eips = slices.Clone(c.eips)
	var fatal error
	for i, e := range sent {
		k := slices.IndexFunc(c.cfg.EIPs, func(x EIP) bool { return x.AllocationID == e.AllocationID })
		if k < 0 {
			continue
		}
		p := &c.eips[k]
		switch err := assocErrs[i]; {
		case err == nil:
			c.acted = true
			p.last, p.wait = now, 0
		case isFatal(err):
			fatal = errors.Join(fatal, err)
		default:
			// Often the private IP is not on our ENI yet as far as EC2's
			// association path can tell: try again shortly, backing off.
			p.last = now
			p.wait = min(max(2*p.wait, c.cfg.PollInterval), c.cfg.RedriveAfter)
		}
	}
	associated := len(sent) > 0
	if obsErr != nil {
		v.done, v.err = true, errors.Join(obsErr, fatal)
		return c, v
	}
	if obs.complete(c.cfg) {
		c.verified, v.verified = true, true
		v.done, v.ignored = true, fatal
		return c, v
	}
	if fatal != nil {
		v.done, v.err = true, fatal
		return c, v
	}

	if missing := obs.missingVIPs(c.cfg); len(missing) > 0 {
		c.missing++
		switch {
		case c.verified && c.missing >= 2:
			// Seen on our ENI during this hold, now gone twice in a row:
			// another ENI took it (split brain, or a person). Once is not
			// enough: a read may lag a change we made ourselves.
			v.contested = missing
			c.verified, c.missing = false, 0
			for _, a := range missing {
				v.next.take[familyOf(a)] = true
			}
		case !c.verified:
			var want [2]bool
			for _, a := range missing {
				want[familyOf(a)] = true
			}
			for f := range want {
				if !want[f] {
					continue
				}
				switch t := &c.takes[f]; {
				case t.last.IsZero():
					v.next.take[f] = true
				case t.pause > 0:
					v.next.take[f] = now.Sub(t.last) >= t.pause
				case now.Sub(t.last) >= t.redrive:
					// Accepted but still unseen: send it again, and
					// wait twice as long before the next resend.
					v.redrive = max(v.redrive, now.Sub(t.last))
					t.redrive = min(2*t.redrive, c.cfg.MoveTimeout)
					v.next.take[f] = true
				}
			}
		}
	} else {
		c.missing = 0
		if obs.eniSeen {
			c.verified, v.verified = true, true
		}
	}
	for i, e := range c.cfg.EIPs {
		if obs.eipOK(e) {
			continue
		}
		// Associate only once the private IP is ours (or on its way).
		if !obs.onENI[e.PrivateIP] && c.takes[fam4].last.IsZero() {
			continue
		}
		p := c.eips[i]
		wait := c.cfg.RedriveAfter
		if p.wait > 0 {
			wait = p.wait
		}
		if p.last.IsZero() || now.Sub(p.last) >= wait {
			v.next.associate = append(v.next.associate, e)
		}
	}
	idle := !v.next.taking() && len(v.next.associate) == 0
	// A read taken alongside associations may predate them: look again
	// at once. Otherwise give EC2 time.
	if idle && !associated {
		v.wait = c.cfg.PollInterval
	}
	return c, v
}

// contestState tracks VIPs taken away by another ENI while we are master.
type contestState struct {
	streak int
	last   time.Time
	until  time.Time
}

// contest records a contest at now and returns the state with the
// backoff before taking the VIPs back: ContestBackoff, doubled for each
// earlier contest within ContestWindow, capped at ContestBackoffMax, plus
// jitter(d), which must return a value in [0, d/4].
func (c contestState) contest(now time.Time, cfg EC2Config, jitter func(time.Duration) time.Duration) (contestState, time.Duration) {
	if now.Sub(c.last) > cfg.ContestWindow {
		c.streak = 0
	}
	c.streak++
	c.last = now
	d := cfg.ContestBackoff
	for i := 1; i < c.streak && d < cfg.ContestBackoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.ContestBackoffMax)
	d += jitter(d)
	c.until = now.Add(d)
	return c, d
}

// wait is how long to wait before taking the VIPs back at now, and
// false if that outlasts left, the time the caller allows (left < 0: no
// limit).
func (c contestState) wait(now time.Time, left time.Duration) (time.Duration, bool) {
	d := c.until.Sub(now)
	if d <= 0 {
		return 0, true
	}
	return d, left < 0 || d <= left
}

// take6 decides an IPv6 take from where EC2 shows the VIPs (holders: VIP
// to the ENI holding it; absent or "": nobody). EC2 cannot reassign an
// IPv6 address, so each VIP on another ENI is unassigned there first
// (free, by ENI); every VIP not already on ours is then assigned to it.
func take6(eni string, vips []netip.Addr, holders map[netip.Addr]string) (free map[string][]netip.Addr, assign []netip.Addr) {
	for _, v := range vips {
		switch h := holders[v]; h {
		case eni:
			continue
		case "":
		default:
			if free == nil {
				free = map[string][]netip.Addr{}
			}
			free[h] = append(free[h], v)
		}
		assign = append(assign, v)
	}
	return free, assign
}
