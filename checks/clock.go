package checks

import "time"

// Clock schedules the checks; tests inject a fake one to run rounds
// deterministically and fast.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f (in its own goroutine, for the real clock) after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call that can be cancelled.
type Timer interface {
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
