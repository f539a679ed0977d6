package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilSeesTheEvent(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !Until(5*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("Until missed a condition that became true")
	}
}

func TestUntilGivesUp(t *testing.T) {
	start := time.Now()
	if Until(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a condition that never held")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("Until gave up after %v, before its deadline", took)
	}
}
