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
		2: {at: at(6 + 60), from: "lb2"}, // answered after the 50 ms timeout
		3: {at: at(10), from: "lb2"},
	}
	run := fineRun(at(0), at(12), sent, got, 50*time.Millisecond)
	if d := run.Slowest(); d != time.Millisecond {
		t.Errorf("Slowest() = %v, want 1ms (the late answer is not OK)", d)
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
		{false, "lb2", 60 * time.Millisecond, "late"},
		{true, "lb2", time.Millisecond, ""},
	}
	for i, w := range want {
		s := run.Samples[i]
		if s.OK != w.ok || s.From != w.from || s.Took.D() != w.took || s.Err != w.err || !s.At.Equal(sent[i]) {
			t.Errorf("sample %d = %+v, want %+v", i, s, w)
		}
	}
	if st := run.Stats(); st.Failed != 2 || st.LongestOutage != 6*time.Millisecond {
		t.Errorf("stats = %s, want 2 failed and a 6ms outage", st)
	}
}
