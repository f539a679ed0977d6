package checks

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestManagerCoalesce checks that timers are brought forward onto shared
// Coalesce slots, by at most an eighth of their delay and never later, and
// that a negative Coalesce leaves the schedule alone.
func TestManagerCoalesce(t *testing.T) {
	const n, interval, slot = 500, 2 * time.Second, 50 * time.Millisecond
	rig := func(coalesce time.Duration) *fakeClock {
		c := newFakeClock()
		f := newFleet(c)
		m := NewManager(Options{Clock: c, Rand: rand.New(rand.NewPCG(7, 0)), NewProber: f.newProber,
			StartSpread: time.Second, Coalesce: coalesce, Logger: quiet})
		t.Cleanup(m.Close)
		for i := range n {
			s := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 80)
			f.set(s, true)
			if _, err := m.Add(Check{Server: s, Spec: tcpSpec(interval)}); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	plain, merged := rig(-1), rig(0) // 0: the 50ms default
	for round := range 3 {
		u, c := scheduled(plain), scheduled(merged)
		if len(u) != n || len(c) != n {
			t.Fatalf("round %d: %d and %d timers, want %d", round, len(u), len(c), n)
		}
		onSlot, slots := 0, map[time.Time]bool{}
		for i := range n {
			// Coalescing maps each due time x into [x-x/8, x], so the
			// sorted schedules compare element by element while both
			// drew the same random numbers in the same order (later, the
			// order of rounds differs).
			if round == 0 && (c[i] > u[i] || c[i] < u[i]-u[i]/8) {
				t.Fatalf("timer %d at %v, uncoalesced %v", i, c[i], u[i])
			}
			at := merged.Now().Add(c[i])
			if at.Truncate(slot).Equal(at) {
				onSlot++
			}
			slots[at] = true
		}
		// The first round's delays under 8 slots may stay off the grid;
		// later rounds (about an interval away) all land on it.
		if round > 0 && onSlot != n {
			t.Errorf("round %d: %d of %d timers on a %v slot", round, onSlot, n, slot)
		}
		if round > 0 && len(slots) > int(3*interval/slot) {
			t.Errorf("round %d: %d distinct due times, want at most %d", round, len(slots), 3*interval/slot)
		}
		plain.Advance(interval * 2)
		merged.Advance(interval * 2)
	}
	// Without coalescing, due times are spread at random, almost never on
	// a slot boundary.
	off := 0
	for _, d := range scheduled(plain) {
		if at := plain.Now().Add(d); !at.Truncate(slot).Equal(at) {
			off++
		}
	}
	if off < n*9/10 {
		t.Errorf("Coalesce -1: only %d of %d timers off the slot grid", off, n)
	}
}
