package labplan

import (
	"slices"
	"testing"
	"time"
)

func neigh(atMS int, node string) NeighEvent {
	e := NeighEvent{At: ms(atMS), Addr: VIP4Addr, Node: node, MAC: "02:00:00:00:00:" + node, State: "REACHABLE"}
	if node == "" {
		e.MAC, e.State = "", "INCOMPLETE"
	}
	return e
}

func TestTakeoverOf(t *testing.T) {
	v := VIP4Addr
	vips := []HolderEvent{
		{At: ms(0), Node: LB1, Addr: v}, {At: ms(0), Node: LB2, Addr: v},
		{At: ms(10), Node: LB1, Addr: v, Held: true},
		{At: ms(1005), Node: LB1, Addr: v, Held: false}, // cut at 1000: FAULT
		{At: ms(1072), Node: LB2, Addr: "fd00::100", Held: true},
		{At: ms(1073), Node: LB2, Addr: v, Held: true},
	}
	ns := []NeighEvent{
		neigh(20, LB1),
		{At: ms(500), Addr: "10.0.0.99", Node: LB2, State: "REACHABLE"}, // another address
		neigh(1074, LB2),
		neigh(1500, LB2), // a refresh of the same MAC
	}
	tk := TakeoverOf(vips, ns, v, LB2, ms(1000))
	if !tk.HasVIP || tk.VIP != 73*time.Millisecond || !tk.HasARP || tk.ARP != 74*time.Millisecond {
		t.Errorf("takeover = %+v, want VIP after 73ms and ARP after 74ms", tk)
	}
	if got := tk.String(); got != "VIP 73ms, client ARP 74ms" {
		t.Errorf("String() = %q", got)
	}
	// Already there at from: 0, not the next event.
	if tk := TakeoverOf(vips, ns, v, LB1, ms(100)); !tk.HasVIP || tk.VIP != 0 || !tk.HasARP || tk.ARP != 0 {
		t.Errorf("takeover by the holder = %+v, want 0 and 0", tk)
	}
	// Never: lb1 does not come back in this timeline.
	if tk := TakeoverOf(vips, ns, v, LB1, ms(2000)); tk.HasVIP || tk.HasARP || tk.String() != "VIP never, client ARP never" {
		t.Errorf("takeover that never happened = %+v (%s)", tk, tk)
	}
}

func TestNeighNodeAtAndFlips(t *testing.T) {
	ns := []NeighEvent{
		neigh(0, LB1),
		neigh(100, LB1), // same node: no flip
		neigh(200, LB2),
		{At: ms(300), Addr: VIP4Addr, Deleted: true, State: "FAILED"},
		neigh(350, ""), // unresolved: no node, no flip
		neigh(400, LB2),
		neigh(500, LB1),
	}
	for _, c := range []struct {
		at   int
		want string
	}{{50, LB1}, {200, LB2}, {300, ""}, {360, ""}, {450, LB2}, {600, LB1}} {
		if got := NeighNodeAt(ns, VIP4Addr, ms(c.at)); got != c.want {
			t.Errorf("NeighNodeAt(+%dms) = %q, want %q", c.at, got, c.want)
		}
	}
	// Flips are changes between resolved nodes: lb2, unresolved for a
	// while, then lb2 again is none.
	want := []time.Time{ms(200), ms(500)}
	if got := ARPFlips(ns, VIP4Addr, ms(50), time.Time{}); !slices.Equal(got, want) {
		t.Errorf("flips = %v, want %v", got, want)
	}
	if got := ARPFlips(ns, VIP4Addr, ms(50), ms(450)); !slices.Equal(got, want[:1]) {
		t.Errorf("flips until +450ms = %v, want %v", got, want[:1])
	}
	// The entry's first resolution is no flip; from an unresolved spell,
	// the node before it counts.
	if got := ARPFlips(ns, VIP4Addr, ms(-10), ms(300)); !slices.Equal(got, want[:1]) {
		t.Errorf("flips from before the first resolution = %v, want %v", got, want[:1])
	}
	if got := ARPFlips(ns, VIP4Addr, ms(360), time.Time{}); !slices.Equal(got, want[1:]) {
		t.Errorf("flips from the unresolved spell = %v, want %v (lb2 before it, lb2 after)", got, want[1:])
	}
}

func TestStraddles(t *testing.T) {
	flips := []time.Time{ms(1000)}
	failed := Sample{At: ms(998), Took: Duration(3 * time.Millisecond), Err: "read: connection reset by peer"}
	if !Straddles(failed, flips) {
		t.Error("a request in flight at the flip does not straddle it")
	}
	late := Sample{At: ms(990), Took: Duration(3 * time.Millisecond), Err: "read: connection reset by peer"}
	if !Straddles(late, flips) {
		t.Error("a flip recorded 7 ms after the request ended (within the slack) does not count")
	}
	before := Sample{At: ms(900), Took: Duration(3 * time.Millisecond), Err: "read: connection reset by peer"}
	if Straddles(before, flips) {
		t.Error("a request over long before the flip straddles it")
	}
	ok := Sample{At: ms(998), Took: Duration(3 * time.Millisecond), OK: true}
	if Straddles(ok, flips) {
		t.Error("a successful request counts as a straddle")
	}
}

func TestStraddlesAt(t *testing.T) {
	reset := func(at int) Sample {
		return Sample{At: ms(at), Took: Duration(10 * time.Millisecond), Err: "read: connection reset by peer"}
	}
	ok := func(at int, from string) Sample { return Sample{At: ms(at), OK: true, From: from} }
	timeout := Sample{At: ms(40), Took: Duration(ProbeTimeout), Err: "read: i/o timeout"}
	run := ProbeRun{Samples: []Sample{
		ok(0, LB1), reset(10), timeout, ok(150, LB2), // a flip recorded too late to see
		reset(160), ok(170, LB2), // a reset with lb2 on both sides
	}}
	flips := []time.Time{ms(400)}
	for _, c := range []struct {
		i    int
		want bool
	}{{1, true}, {2, false}, {4, false}, {0, false}} {
		if got := run.StraddlesAt(c.i, flips); got != c.want {
			t.Errorf("StraddlesAt(%d) = %t, want %t", c.i, got, c.want)
		}
	}
	// By time alone, as Straddles.
	if !run.StraddlesAt(4, []time.Time{ms(175)}) {
		t.Error("a reset with the flip recorded within its slack does not straddle it")
	}
}

func TestFineRunStats(t *testing.T) {
	// Requests every 3 ms; lb1 answers until +9, nobody +12..+27, lb2
	// from +30: an outage of 18 ms however long the timeout.
	run := ProbeRun{Start: ms(0), Stop: ms(40)}
	for at := 0; at <= 36; at += 3 {
		s := Sample{At: ms(at), OK: true, From: LB1, Took: Duration(time.Millisecond)}
		switch {
		case at >= 12 && at < 30:
			s = Sample{At: ms(at), Took: Duration(FineTimeout), Err: "no answer"}
		case at >= 30:
			s.From = LB2
		}
		run.Samples = append(run.Samples, s)
	}
	st := run.Stats()
	if st.LongestOutage != 18*time.Millisecond || st.Failed != 6 || !st.Recovered {
		t.Errorf("stats = %s, want 6 failed, an 18ms outage, recovered", st)
	}
	if got := run.Failures(ms(0)); got == "" || got[:6] != "+0.012" {
		t.Errorf("Failures() = %q, want the first at +0.012s", got)
	}
}

func TestJudgeFailures(t *testing.T) {
	// The fine probe every 3 ms from +0 to +600; requests sent at
	// +300..+330 got no answer (a gap in the network).
	fine := ProbeRun{Start: ms(0), Stop: ms(600)}
	for at := 0; at < 600; at += 3 {
		s := Sample{At: ms(at), OK: true, From: LB1, Took: Duration(time.Millisecond)}
		if at >= 300 && at <= 330 {
			s = Sample{At: ms(at), Took: Duration(FineTimeout), Err: FineLost}
		}
		fine.Samples = append(fine.Samples, s)
	}
	timeout := func(at int) Sample {
		return Sample{At: ms(at), Took: Duration(ProbeTimeout), Err: "read: i/o timeout"}
	}
	straddle := Sample{At: ms(95), Took: Duration(10 * time.Millisecond), Err: "read: connection reset by peer"}
	reset := Sample{At: ms(500), Took: Duration(10 * time.Millisecond), Err: "read: connection reset by peer"}
	http := ProbeRun{Start: ms(0), Stop: ms(600), Samples: []Sample{
		{At: ms(0), OK: true, From: LB1},
		straddle,
		timeout(150), // the fine probe answered throughout: a stall
		timeout(280), // the gap began while it was in flight
		reset,        // no flip near it
	}}
	j := JudgeFailures(http, fine, []time.Time{ms(100)})
	if len(j.Straddles) != 1 || j.Straddles[0] != straddle {
		t.Errorf("straddles %v, want the reset at the flip", j.Straddles)
	}
	if len(j.Stalls) != 1 || !j.Stalls[0].At.Equal(ms(150)) {
		t.Errorf("stalls %v, want the timeout at +150", j.Stalls)
	}
	if len(j.Network) != 2 || !j.Network[0].At.Equal(ms(280)) || j.Network[1] != reset {
		t.Errorf("network %v, want the timeout at +280 and the reset at +500", j.Network)
	}
	if got := j.String(); got != "1 at the ARP flip, 1 guest stalls, 2 on the network" {
		t.Errorf("String() = %q", got)
	}
	// A fine probe that sent nothing during a timeout did not run either:
	// a stall.
	quiet := ProbeRun{Start: ms(0), Stop: ms(600), Samples: []Sample{{At: ms(0), OK: true}, {At: ms(590), OK: true}}}
	if j := JudgeFailures(ProbeRun{Samples: []Sample{timeout(280)}}, quiet, nil); len(j.Stalls) != 1 {
		t.Errorf("with no fine request during the timeout: %s, want a stall", j)
	}
}

func TestLastAdvert(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ads := []AdvertEvent{
		{At: at(0), From: LB1, Priority: 150},
		{At: at(100), From: LB1, Priority: 150},
		{At: at(150), From: LB2, Priority: 100},
		{At: at(190), From: LB1, Priority: 0}, // a step-down is no advert of a live master
		{At: at(200), From: LB1, Priority: 150},
	}
	for _, tc := range []struct {
		node   string
		before int
		want   int
		ok     bool
	}{
		{LB1, 199, 100, true},
		{LB1, 200, 100, true}, // strictly before
		{LB1, 201, 200, true},
		{LB2, 1000, 150, true},
		{LB1, 0, 0, false},
		{RS1, 1000, 0, false},
	} {
		got, ok := LastAdvert(ads, tc.node, at(tc.before))
		if ok != tc.ok || (ok && !got.Equal(at(tc.want))) {
			t.Errorf("LastAdvert(%s, +%dms) = %v, %v; want +%dms, %v", tc.node, tc.before, got.Sub(t0), ok, tc.want, tc.ok)
		}
	}
}

func TestStallSeen(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(ms, rtt int) Sample {
		return Sample{At: at(ms), OK: true, Took: Duration(time.Duration(rtt) * time.Millisecond)}
	}
	run := ProbeRun{Samples: []Sample{
		ok(0, 1), ok(3, 1), ok(6, 2), ok(9, 1), // quiet
		ok(60, 1),                        // a 51 ms gap in sending
		ok(63, 1), ok(66, 90), ok(69, 1), // one answer read 90 ms late
		{At: at(72), Err: FineLost}, ok(75, 1), // a lost one is no stall
		ok(78, 1),
	}}
	for _, tc := range []struct {
		from, to int
		want     int
	}{
		{0, 9, 3},    // quiet
		{3, 6, 3},    // the neighbours' gaps count
		{20, 40, 51}, // no send inside: the gap around the window
		{10, 59, 51},
		{63, 69, 90},
		{70, 78, 3},
	} {
		if got := run.StallSeen(at(tc.from), at(tc.to)); got != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("StallSeen(+%d, +%d) = %v, want %dms", tc.from, tc.to, got, tc.want)
		}
	}
}
