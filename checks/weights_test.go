package checks

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func rs(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80)
}

func weightsOf(w ServiceWeights) string {
	s := ""
	for _, sw := range w.Servers {
		if sw.Present {
			s += fmt.Sprintf("%d ", sw.Weight)
		} else {
			s += "- "
		}
	}
	return s
}

func TestComputeHealth(t *testing.T) {
	in := ServiceInput{Servers: []ServerInput{
		{Server: rs(1), Weight: 10, Health: Up},
		{Server: rs(2), Weight: 10, Health: Down},
		{Server: rs(3), Weight: 10, Health: Up, HasDynamic: true, Dynamic: 3},
		{Server: rs(4), Weight: 10, Health: Unknown, InKernel: true, Current: 7},
		{Server: rs(5), Weight: 10, Health: Unknown},
	}}
	out := Compute(in, epoch)
	if got := weightsOf(out); got != "10 0 3 7 - " {
		t.Errorf("weights %q", got)
	}
	if out.LiveWeight != 20 || out.QuorumLost || out.Sorry || !out.NextChange.IsZero() {
		t.Errorf("service %+v", out)
	}
	if out.Servers[2].Server != rs(3) {
		t.Errorf("order changed: %+v", out.Servers)
	}
	in.Policy.RemoveFailed = true
	if got := weightsOf(Compute(in, epoch)); got != "10 - 3 7 - " {
		t.Errorf("with remove_failed: %q", got)
	}
}

func TestSlowStart(t *testing.T) {
	pol := Policy{SlowStart: 10 * time.Second, SlowStartStep: time.Second}
	in := ServiceInput{Policy: pol, Servers: []ServerInput{
		{Server: rs(1), Weight: 100, Health: Up, Since: epoch, Recovered: true},
		{Server: rs(2), Weight: 100, Health: Up, Since: epoch}, // first seen: no ramp
		{Server: rs(3), Weight: 1, Health: Up, Since: epoch, Recovered: true},
	}}
	tests := []struct {
		at   time.Duration
		want int
		next time.Duration // -1: none
	}{
		{-time.Second, 9, time.Second}, // a clock step back holds the first step
		{0, 9, time.Second},
		{500 * time.Millisecond, 9, time.Second},
		{time.Second, 18, 2 * time.Second},
		{5 * time.Second, 54, 6 * time.Second},
		{9*time.Second + 999*time.Millisecond, 90, 10 * time.Second},
		{10 * time.Second, 100, -1},
		{time.Hour, 100, -1},
	}
	for _, tc := range tests {
		out := Compute(in, epoch.Add(tc.at))
		got := []int{out.Servers[0].Weight, out.Servers[1].Weight, out.Servers[2].Weight}
		if !slices.Equal(got, []int{tc.want, 100, 1}) {
			t.Errorf("at %v: weights %v, want %d 100 1", tc.at, got, tc.want)
		}
		if (tc.next < 0) != out.NextChange.IsZero() || (tc.next >= 0 && !out.NextChange.Equal(epoch.Add(tc.next))) {
			t.Errorf("at %v: next change %v, want +%v", tc.at, out.NextChange, tc.next)
		}
		// The ramp does not count against the quorum.
		if out.LiveWeight != 201 {
			t.Errorf("at %v: live weight %d", tc.at, out.LiveWeight)
		}
	}
	// An uneven last step ends at the duration.
	w, next := slowStart(10, epoch, epoch.Add(2*time.Second), 2500*time.Millisecond, time.Second)
	if w != 7 || !next.Equal(epoch.Add(2500*time.Millisecond)) { // step 3 of 3: 10*3/4
		t.Errorf("uneven ramp: %d, %v", w, next)
	}
}

func TestQuorumHysteresis(t *testing.T) {
	pol := Policy{Quorum: 10, Hysteresis: 5, HasSorry: true}
	servers := func(up ...bool) []ServerInput {
		var out []ServerInput
		for i, u := range up {
			h := Down
			if u {
				h = Up
			}
			out = append(out, ServerInput{Server: rs(i + 1), Weight: 5, Health: h})
		}
		return out
	}
	lost := false
	steps := []struct {
		up      []bool
		live    int
		lost    bool
		weights string
	}{
		{[]bool{true, true, true}, 15, false, "5 5 5 "},
		{[]bool{true, true, false}, 10, false, "5 5 0 "}, // at the quorum: fine
		{[]bool{true, false, false}, 5, true, "0 0 0 "},  // below: sorry server
		{[]bool{true, true, false}, 10, true, "0 0 0 "},  // back at 10: not enough
		{[]bool{true, true, true}, 15, false, "5 5 5 "},  // quorum + hysteresis
		{[]bool{true, true, false}, 10, false, "5 5 0 "}, // no flap on the way down
		{[]bool{false, false, false}, 0, true, "0 0 0 "}, // all down
		{[]bool{true, true, true}, 15, false, "5 5 5 "},
	}
	for i, st := range steps {
		out := Compute(ServiceInput{Policy: pol, Servers: servers(st.up...), QuorumLost: lost}, epoch)
		if out.LiveWeight != st.live || out.QuorumLost != st.lost || out.Sorry != st.lost || weightsOf(out) != st.weights {
			t.Fatalf("step %d: live %d lost %v sorry %v weights %q, want %d %v %q",
				i, out.LiveWeight, out.QuorumLost, out.Sorry, weightsOf(out), st.live, st.lost, st.weights)
		}
		lost = out.QuorumLost
	}

	// Without a sorry server, quorum loss is reported but the survivors
	// keep serving; the default quorum is 1.
	out := Compute(ServiceInput{Servers: servers(false, false)}, epoch)
	if !out.QuorumLost || out.Sorry {
		t.Errorf("all down, no sorry server: %+v", out)
	}
	out = Compute(ServiceInput{Policy: Policy{Quorum: 10}, Servers: servers(true, false)}, epoch)
	if !out.QuorumLost || out.Sorry || weightsOf(out) != "5 0 " {
		t.Errorf("below quorum, no sorry server: %+v", out)
	}
	// While a server is Unknown the decision is held.
	in := ServiceInput{Policy: pol, Servers: servers(false, false, false), QuorumLost: false}
	in.Servers[0].Health = Unknown
	if out := Compute(in, epoch); out.QuorumLost {
		t.Errorf("quorum decided while a server is unknown: %+v", out)
	}
	in.QuorumLost = true
	in.Servers[1].Health, in.Servers[2].Health = Up, Up
	if out := Compute(in, epoch); !out.QuorumLost || !out.Sorry {
		t.Errorf("quorum regained while a server is unknown: %+v", out)
	}
}

func TestSetHealth(t *testing.T) {
	t1, t2 := epoch.Add(time.Minute), epoch.Add(2*time.Minute)
	upFresh := Status{Health: Up, From: Unknown, Since: t1}
	upRecovered := Status{Health: Up, From: Down, Since: t2}
	down := Status{Health: Down, From: Up, Since: t1}
	unknown := Status{}
	dyn := func(st Status, w int) Status { st.Weight, st.HasWeight = w, true; return st }
	tests := []struct {
		name      string
		sts       []Status
		health    Health
		since     time.Time
		recovered bool
		dynamic   int // -1: none
	}{
		{"no checks", nil, Up, time.Time{}, false, -1},
		{"one up", []Status{upFresh}, Up, t1, false, -1},
		{"latest recovered", []Status{upFresh, upRecovered}, Up, t2, true, -1},
		{"latest recovered, other order", []Status{upRecovered, upFresh}, Up, t2, true, -1},
		{"any down", []Status{upRecovered, down}, Down, t1, false, -1},
		{"down beats unknown", []Status{unknown, down}, Down, t1, false, -1},
		{"unknown", []Status{upFresh, unknown}, Unknown, time.Time{}, false, -1},
		{"lowest dynamic", []Status{dyn(upFresh, 7), dyn(upFresh, 3), upFresh}, Up, t1, false, 3},
	}
	for _, tc := range tests {
		var s ServerInput
		s.SetHealth(tc.sts...)
		d := -1
		if s.HasDynamic {
			d = s.Dynamic
		}
		if s.Health != tc.health || !s.Since.Equal(tc.since) || s.Recovered != tc.recovered || d != tc.dynamic {
			t.Errorf("%s: %s since %v recovered %v dynamic %d", tc.name, s.Health, s.Since, s.Recovered, d)
		}
	}
}

// File checks add to the weight (configured or dynamic), within 0-MaxWeight,
// only while they pass.
func TestComputeAdjust(t *testing.T) {
	up := func(adj int) Status { return Status{Health: Up, Adjust: adj} }
	var a, b, c, d ServerInput
	a.SetHealth(up(5), up(-2))
	b.SetHealth(up(-50))
	c.SetHealth(up(MaxWeight), up(MaxWeight))
	d.SetHealth(up(7), Status{Health: Down, Adjust: 100})
	if a.Adjust != 3 || b.Adjust != -50 || c.Adjust != MaxWeight {
		t.Fatalf("adjustments %d %d %d", a.Adjust, b.Adjust, c.Adjust)
	}
	in := ServiceInput{Servers: []ServerInput{
		{Server: rs(1), Weight: 10, Health: Up, Adjust: a.Adjust},
		{Server: rs(2), Weight: 10, Health: Up, Adjust: b.Adjust},
		{Server: rs(3), Weight: 10, Health: Up, Adjust: c.Adjust},
		{Server: rs(4), Weight: 10, Health: Up, HasDynamic: true, Dynamic: 3, Adjust: 4},
		{Server: rs(5), Weight: 10, Health: d.Health, Adjust: d.Adjust},
	}}
	if got := weightsOf(Compute(in, epoch)); got != fmt.Sprintf("13 0 %d 7 0 ", MaxWeight) {
		t.Errorf("weights %q", got)
	}
}
