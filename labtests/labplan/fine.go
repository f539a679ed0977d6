package labplan

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The fine probe runs beside the HTTP prober (ProbeStartFine). It sends a
// UDP datagram with a sequence number to VIP:FinePort every FineInterval,
// in turn from FineFlows connected sockets (each its own flow, so that a
// router's ECMP spreads them over the directors in routed plans), without
// waiting for answers, and matches each answer to its request by number.
// Whoever holds the VIP answers it itself (every HTTP host listens on
// VIP:FinePort; the port is in no IPVS service), with its name, so a
// request is answered exactly when the client's ARP entry points at a
// node that holds the VIP: what a failover moves. The answer's arrival time is the kernel's receive timestamp, so a
// prober that is scheduled late does not stretch a round trip.
//
// A request is lost when no answer came at all: answers are collected
// until the probe stops and FineTimeout after that. A late answer still
// proves that the VIP was reachable when the request arrived, so it counts
// as answered (its round trip shows the delay: Slowest). The outage is the
// longest run of lost requests, from the first one's send time to the
// next answered one's: since requests do not wait for each other, it is
// resolved to FineInterval (or to the gaps between sends when the guest
// is busy: the send times are recorded), not to a timeout, and a guest
// that stalls delays answers without counting as an outage.
const (
	FinePort     = 5005
	FineInterval = 3 * time.Millisecond
	FineTimeout  = time.Second
	FineFlows    = 16
)

// FineLost is the error of a fine-probe request that got no answer.
const FineLost = "no answer"

// Lost counts the requests that got no answer at all.
func (r ProbeRun) Lost() int {
	n := 0
	for _, s := range r.Samples {
		if !s.OK && s.Err == FineLost {
			n++
		}
	}
	return n
}

// Slowest is the longest round trip of the run's answered requests.
func (r ProbeRun) Slowest() time.Duration {
	var d time.Duration
	for _, s := range r.Samples {
		if s.OK {
			d = max(d, s.Took.D())
		}
	}
	return d
}

// NeighEvent is a change of the client's neighbour (ARP) entry for a VIP,
// from netlink neighbour notifications in the client's namespace.
type NeighEvent struct {
	At   time.Time `json:"at"`
	Addr string    `json:"addr"`
	// MAC is the entry's link-layer address ("" while unresolved) and
	// Node the load balancer whose eth0 has it ("" for none).
	MAC   string `json:"mac,omitempty"`
	Node  string `json:"node,omitempty"`
	State string `json:"state"`
	// Deleted is set when the entry was removed.
	Deleted bool `json:"deleted,omitempty"`
}

// NeighNodeAt returns the node the client's entry for addr pointed at, at t
// (after replaying the events up to and including t); "" for none.
func NeighNodeAt(events []NeighEvent, addr string, t time.Time) string {
	node := ""
	for _, e := range events {
		if e.Addr != addr || e.At.After(t) {
			continue
		}
		node = e.Node
		if e.Deleted {
			node = ""
		}
	}
	return node
}

// ARPFlips returns the times within [from, to] at which the client's entry
// for addr came to point at another node than the one it last pointed at
// (unresolved spells in between do not count, nor does the entry's first
// resolution: it points at no node before); a zero to leaves the end open.
func ARPFlips(events []NeighEvent, addr string, from, to time.Time) []time.Time {
	var out []time.Time
	prev := ""
	for _, e := range events {
		if e.Addr != addr || (!to.IsZero() && e.At.After(to)) || e.Deleted || e.Node == "" {
			continue
		}
		if e.Node != prev && prev != "" && e.At.After(from) {
			out = append(out, e.At)
		}
		prev = e.Node
	}
	return out
}

// Takeover times one failover: from the failure to the VIP on the new
// master's interface, and to the client's ARP entry on its MAC.
type Takeover struct {
	VIP, ARP       time.Duration
	HasVIP, HasARP bool
}

// TakeoverOf times node's takeover of addr after a failure at from, from
// the VIP timeline (HolderEvent, netlink address events) and the client's
// neighbour events. A node that already held it at from counts as 0.
func TakeoverOf(vips []HolderEvent, neigh []NeighEvent, addr, node string, from time.Time) Takeover {
	var tk Takeover
	if slices.Contains(HoldersAt(vips, addr, from), node) {
		tk.HasVIP = true
	} else if at, ok := NextHolderEvent(vips, addr, node, true, from); ok {
		tk.VIP, tk.HasVIP = at.Sub(from), true
	}
	if NeighNodeAt(neigh, addr, from) == node {
		tk.HasARP = true
	} else if at, ok := NextNeighOn(neigh, addr, node, from); ok {
		tk.ARP, tk.HasARP = at.Sub(from), true
	}
	return tk
}

// NextHolderEvent is when node first took (held) or let go (!held) addr
// at or after from.
func NextHolderEvent(vips []HolderEvent, addr, node string, held bool, from time.Time) (time.Time, bool) {
	for _, e := range vips {
		if e.Addr == addr && e.Node == node && e.Held == held && !e.At.Before(from) {
			return e.At, true
		}
	}
	return time.Time{}, false
}

// NextNeighOn is when the client's entry for addr first got node's MAC at
// or after from.
func NextNeighOn(neigh []NeighEvent, addr, node string, from time.Time) (time.Time, bool) {
	for _, e := range neigh {
		if e.Addr == addr && e.Node == node && !e.Deleted && !e.At.Before(from) {
			return e.At, true
		}
	}
	return time.Time{}, false
}

func (tk Takeover) String() string {
	f := func(ok bool, d time.Duration) string {
		if !ok {
			return "never"
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("VIP %s, client ARP %s", f(tk.HasVIP, tk.VIP), f(tk.HasARP, tk.ARP))
}

// StraddleSlack is how long after a request ended its ARP flip may be
// recorded and still count as the flip it straddled: the neighbour
// notification is read by a goroutine of the guest program, which a busy
// guest schedules late (seen: 8 ms; on a loaded host over 20 ms, which
// StraddlesAt's second witness covers).
const StraddleSlack = 20 * time.Millisecond

// Straddles reports whether failed HTTP request s was in flight (sent, not
// yet finished) when the client's ARP entry flipped at one of flips: its
// connection was accepted by the node the entry pointed at before and its
// later packets went to the other one, which knows no such connection.
// Nothing a VRRP daemon does can save such a request where the load
// balancers terminate TCP themselves. A flip recorded up to StraddleSlack
// after the request ended counts.
func Straddles(s Sample, flips []time.Time) bool {
	if s.OK {
		return false
	}
	end := s.At.Add(s.Took.D() + StraddleSlack)
	for _, f := range flips {
		if !f.Before(s.At) && !f.After(end) {
			return true
		}
	}
	return false
}

// StraddlesAt reports whether run's failed request i straddled a flip of
// the client's ARP entry: by the flip's recorded time (Straddles), or, for
// a reset, by the answers around it: the nearest answered requests before
// and after it came from different nodes. A reset means the connection's
// packets reached a node that had not accepted it, and the answers show
// the entry moved from the one to the other: had it moved before the
// request began, the new node would have accepted it. This witness needs
// no timing, which the busy guest blurs.
func (r ProbeRun) StraddlesAt(i int, flips []time.Time) bool {
	s := r.Samples[i]
	if Straddles(s, flips) {
		return true
	}
	if s.OK || !strings.Contains(s.Err, "reset") {
		return false
	}
	before, after := "", ""
	for j := i - 1; j >= 0 && before == ""; j-- {
		if r.Samples[j].OK {
			before = r.Samples[j].From
		}
	}
	for j := i + 1; j < len(r.Samples) && after == ""; j++ {
		if r.Samples[j].OK {
			after = r.Samples[j].From
		}
	}
	return before != "" && after != "" && before != after
}

// Failures lists the failed samples of run, each with its time relative to
// base and its error, for a test's report.
func (r ProbeRun) Failures(base time.Time) string {
	var b []string
	for _, s := range r.Samples {
		if !s.OK {
			b = append(b, fmt.Sprintf("%+.3fs %s (%v)", s.At.Sub(base).Seconds(), s.Err, s.Took.D().Round(100*time.Microsecond)))
		}
	}
	return strings.Join(b, "; ")
}

// Takeover times node's takeover of the IPv4 VIP after a failure at from.
func (r *Results) Takeover(from time.Time, node string) Takeover {
	return TakeoverOf(r.VIP, r.Neigh, VIP4Addr, node, from)
}

// ARPFlips returns when the client's entry for the IPv4 VIP changed node
// within [from, to].
func (r *Results) ARPFlips(from, to time.Time) []time.Time {
	return ARPFlips(r.Neigh, VIP4Addr, from, to)
}

// Judged sorts an HTTP probe run's failed requests by cause, with the fine
// probe of the same run as the witness of the network (JudgeFailures).
type Judged struct {
	// Straddles were in flight when the client's ARP entry flipped
	// (StraddlesAt): lost whatever the daemons do.
	Straddles []Sample
	// Stalls timed out while the fine probe lost none of the requests it
	// sent during them (or sent none: its sender did not run either).
	// The network delivered; the guest ran the prober or the load
	// balancer's HTTP server late.
	Stalls []Sample
	// Network are the rest: refused or reset away from an ARP flip, or
	// timed out while the fine probe lost requests.
	Network []Sample
}

// JudgeFailures sorts http's failed requests (Judged). fine is the fine
// probe's run over the same time, flips the client's ARP flips.
//
// The prober's 100 ms timeout cannot tell a lost request from a slow one:
// in the single-CPU guest on a loaded host the prober and the servers
// (one process) are now and then not scheduled for 100-200 ms while
// every packet is delivered at once (seen in packet captures: handshake
// and request acknowledged within 0.1 ms, the answer or the client's
// next step 100+ ms later). The fine probe, sent every FineInterval and
// waited for a second, tells them apart: a gap in the network loses the
// fine requests sent into it.
func JudgeFailures(http, fine ProbeRun, flips []time.Time) Judged {
	var j Judged
	for i, s := range http.Samples {
		switch {
		case s.OK:
		case http.StraddlesAt(i, flips):
			j.Straddles = append(j.Straddles, s)
		case strings.Contains(s.Err, "timeout") && fine.Between(s.At, s.At.Add(s.Took.D())).Lost() == 0:
			j.Stalls = append(j.Stalls, s)
		default:
			j.Network = append(j.Network, s)
		}
	}
	return j
}

func (j Judged) String() string {
	return fmt.Sprintf("%d at the ARP flip, %d guest stalls, %d on the network", len(j.Straddles), len(j.Stalls), len(j.Network))
}

// StallSeen is the longest stall the fine probe shows over [from, to]:
// the longest gap between two consecutive sends that overlaps it (the
// prober was not run meanwhile), or round trip of an answered request
// sent within it (the guest answered or read late). In a quiet guest
// both stay near FineInterval and a few milliseconds; an HTTP timeout that
// the fine probe shows no stall for was not the guest's.
func (r ProbeRun) StallSeen(from, to time.Time) time.Duration {
	var d time.Duration
	for i, s := range r.Samples {
		if i > 0 {
			if prev := r.Samples[i-1].At; prev.Before(to) && s.At.After(from) {
				d = max(d, s.At.Sub(prev))
			}
		}
		if s.OK && !s.At.Before(from) && !s.At.After(to) {
			d = max(d, s.Took.D())
		}
	}
	return d
}
