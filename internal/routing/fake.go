package routing

import (
	"context"
	"slices"
	"sync"

	"github.com/director-lb/director/internal/config"
)

// Fake is an Announcer that records what it is told, for tests.
type Fake struct {
	mu sync.Mutex
	// Routes is the announced set now; Calls counts Announce calls.
	routes []Route
	calls  int
	// Err, if set, fails the next Announce.
	err        error
	configured []*config.Routing
	sessions   []Session
	closed     bool
	changed    chan struct{}
}

// NewFake returns an empty Fake.
func NewFake() *Fake { return &Fake{changed: make(chan struct{}, 1)} }

// Announce implements Announcer.
func (f *Fake) Announce(_ context.Context, routes []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	f.routes = slices.Clone(routes)
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return nil
}

// Configure implements Announcer.
func (f *Fake) Configure(_ context.Context, r *config.Routing) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configured = append(f.configured, r)
	return nil
}

// Sessions implements Announcer.
func (f *Fake) Sessions() []Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

// Close implements Announcer.
func (f *Fake) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes, f.closed = nil, true
	return nil
}

// Routes is the announced set now.
func (f *Fake) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// Calls counts Announce calls.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// FailNext makes the next Announce fail with err.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// SetSessions sets what Sessions returns.
func (f *Fake) SetSessions(s []Session) {
	f.mu.Lock()
	f.sessions = s
	f.mu.Unlock()
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Configured is every routing section Configure was given.
func (f *Fake) Configured() []*config.Routing {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.configured)
}

// Changed is signalled after each successful Announce.
func (f *Fake) Changed() <-chan struct{} { return f.changed }
