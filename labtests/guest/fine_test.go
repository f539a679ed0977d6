package main

import (
	"testing"
	"time"
)

func TestFineRun(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sent := []time.Time{at(0), at(3), at(6), at(9)}
	got := map[uint64]fineAnswer{
		0: {at: at(1), from: "lb1"},
		// 1: never answered
		2: {at: at(6 + 60), from: "lb2"}, // answered late: still answered
		3: {at: at(10), from: "lb2"},
	}
	run := fineRun(at(0), at(12), sent, got, 50*time.Millisecond)
	if d := run.Slowest(); d != 60*time.Millisecond {
		t.Errorf("Slowest() = %v, want 60ms", d)
	}
	if len(run.Samples) != 4 {
		t.Fatalf("%d samples, want 4", len(run.Samples))
	}
	want := []struct {
		ok   bool
		from string
		took time.Duration
		err  string
	}{
		{true, "lb1", time.Millisecond, ""},
		{false, "", 50 * time.Millisecond, "no answer"},
		{true, "lb2", 60 * time.Millisecond, ""},
		{true, "lb2", time.Millisecond, ""},
	}
	for i, w := range want {
		s := run.Samples[i]
		if s.OK != w.ok || s.From != w.from || s.Took.D() != w.took || s.Err != w.err || !s.At.Equal(sent[i]) {
			t.Errorf("sample %d = %+v, want %+v", i, s, w)
		}
	}
	if st := run.Stats(); st.Failed != 1 || st.LongestOutage != 3*time.Millisecond {
		t.Errorf("stats = %s, want 1 failed and a 3ms outage", st)
	}
	if n := run.Lost(); n != 1 {
		t.Errorf("Lost() = %d, want 1", n)
	}
}
