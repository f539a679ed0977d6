package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
)

// Op is one recorded Kernel call. Dest is zero for service calls; Weight is
// the weight sent by destination creates and updates.
type Op struct {
	Kind    OpKind
	Service ServiceKey
	Dest    netip.AddrPort
	Weight  int32
	Err     error // what the call returned
	// Batch numbers the Batch call (from 1) that carried a write, in the
	// order of calls; 0 for a call of its own.
	Batch int
}

func (o Op) String() string {
	s := string(o.Kind)
	switch {
	case o.Kind == OpListServices:
	case o.Dest.IsValid():
		s += " " + o.Dest.String() + " in " + o.Service.String()
		if o.Kind != OpDeleteDestination {
			s += fmt.Sprintf(" weight=%d", o.Weight)
		}
	default:
		s += " " + o.Service.String()
	}
	if o.Err != nil {
		s += ": " + o.Err.Error()
	}
	return s
}

// Fake is an in-memory Kernel for tests. It answers with the errnos the real
// kernel uses (EEXIST, ESRCH, ENOENT), records every call, and can be told
// to fail calls. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	svcs    map[ServiceKey]*Service
	ops     []Op
	fault   func(Op) error
	batches int // Batch calls so far
}

var _ Kernel = (*Fake)(nil)

// NewFake returns an empty table.
func NewFake() *Fake { return &Fake{svcs: map[ServiceKey]*Service{}} }

// SetFault installs fn, which sees every call before it runs. A non-nil
// return fails the call with that error and leaves the table unchanged,
// except for an error matching ErrOutcomeUnknown: then the write is carried
// out all the same, as when the kernel did it but its answer was lost. fn
// runs without the Fake's lock held, so it may change the table through
// Put, Remove and the like to simulate a concurrent actor. nil removes it.
func (f *Fake) SetFault(fn func(Op) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// FailNext makes the next call of kind fail with err, once.
func (f *Fake) FailNext(kind OpKind, err error) {
	var once sync.Once
	f.SetFault(func(o Op) error {
		var out error
		if o.Kind == kind {
			once.Do(func() { out = err })
		}
		return out
	})
}

// Batching returns a view of f that is also a Batcher, as Netlink is. Both
// share the table and the record of calls.
func (f *Fake) Batching() *BatchFake { return &BatchFake{f} }

// BatchFake is a Fake that takes batches. A batch behaves as the kernel
// handles one: writes run in order, each on its own, and every one is
// recorded as a call (with Op.Batch set) and sees the fault hook.
type BatchFake struct{ *Fake }

var _ Batcher = (*BatchFake)(nil)

// Batch implements Batcher.
func (b *BatchFake) Batch(ws []Write) []error {
	b.mu.Lock()
	b.batches++
	n := b.batches
	b.mu.Unlock()
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = b.write(w, n)
	}
	return errs
}

// Batches reports how many Batch calls were made so far.
func (f *Fake) Batches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

// write performs one write, recorded as part of batch n (0: none).
func (f *Fake) write(w Write, n int) error {
	key, d := w.Service.Key, w.Dest
	o := Op{Kind: w.Kind, Service: key, Batch: n}
	if w.Kind == OpCreateDestination || w.Kind == OpUpdateDestination || w.Kind == OpDeleteDestination {
		o.Dest = d.AddrPort()
		if w.Kind != OpDeleteDestination {
			o.Weight = d.Weight
		}
	}
	switch w.Kind {
	case OpCreateService:
		return f.call(o, func() error { return f.createService(w.Service) })
	case OpUpdateService:
		return f.call(o, func() error { return f.updateService(w.Service) })
	case OpDeleteService:
		return f.call(o, func() error { return f.deleteService(key) })
	case OpCreateDestination:
		return f.call(o, func() error { return f.createDest(key, d) })
	case OpUpdateDestination:
		return f.call(o, func() error { return f.updateDest(key, d) })
	case OpDeleteDestination:
		return f.call(o, func() error { return f.deleteDest(key, d) })
	}
	return fmt.Errorf("ipvs: %q is not a write", w.Kind)
}

// Ops returns every call so far, reads included.
func (f *Fake) Ops() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// Writes returns the calls so far that change the table (failed ones included).
func (f *Fake) Writes() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Op
	for _, o := range f.ops {
		if o.Kind.IsWrite() {
			out = append(out, o)
		}
	}
	return out
}

// ResetOps forgets the recorded calls.
func (f *Fake) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
}

// Put stores s with its destinations, replacing any service with its key, as
// an operator with ipvsadm would. It is not recorded.
func (f *Fake) Put(s Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := cloneService(s)
	c.Sorry = nil
	f.svcs[s.Key] = &c
}

// Remove deletes a service behind the reconciler's back; not recorded.
func (f *Fake) Remove(key ServiceKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.svcs, key)
}

// Flush empties the table, like ipvsadm -C; not recorded.
func (f *Fake) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.svcs)
}

// Edit changes the destination dst of service key in place (weight, counters,
// ...) without recording a call. It reports whether the destination exists.
func (f *Fake) Edit(key ServiceKey, dst netip.AddrPort, fn func(*Destination)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.svcs[key]
	if s == nil {
		return false
	}
	i := destIndex(s, dst)
	if i < 0 {
		return false
	}
	fn(&s.Destinations[i])
	return true
}

// RemoveDest deletes one destination behind the reconciler's back; not recorded.
func (f *Fake) RemoveDest(key ServiceKey, dst netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.svcs[key]
	if s == nil {
		return false
	}
	i := destIndex(s, dst)
	if i < 0 {
		return false
	}
	s.Destinations = slices.Delete(s.Destinations, i, i+1)
	return true
}

// Snapshot returns the table sorted by key, destinations sorted by address.
func (f *Fake) Snapshot() []Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshot()
}

func (f *Fake) snapshot() []Service {
	out := make([]Service, 0, len(f.svcs))
	for _, s := range f.svcs {
		c := cloneService(*s)
		slices.SortFunc(c.Destinations, func(a, b Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.Key.Compare(b.Key) })
	return out
}

// call runs the fault hook (unlocked), then fn under the lock, and records the call.
func (f *Fake) call(o Op, fn func() error) error {
	f.mu.Lock()
	fault := f.fault
	f.mu.Unlock()
	var err error
	if fault != nil {
		err = fault(o)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		err = fn()
	case errors.Is(err, ErrOutcomeUnknown):
		_ = fn()
	}
	o.Err = err
	f.ops = append(f.ops, o)
	return err
}

// Services implements Kernel.
func (f *Fake) Services() ([]Service, error) {
	var out []Service
	err := f.call(Op{Kind: OpListServices}, func() error {
		out = f.snapshot()
		return nil
	})
	return out, err
}

// Service implements Kernel.
func (f *Fake) Service(key ServiceKey) (Service, error) {
	var out Service
	err := f.call(Op{Kind: OpGetService, Service: key}, func() error {
		s := f.svcs[key]
		if s == nil {
			return syscall.ESRCH
		}
		out = cloneService(*s)
		return nil
	})
	return out, err
}

// CreateService implements Kernel.
func (f *Fake) CreateService(s Service) error {
	return f.write(Write{Kind: OpCreateService, Service: s}, 0)
}

// UpdateService implements Kernel.
func (f *Fake) UpdateService(s Service) error {
	return f.write(Write{Kind: OpUpdateService, Service: s}, 0)
}

// DeleteService implements Kernel.
func (f *Fake) DeleteService(key ServiceKey) error {
	return f.write(Write{Kind: OpDeleteService, Service: Service{Key: key}}, 0)
}

// CreateDestination implements Kernel.
func (f *Fake) CreateDestination(key ServiceKey, d Destination) error {
	return f.write(Write{Kind: OpCreateDestination, Service: Service{Key: key}, Dest: d}, 0)
}

// UpdateDestination implements Kernel. Connection counters are kept.
func (f *Fake) UpdateDestination(key ServiceKey, d Destination) error {
	return f.write(Write{Kind: OpUpdateDestination, Service: Service{Key: key}, Dest: d}, 0)
}

// DeleteDestination implements Kernel.
func (f *Fake) DeleteDestination(key ServiceKey, d Destination) error {
	return f.write(Write{Kind: OpDeleteDestination, Service: Service{Key: key}, Dest: d}, 0)
}

// The table changes below run with f.mu held.

func (f *Fake) createService(s Service) error {
	if f.svcs[s.Key] != nil {
		return syscall.EEXIST
	}
	c := s
	c.Destinations, c.Sorry = nil, nil
	f.svcs[s.Key] = &c
	return nil
}

func (f *Fake) updateService(s Service) error {
	old := f.svcs[s.Key]
	if old == nil {
		return syscall.ESRCH
	}
	c := s
	c.Destinations, c.Sorry = old.Destinations, nil
	f.svcs[s.Key] = &c
	return nil
}

func (f *Fake) deleteService(key ServiceKey) error {
	if f.svcs[key] == nil {
		return syscall.ESRCH
	}
	delete(f.svcs, key)
	return nil
}

func (f *Fake) createDest(key ServiceKey, d Destination) error {
	s := f.svcs[key]
	if s == nil {
		return syscall.ESRCH
	}
	if err := fakeCheckDest(d); err != nil {
		return err
	}
	if destIndex(s, d.AddrPort()) >= 0 {
		return syscall.EEXIST
	}
	d.ActiveConns, d.InactiveConns = 0, 0
	s.Destinations = append(s.Destinations, d)
	return nil
}

func (f *Fake) updateDest(key ServiceKey, d Destination) error {
	s := f.svcs[key]
	if s == nil {
		return syscall.ESRCH
	}
	if err := fakeCheckDest(d); err != nil {
		return err
	}
	i := destIndex(s, d.AddrPort())
	if i < 0 {
		return syscall.ENOENT
	}
	old := s.Destinations[i]
	d.ActiveConns, d.InactiveConns = old.ActiveConns, old.InactiveConns
	s.Destinations[i] = d
	return nil
}

func (f *Fake) deleteDest(key ServiceKey, d Destination) error {
	s := f.svcs[key]
	if s == nil {
		return syscall.ESRCH
	}
	i := destIndex(s, d.AddrPort())
	if i < 0 {
		return syscall.ENOENT
	}
	s.Destinations = slices.Delete(s.Destinations, i, i+1)
	return nil
}

// fakeCheckDest mirrors the kernel's own checks.
func fakeCheckDest(d Destination) error {
	if d.Weight < 0 || d.Lower > d.Upper {
		return syscall.ERANGE
	}
	if d.Forward == Tunnel && d.Encap.Type == TunnelGUE && d.Encap.Port == 0 {
		return syscall.EINVAL
	}
	return nil
}

func destIndex(s *Service, dst netip.AddrPort) int {
	return slices.IndexFunc(s.Destinations, func(d Destination) bool { return d.AddrPort() == dst })
}
