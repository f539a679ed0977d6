package vip

import (
	"context"
	"slices"
	"sync"
)

// Names of the calls recorded by Fake.
const (
	CallTake     = "take"
	CallAnnounce = "announce"
	CallRelease  = "release"
)

// Fake is a vrrp.Mover that records its calls, for tests of other packages.
// The zero value is ready to use and it is safe for concurrent use.
type Fake struct {
	mu    sync.Mutex
	calls []string
	held  bool
	errs  map[string]error
}

// Take records CallTake and holds the addresses unless an error is injected.
func (f *Fake) Take(context.Context) error {
	return f.call(CallTake, func() { f.held = true })
}

// Announce records CallAnnounce.
func (f *Fake) Announce(context.Context) error {
	return f.call(CallAnnounce, func() {})
}

// Release records CallRelease and drops the addresses unless an error is
// injected.
func (f *Fake) Release(context.Context) error {
	return f.call(CallRelease, func() { f.held = false })
}

func (f *Fake) call(name string, apply func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	if err := f.errs[name]; err != nil {
		return err
	}
	apply()
	return nil
}

// SetError makes every later call named call (CallTake, CallAnnounce or
// CallRelease) fail with err and leave Held unchanged; nil clears it.
func (f *Fake) SetError(call string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = make(map[string]error)
	}
	f.errs[call] = err
}

// Calls returns the calls so far, oldest first, failed ones included.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Held reports whether the last successful Take was not followed by a
// successful Release.
func (f *Fake) Held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// Present reports Held, like Local.Present after a restart.
func (f *Fake) Present(context.Context) (bool, error) { return f.Held(), nil }
