package main

import (
	"testing"
	"time"
)

func TestChangedAt(t *testing.T) {
	start := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	read := start.Add(5 * time.Second)
	if got, want := changedAt(read, 14, start), read.Add(-140*time.Millisecond); !got.Equal(want) {
		t.Errorf("read 14 ticks after the change: dated %v, want %v", got.Sub(start), want.Sub(start))
	}
	if got := changedAt(read, 0, start); !got.Equal(read) {
		t.Errorf("read at once: dated %v, want the read time", got.Sub(start))
	}
	// An entry listed at the start that changed long before.
	if got := changedAt(start.Add(time.Millisecond), 3000, start); !got.Equal(start) {
		t.Errorf("an old entry listed at the start: dated %v, want the watch's start", got.Sub(start))
	}
}
