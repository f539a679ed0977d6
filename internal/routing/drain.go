package routing

import (
	"fmt"
	"time"
)

// Traffic is what the kernel counts over the node's VIP services.
type Traffic struct {
	// ActiveConns is IPVS's active connections (ESTABLISHED) to the
	// services' real servers. With connection sync it includes the
	// connections this node learnt from the other directors.
	ActiveConns uint64
	// InPackets is the services' incoming packet counter: it stands still
	// once the router sends this node nothing more.
	InPackets uint64
}

// DrainQuiet is how long the VIP services' packet counter must stand still
// for the node to count as drained while connections are still listed: with
// connection sync every director lists every connection, and a listed
// connection whose packets now reach another director times out only
// after IPVS's TCP timeout (15 minutes), so the counter, not the list,
// says that none is forwarded here any more.
const DrainQuiet = 3 * time.Second

// DrainProgress is a drain as state shows it.
type DrainProgress struct {
	// State is draining, drained or timed_out.
	State   string    `json:"state"`
	Mode    string    `json:"mode"` // withdrawn or depreferred
	Started time.Time `json:"started"`
	// Elapsed is how long it has run, or ran.
	Elapsed     time.Duration `json:"elapsed"`
	ActiveConns uint64        `json:"active_connections"`
	// QuietFor is how long no packet has arrived on the VIP services.
	QuietFor time.Duration `json:"quiet_for"`
	Result   string        `json:"result,omitempty"`
}

// Drainer decides when a drain is over from successive Traffic samples.
// It is pure: time comes in with each sample.
type Drainer struct {
	timeout, quiet time.Duration
	p              DrainProgress
	lastPkts       uint64
	lastMove       time.Time
	seen           bool
}

// NewDrainer starts a drain at now, bounded by timeout.
func NewDrainer(mode Drain, now time.Time, timeout, quiet time.Duration) *Drainer {
	return &Drainer{timeout: timeout, quiet: quiet, p: DrainProgress{State: "draining", Mode: mode.String(), Started: now}}
}

// Observe takes a sample made at now and reports whether the drain is over.
func (d *Drainer) Observe(now time.Time, t Traffic) (DrainProgress, bool) {
	if d.p.State != "draining" {
		return d.p, true
	}
	if !d.seen || t.InPackets != d.lastPkts {
		d.seen, d.lastPkts, d.lastMove = true, t.InPackets, now
	}
	d.p.Elapsed = now.Sub(d.p.Started)
	d.p.ActiveConns = t.ActiveConns
	d.p.QuietFor = now.Sub(d.lastMove)
	switch {
	case t.ActiveConns == 0:
		d.p.State = "drained"
		d.p.Result = fmt.Sprintf("drained in %s: no active connections", d.p.Elapsed.Round(time.Millisecond))
	case d.p.QuietFor >= d.quiet:
		d.p.State = "drained"
		d.p.Result = fmt.Sprintf("drained in %s: no packets for %s (%d connections still listed, kept by connection sync or awaiting their timeout)", d.p.Elapsed.Round(time.Millisecond), d.p.QuietFor.Round(time.Millisecond), t.ActiveConns)
	case d.p.Elapsed >= d.timeout:
		d.p.State = "timed_out"
		d.p.Result = fmt.Sprintf("drain_timeout %s passed with %d active connections still receiving packets", d.timeout, t.ActiveConns)
	default:
		return d.p, false
	}
	return d.p, true
}

// Fail ends the drain with err (the counters could not be read).
func (d *Drainer) Fail(now time.Time, err error) DrainProgress {
	d.p.State, d.p.Elapsed = "timed_out", now.Sub(d.p.Started)
	d.p.Result = fmt.Sprintf("could not read the IPVS counters: %v", err)
	return d.p
}
