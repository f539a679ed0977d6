package cloud

import (
	"context"
	"time"
)

// Clock is the mover's source of time: the convergence plan's "now", the
// pauses between polls and retries, permission and contest backoffs, and
// the times in Status. Tests inject a fake.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits d on clock, or until ctx ends.
func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// timeLeft is how long ctx has before its deadline, or -1 without one.
// Context deadlines are set on the runtime clock, so this one reads it.
func timeLeft(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	return max(time.Until(dl), 0)
}
