// Package testwait is the one "wait for a condition, with a deadline"
// helper the project's tests share: tests wait for the event they need,
// never for a fixed time.
package testwait

import (
	"testing"
	"time"
)

// poll is how often a condition is re-checked: short against the
// deadlines tests use, long enough not to spin a core.
const poll = 2 * time.Millisecond

// Eventually checks cond until it holds, failing the test with what if it
// still does not after d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Until checks cond until it holds or d passes, and reports whether it
// held. For callers that need to fail in their own words.
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(poll)
	}
}
