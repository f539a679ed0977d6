package labplan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Results is what the guest writes back (results.json in the run directory),
// plus the daemon logs the host attaches.
type Results struct {
	Plan string `json:"plan"`
	// Started is when the guest program began; Ready when the topology and
	// the HTTP servers were up; Finished when the plan ended.
	Started  time.Time    `json:"started"`
	Ready    time.Time    `json:"ready"`
	Finished time.Time    `json:"finished"`
	Steps    []StepResult `json:"steps"`
	Probes   []ProbeRun   `json:"probes"`
	// Conns are the long-lived connection sets, one per conns_close.
	Conns []ConnSet `json:"conns,omitempty"`
	// VIP records every change of which load balancer's eth0 holds a VIP,
	// starting with one event per node and address at watch start.
	VIP []HolderEvent `json:"vip"`
	// Neigh records every change of the client's neighbour entries for
	// the VIPs (the first ones are the state at watch start, if any).
	Neigh []NeighEvent `json:"neigh,omitempty"`
	// Adverts are the VRRP adverts the client heard (Params.WatchAdverts).
	Adverts []AdvertEvent `json:"adverts,omitempty"`
	// AdvertsDropped counts the adverts heard past the record's bound.
	AdvertsDropped int `json:"adverts_dropped,omitempty"`
	// Error is a failure outside any step (setup, timeout).
	Error string `json:"error,omitempty"`

	// Logs maps a log name (lb1, lb2, guest, console) to its text. The
	// host fills it from the run directory.
	Logs map[string]string `json:"-"`
	// Dir is the host's run directory.
	Dir string `json:"-"`
}

// StepResult is one executed (or skipped) step.
type StepResult struct {
	Index int       `json:"index"`
	Step  Step      `json:"step"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	OK    bool      `json:"ok"`
	// Skipped steps were never run because an earlier step failed.
	Skipped bool   `json:"skipped,omitempty"`
	Err     string `json:"err,omitempty"`
	// Exec is the captured output of exec steps; wait_exit steps record
	// the daemon's exit code here too.
	Exec *ExecOutput `json:"exec,omitempty"`
	// Probe is the index in Results.Probes of the run a probe_stop ended,
	// or -1.
	Probe int `json:"probe"`
	// Conns is the index in Results.Conns of the set a conns_close
	// closed, or -1.
	Conns int `json:"conns"`
}

// Took is the step's duration.
func (s StepResult) Took() time.Duration { return s.End.Sub(s.Start) }

// ExecOutput is a command's captured output.
type ExecOutput struct {
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`
	ExitCode int    `json:"exit_code"`
}

// Sample is one HTTP request of the prober.
type Sample struct {
	// At is the send time.
	At   time.Time `json:"at"`
	Took Duration  `json:"took"`
	OK   bool      `json:"ok"`
	// From is the responder's name (the response body).
	From string `json:"from,omitempty"`
	Err  string `json:"err,omitempty"`
}

// The client's prober sends a request on a new connection every
// ProbeInterval and gives each up after ProbeTimeout, which is therefore the
// resolution of an outage measurement.
const (
	ProbeInterval = 10 * time.Millisecond
	ProbeTimeout  = 100 * time.Millisecond
)

// ProbeRun is the prober's record between a probe_start and a probe_stop.
type ProbeRun struct {
	Start   time.Time `json:"start"`
	Stop    time.Time `json:"stop"`
	Samples []Sample  `json:"samples"`
	// Fine is the fine probe's run over the same time (ProbeStartFine):
	// one sample per UDP request, Took its round trip.
	Fine *ProbeRun `json:"fine,omitempty"`
}

// Between returns the part of the run whose requests were sent within
// [from, to); a zero to means until the end.
func (r ProbeRun) Between(from, to time.Time) ProbeRun {
	out := ProbeRun{Start: from, Stop: to}
	if to.IsZero() || to.After(r.Stop) {
		out.Stop = r.Stop
	}
	if from.Before(r.Start) {
		out.Start = r.Start
	}
	for _, s := range r.Samples {
		if !s.At.Before(from) && (to.IsZero() || s.At.Before(to)) {
			out.Samples = append(out.Samples, s)
		}
	}
	return out
}

// ProbeStats summarises a ProbeRun.
type ProbeStats struct {
	Total, Failed int
	// LongestOutage runs from the first failed request's send time to the
	// next successful request's send time; an outage still open at the end
	// runs to the end of the last request (or the run's stop time, if
	// sooner) and leaves Recovered false.
	LongestOutage time.Duration
	OutageFrom    time.Time
	Recovered     bool
	Responders    map[string]int
}

// Stats computes the run's statistics.
func (r ProbeRun) Stats() ProbeStats {
	st := ProbeStats{Responders: map[string]int{}, Recovered: true}
	var open bool
	var from time.Time
	longest := func(from, to time.Time, recovered bool) {
		if d := to.Sub(from); d > st.LongestOutage {
			st.LongestOutage, st.OutageFrom, st.Recovered = d, from, recovered
		}
	}
	for _, s := range r.Samples {
		st.Total++
		if !s.OK {
			st.Failed++
			if !open {
				open, from = true, s.At
			}
			continue
		}
		st.Responders[s.From]++
		if open {
			open = false
			longest(from, s.At, true)
		}
	}
	if open {
		// The outage runs to the end of the last request, or to the
		// window's end if that comes first. Not beyond: after its last
		// request the probe saw nothing, and a guest that stalled the
		// probe past it (a busy host) is no outage of the VIP.
		last := r.Samples[len(r.Samples)-1]
		end := last.At.Add(last.Took.D())
		if !r.Stop.IsZero() && r.Stop.Before(end) {
			end = r.Stop
		}
		longest(from, end, false)
	}
	return st
}

// Responder returns the only responder, or "" when there were several or
// none.
func (st ProbeStats) Responder() string {
	if len(st.Responders) != 1 {
		return ""
	}
	for k := range st.Responders {
		return k
	}
	return ""
}

func (st ProbeStats) String() string {
	var rs []string
	for _, k := range slices.Sorted(maps.Keys(st.Responders)) {
		rs = append(rs, fmt.Sprintf("%s=%d", k, st.Responders[k]))
	}
	s := fmt.Sprintf("%d requests, %d failed, longest outage %v, responders %s",
		st.Total, st.Failed, st.LongestOutage.Round(time.Millisecond), strings.Join(rs, " "))
	if !st.Recovered {
		s += " (NOT recovered)"
	}
	return s
}

// HolderEvent records that one of Node's interfaces gained (Held) or lost Addr.
type HolderEvent struct {
	At   time.Time `json:"at"`
	Node string    `json:"node"`
	Addr string    `json:"addr"`
	Held bool      `json:"held"`
}

// HoldersAt returns, sorted, the nodes whose eth0 held addr at t, by
// replaying the events up to and including t.
func HoldersAt(events []HolderEvent, addr string, t time.Time) []string {
	held := map[string]bool{}
	for _, e := range events {
		if e.Addr != addr || e.At.After(t) {
			continue
		}
		held[e.Node] = e.Held
	}
	var out []string
	for n, h := range held {
		if h {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// VIP4Addr is the IPv4 VIP as recorded in HolderEvent.Addr.
var VIP4Addr = VIP4.Addr().String()

// Holders returns the nodes holding the IPv4 VIP at t.
func (r *Results) Holders(t time.Time) []string { return HoldersAt(r.VIP, VIP4Addr, t) }

// FinalHolders returns the nodes holding the IPv4 VIP when the plan ended.
func (r *Results) FinalHolders() []string { return r.Holders(r.Finished) }

// VIPChanges returns the IPv4 VIP events within [from, to].
func (r *Results) VIPChanges(from, to time.Time) []HolderEvent {
	var out []HolderEvent
	for _, e := range r.VIP {
		if e.Addr == VIP4Addr && !e.At.Before(from) && !e.At.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// ConnsOf returns the connection set that the step labelled label (a
// conns_close) closed.
func (r *Results) ConnsOf(label string) (ConnSet, bool) {
	s, ok := r.Step(label)
	if !ok || s.Conns < 0 || s.Conns >= len(r.Conns) {
		return ConnSet{}, false
	}
	return r.Conns[s.Conns], true
}

// Step returns the result of the step labelled label.
func (r *Results) Step(label string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Step.Label == label {
			return s, true
		}
	}
	return StepResult{}, false
}

// StepsLabelled returns every step labelled label, in order (a plan that
// repeats a cycle labels each cycle's steps alike).
func (r *Results) StepsLabelled(label string) []StepResult {
	var out []StepResult
	for _, s := range r.Steps {
		if s.Step.Label == label {
			out = append(out, s)
		}
	}
	return out
}

// Failed returns the steps that ran and failed.
func (r *Results) Failed() []StepResult {
	var out []StepResult
	for _, s := range r.Steps {
		if !s.OK && !s.Skipped {
			out = append(out, s)
		}
	}
	return out
}

// ProbeOf returns the probe run that the step labelled label (a probe_stop)
// ended.
func (r *Results) ProbeOf(label string) (ProbeRun, bool) {
	s, ok := r.Step(label)
	if !ok || s.Probe < 0 || s.Probe >= len(r.Probes) {
		return ProbeRun{}, false
	}
	return r.Probes[s.Probe], true
}

// Timeline renders the IPv4 VIP events relative to base, one per line.
func (r *Results) Timeline(base time.Time) string {
	var b strings.Builder
	for _, e := range r.VIP {
		if e.Addr != VIP4Addr {
			continue
		}
		verb := "lost"
		if e.Held {
			verb = "holds"
		}
		fmt.Fprintf(&b, "%+8.3fs %s %s %s\n", e.At.Sub(base).Seconds(), e.Node, verb, e.Addr)
	}
	return b.String()
}

// Conn is the record of one long-lived client connection through the VIP.
type Conn struct {
	// Local is the client's address:port, as ipvsadm -Lnc shows it.
	Local string `json:"local"`
	// Server is the real server that greeted the connection.
	Server string    `json:"server"`
	Opened time.Time `json:"opened"`
	// Echoed counts messages sent and echoed back intact.
	Echoed int `json:"echoed"`
	// SlowestEcho is the longest round trip of one message: a failover
	// shows as a stall here before (or instead of) a death.
	SlowestEcho Duration `json:"slowest_echo"`
	// Died is when the connection failed (reset, timeout, wrong echo);
	// zero when it was alive until closed.
	Died time.Time `json:"died,omitzero"`
	Err  string    `json:"err,omitempty"`
}

// Alive reports whether the connection lived until it was closed.
func (c Conn) Alive() bool { return c.Died.IsZero() }

// ConnSet is a conns_open's connections, recorded at conns_close.
type ConnSet struct {
	Opened   time.Time `json:"opened"`
	Closed   time.Time `json:"closed"`
	Interval Duration  `json:"interval"`
	Conns    []Conn    `json:"conns"`
}

// ConnStats summarises a ConnSet.
type ConnStats struct {
	Total, Died int
	// Servers counts connections per real server.
	Servers     map[string]int
	Echoed      int
	SlowestEcho time.Duration
	// Errors counts the distinct reasons of deaths.
	Errors map[string]int
}

// Stats summarises the set.
func (cs ConnSet) Stats() ConnStats { return cs.StatsBetween(time.Time{}, time.Time{}) }

// StatsBetween is Stats counting only deaths within [from, to); a zero
// time leaves that side open.
func (cs ConnSet) StatsBetween(from, to time.Time) ConnStats {
	st := ConnStats{Servers: map[string]int{}, Errors: map[string]int{}}
	for _, c := range cs.Conns {
		st.Total++
		st.Servers[c.Server]++
		st.Echoed += c.Echoed
		st.SlowestEcho = max(st.SlowestEcho, c.SlowestEcho.D())
		if c.Alive() || c.Died.Before(from) || (!to.IsZero() && !c.Died.Before(to)) {
			continue
		}
		st.Died++
		st.Errors[c.Err]++
	}
	return st
}

func (st ConnStats) String() string {
	var rs, es []string
	for _, k := range slices.Sorted(maps.Keys(st.Servers)) {
		rs = append(rs, fmt.Sprintf("%s=%d", k, st.Servers[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(st.Errors)) {
		es = append(es, fmt.Sprintf("%q x%d", k, st.Errors[k]))
	}
	s := fmt.Sprintf("%d connections (%s), %d died, %d echoes, slowest echo %v",
		st.Total, strings.Join(rs, " "), st.Died, st.Echoed, st.SlowestEcho.Round(time.Millisecond))
	if len(es) > 0 {
		s += ": " + strings.Join(es, ", ")
	}
	return s
}

// Holding is how a VIP was held over a window of its timeline.
type Holding struct {
	// None is how long no node held it; Many how long two or more did
	// (a split brain: each answers ARP for it), and LongestMany the
	// longest such stretch.
	None, Many, LongestMany time.Duration
}

// HoldingOf measures Holding for addr within [from, to), from events in
// any order (earlier ones set the state at from).
func HoldingOf(events []HolderEvent, addr string, from, to time.Time) Holding {
	evs := timelineBefore(events, to, addr)
	held := map[string]bool{}
	var h Holding
	var many time.Duration // the current stretch of two or more
	account := func(start, end time.Time) {
		if start.Before(from) {
			start = from
		}
		if !end.After(start) {
			return
		}
		n := 0
		for _, v := range held {
			if v {
				n++
			}
		}
		d := end.Sub(start)
		switch {
		case n == 0:
			h.None += d
			many = 0
		case n > 1:
			h.Many += d
			many += d
			h.LongestMany = max(h.LongestMany, many)
		default:
			many = 0
		}
	}
	prev := from
	for _, e := range evs {
		account(prev, e.At)
		held[e.Node] = e.Held
		if e.At.After(prev) {
			prev = e.At
		}
	}
	account(prev, to)
	return h
}

// timelineBefore returns the events for addrs before to, in time order
// (events of one instant keep their recorded order).
func timelineBefore(events []HolderEvent, to time.Time, addrs ...string) []HolderEvent {
	evs := make([]HolderEvent, 0, len(events))
	for _, e := range events {
		if slices.Contains(addrs, e.Addr) && e.At.Before(to) {
			evs = append(evs, e)
		}
	}
	slices.SortStableFunc(evs, func(x, y HolderEvent) int { return x.At.Compare(y.At) })
	return evs
}

// AdvertEvent is one VRRP advert heard on the main segment: when the
// kernel received it, from which node (or address), its VRID and priority.
type AdvertEvent struct {
	At       time.Time `json:"at"`
	From     string    `json:"from"`
	VRID     int       `json:"vrid"`
	Priority int       `json:"priority"`
}

// LastAdvert is when the last advert from node with a non-zero priority
// (not a step-down) was heard before t.
func LastAdvert(ads []AdvertEvent, node string, t time.Time) (time.Time, bool) {
	var last time.Time
	for _, a := range ads {
		if a.From == node && a.Priority > 0 && a.At.Before(t) && a.At.After(last) {
			last = a.At
		}
	}
	return last, !last.IsZero()
}
