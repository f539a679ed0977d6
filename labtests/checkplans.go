package labtests

import (
	"regexp"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the health-check plans' steps.
const (
	LabelOut      = "out"      // wait_exec until the failed real server lost its weight
	LabelIn       = "in"       // wait_exec until it has it back
	LabelFlapping = "flapping" // wait_exec (expected to time out) for the flapping server's weight 0
	LabelSorryIn  = "sorry-in" // wait_exec until the sorry server is in the table
	LabelSorryOut = "sorry-out"
	LabelSysctl   = "sysctl" // exec: lb1's net.ipv4.vs.conn_reuse_mode as director set it
	LabelDNS      = "dns"    // dns_query
	LabelState    = "state"
)

// CheckFailure is how a check plan makes rs2 fail.
type CheckFailure string

// The ways rs2 fails; each has a recovery.
const (
	CheckKill CheckFailure = "kill" // HTTP server stopped: connections refused
	CheckCut  CheckFailure = "cut"  // rs2's bridge port down: checks time out
	CheckSlow CheckFailure = "slow" // HTTP answers slower than the check timeout
)

// FastChecks check every 300 ms with a 250 ms timeout, rise and fall 1:
// a failure is seen within about one interval.
func FastChecks() *lp.Checks {
	return &lp.Checks{Interval: lp.Duration(300 * time.Millisecond), Timeout: lp.Duration(250 * time.Millisecond), Rise: 1, Fall: 1}
}

// KeepalivedLikeChecks are keepalived's delay_loop 1, connect_timeout 1,
// retry 1, delay_before_retry 1, as director settings (rise and fall 1).
func KeepalivedLikeChecks() *lp.Checks {
	return &lp.Checks{Interval: lp.Duration(time.Second), Timeout: lp.Duration(time.Second), Retries: 1, RetryDelay: lp.Duration(time.Second), Rise: 1, Fall: 1}
}

// CheckParams are IPVSParams with health checks c.
func CheckParams(impl lp.Impl, c *lp.Checks) Params {
	p := IPVSParams(impl)
	p.IPVS.Checks = c
	return p
}

// lb1Table polls lb1's kernel table until re matches (or stops matching).
func lb1Table(d time.Duration, re string, absent bool) Step {
	if absent {
		return lp.WaitExecAbsent(lp.LB1, d, re, "ipvsadm", "-Ln")
	}
	return lp.WaitExec(lp.LB1, d, re, "ipvsadm", "-Ln")
}

// state shows lb1's director state (health and reason of each real
// server); keepalived has no equivalent, so it is shown for director only.
func state(p Params) []Step {
	if p.Impl[lp.LB1] != lp.Director {
		return nil
	}
	return []Step{lp.Exec(lp.LB1, "director", "state", "-json", "-socket", "/run/lb1/director.sock").As(LabelState).Tolerant()}
}

// CheckFailPlan makes rs2 fail under client traffic, waits until lb1 takes
// it out of the HTTP service (weight 0 with director's drain, deleted by
// keepalived), keeps the traffic on for a second, repairs rs2 and waits
// until it is back at weight 1.
func CheckFailPlan(name string, p Params, how CheckFailure) Plan {
	var fail, repair Step
	switch how {
	case CheckKill:
		fail, repair = lp.Serve(lp.RS2, lp.ServeDown, 0), lp.Serve(lp.RS2, lp.ServeUp, 0)
	case CheckCut:
		fail, repair = lp.Cut(lp.RS2), lp.Heal(lp.RS2)
	case CheckSlow:
		fail, repair = lp.Serve(lp.RS2, lp.ServeSlow, 2*p.IPVS.Checks.Timeout.D()), lp.Serve(lp.RS2, lp.ServeUp, 0)
	}
	up := destRE(lp.RS2, lp.HTTPPort, 1, -1)
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ProbeStart(),
		lp.Sleep(time.Second),
		fail.As(LabelFail),
		lb1Table(10*time.Second, up, true).As(LabelOut),
	)
	steps = append(steps, state(p)...)
	steps = append(steps,
		lp.Sleep(time.Second),
		repair.As(LabelRecover),
		lb1Table(10*time.Second, up, false).As(LabelIn),
		// A settling second, then the second the test judges.
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelProbe),
	)
	if how == CheckCut {
		// For the record only (kept with a failed run): lone timeouts
		// after rs2's return were seen twice in full lab runs.
		steps = append(steps,
			lp.Exec(lp.LB1, "ipvsadm", "-Lnc"),
			lp.Exec(lp.RS2, "ip", "neigh"),
			lp.Exec(lp.RS2, "ss", "-tan"),
			lp.Exec(lp.RS2, "nstat", "-a"),
		)
	}
	return Plan{Name: name, Params: p, Steps: steps}
}

// FlapChecks check every 200 ms with rise 3 and fall 4: three results in
// a row take at least 400 ms, longer than one flap half period (FlapHalf).
// Fall is 4 because a 300 ms down phase holds two checks, and three at
// its edges (one caught by the server going down mid-answer), never four.
func FlapChecks() *lp.Checks {
	return &lp.Checks{Interval: lp.Duration(200 * time.Millisecond), Timeout: lp.Duration(150 * time.Millisecond), Rise: 3, Fall: 4}
}

// FlapHalf is how long the flapping rs2 stays down, then up.
const FlapHalf = 300 * time.Millisecond

// FlapPlan flaps rs2's HTTP server (down and up every FlapHalf) for 4 s
// while lb1 is polled for rs2 at weight 0, which must not happen (the
// wait is expected to time out); then rs2 stays down, must go out, comes
// back up and must return.
func FlapPlan(name string, p Params) Plan {
	up := destRE(lp.RS2, lp.HTTPPort, 1, -1)
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ProbeStart(),
		lp.Serve(lp.RS2, lp.ServeFlap, FlapHalf),
		lb1Table(4*time.Second, destRE(lp.RS2, lp.HTTPPort, 0, -1), false).As(LabelFlapping).Tolerant(),
		// Up long enough for a passed check to clear the failures the
		// last flaps left, so that the fall count starts at the failure.
		lp.Serve(lp.RS2, lp.ServeUp, 0),
		lp.Sleep(3*FlapChecks().Interval.D()),
		lp.Serve(lp.RS2, lp.ServeDown, 0).As(LabelFail),
		lb1Table(5*time.Second, up, true).As(LabelOut),
		lp.Sleep(time.Second),
		lp.Serve(lp.RS2, lp.ServeUp, 0).As(LabelRecover),
		lb1Table(5*time.Second, up, false).As(LabelIn),
		lp.Sleep(500*time.Millisecond),
		lp.ProbeStop().As(LabelProbe),
		lp.Exec(lp.LB1, "cat", "/proc/sys/net/ipv4/vs/conn_reuse_mode").As(LabelSysctl),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// SorryPlan stops both real servers' HTTP servers: the live weight falls
// below quorum and lb1 puts the sorry server in; once both come back it
// takes the sorry server out again.
func SorryPlan(name string, p Params) Plan {
	v := *p.IPVS
	v.SorryServer = true
	p.IPVS = &v
	sorry := regexp.QuoteMeta(lp.RSAddr(lp.Sorry, lp.HTTPPort))
	steps := ipvsStart(p)
	steps = append(steps,
		lp.ProbeStart(),
		lp.Sleep(time.Second),
		lp.Serve(lp.RS1, lp.ServeDown, 0).As(LabelFail),
		lp.Serve(lp.RS2, lp.ServeDown, 0),
		lb1Table(10*time.Second, sorry, false).As(LabelSorryIn),
	)
	steps = append(steps, state(p)...)
	steps = append(steps,
		lp.Sleep(time.Second),
		lp.Serve(lp.RS1, lp.ServeUp, 0).As(LabelRecover),
		lp.Serve(lp.RS2, lp.ServeUp, 0),
		lb1Table(10*time.Second, sorry, true).As(LabelSorryOut),
		lb1Table(5*time.Second, destRE(lp.RS1, lp.HTTPPort, 1, -1), false),
		lb1Table(5*time.Second, destRE(lp.RS2, lp.HTTPPort, 1, -1), false).As(LabelIn),
		lp.Sleep(time.Second),
		lp.ProbeStop().As(LabelProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// DNSPlan adds the UDP DNS service with DNS checks, waits until both real
// servers are in it and sends the client's queries to VIP:53.
func DNSPlan(name string, p Params) Plan {
	v := *p.IPVS
	v.DNS = true
	p.IPVS = &v
	steps := ipvsStart(p)
	steps = append(steps,
		lb1Table(10*time.Second, `(?m)^UDP\s+`+regexp.QuoteMeta(lp.VIPService(lp.DNSPort)), false),
		lb1Table(10*time.Second, destRE(lp.RS1, lp.DNSPort, 1, -1), false),
		lb1Table(10*time.Second, destRE(lp.RS2, lp.DNSPort, 1, -1), false),
	)
	steps = append(steps, state(p)...)
	steps = append(steps, lp.DNSQuery(40, 20*time.Millisecond).As(LabelDNS))
	return Plan{Name: name, Params: p, Steps: steps}
}
