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

// fired waits up to d for a firing and reports when it came.
func fired(tm *Timer, d time.Duration) (time.Time, bool) {
	select {
	case <-tm.C():
		return time.Now(), true
	case <-time.After(d):
		return time.Time{}, false
	}
}

func TestFiresAfterItsDuration(t *testing.T) {
	tm := newTimer(t)
	start := time.Now()
	if tm.Reset(30 * time.Millisecond) {
		t.Error("Reset of a new timer said it was armed")
	}
	at, ok := fired(tm, 10*time.Second)
	if !ok {
		t.Fatal("the timer never fired")
	}
	if got := at.Sub(start); got < 30*time.Millisecond {
		t.Errorf("fired after %v, want at least 30ms", got)
	}
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
	at, ok := fired(tm, 10*time.Second)
	if !ok {
		t.Fatal("the re-armed timer never fired")
	}
	if got := at.Sub(start); got < 60*time.Millisecond {
		t.Errorf("fired after %v, want at least 60ms", got)
	}
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
	at, ok := fired(tm, 10*time.Second)
	if !ok {
		t.Fatal("never fired after the second arming")
	}
	if got := at.Sub(start); got < 150*time.Millisecond {
		t.Errorf("a firing %v after the second arming: the stopped arming fired", got)
	}
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
