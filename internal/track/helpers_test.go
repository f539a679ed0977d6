package track

import (
	"github.com/director-lb/director/checks/checkstest"

	"context"
	"sync"

	"github.com/director-lb/director/internal/config"
)

// newFakeClock is the shared fake checks.Clock.
func newFakeClock() *checkstest.Clock { return checkstest.NewClock() }

// fakeRunner answers each script's runs from a queue of results; an
// empty queue repeats the last.
type fakeRunner struct {
	mu   sync.Mutex
	ok   map[string]bool
	runs map[string]int
}

func newFakeRunner() *fakeRunner { return &fakeRunner{ok: map[string]bool{}, runs: map[string]int{}} }

func (r *fakeRunner) set(name string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok[name] = ok
}

func (r *fakeRunner) Run(_ context.Context, s config.Script) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[s.Name]++
	if r.ok[s.Name] {
		return Result{OK: true, Detail: "exit status 0"}
	}
	return Result{Detail: "exit status 1"}
}

func (r *fakeRunner) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name]
}
