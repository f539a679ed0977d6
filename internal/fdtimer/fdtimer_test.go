package fdtimer

import (
	"testing"
	"time"

	"github.com/director-lb/director/internal/testwait"
)

func newTimer(t *testing.T) *Timer {
	t.Helper()
	tm, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tm.Close() })
	return tm
}

// wantFiring waits (up to 10 s) for tm to fire, and fails unless that was
// at least min after start.
func wantFiring(t *testing.T, tm *Timer, start time.Time, min time.Duration) {
	t.Helper()
	select {
	case <-tm.C():
		if got := time.Since(start); got < min {
			t.Errorf("fired after %v, want at least %v", got, min)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timer never fired")
	}
}

func TestFiresAfterItsDuration(t *testing.T) {
	tm := newTimer(t)
	start := time.Now()
	if tm.Reset(30 * time.Millisecond) {
		t.Error("Reset of a new timer said it was armed")
	}
	wantFiring(t, tm, start, 30*time.Millisecond)
	if tm.Stop() {
		t.Error("Stop after the firing said the timer was armed")
	}
}

func TestResetReportsAndReplacesTheArming(t *testing.T) {
	tm := newTimer(t)
	tm.Reset(time.Hour)
	start := time.Now()
	if !tm.Reset(60 * time.Millisecond) {
		t.Error("Reset of an armed timer said it was not armed")
	}
	wantFiring(t, tm, start, 60*time.Millisecond)
}

// A stopped arming never fires: the next firing is the next arming's.
func TestStopCancels(t *testing.T) {
	tm := newTimer(t)
	tm.Reset(20 * time.Millisecond)
	if !tm.Stop() {
		t.Error("Stop of an armed timer said it was not armed")
	}
	start := time.Now()
	tm.Reset(150 * time.Millisecond)
	// A firing before 150 ms would be the stopped arming's.
	wantFiring(t, tm, start, 150*time.Millisecond)
}

// A firing not yet received is dropped by Reset and by Stop.
func TestResetDropsAnUnreceivedFiring(t *testing.T) {
	tm := newTimer(t)
	for _, next := range []func(){func() { tm.Reset(time.Hour) }, func() { tm.Stop() }} {
		tm.Reset(0)
		testwait.Eventually(t, 10*time.Second, "the firing", func() bool { return len(tm.C()) == 1 })
		next()
		if n := len(tm.C()); n != 0 {
			t.Errorf("%d firing(s) of the old arming still queued", n)
		}
	}
}

func TestClose(t *testing.T) {
	tm, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tm.Reset(time.Millisecond)
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	if tm.Reset(time.Millisecond) || tm.Stop() {
		t.Error("a closed timer said it was armed")
	}
	if err := tm.Close(); err == nil {
		t.Error("a second Close gave no error")
	}
}

// BenchmarkRearm is the cost of the instance loop's turn: arm, fire, receive.
func BenchmarkRearm(b *testing.B) {
	tm, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer tm.Close()
	for b.Loop() {
		tm.Reset(time.Microsecond)
		<-tm.C()
	}
}
