package decisions

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Bounds of the store. Every entry, tombstones included, counts towards
// Limits.Entries, and an entry encodes to at most MaxEncodedSize bytes, so
// MaxEntriesLimit entries fit in one peer sync (4 MiB) with room to spare:
// the whole store always goes in one exchange.
const (
	DefaultMaxEntries = 5000
	MaxEntriesLimit   = 6000
	// MaxEncodedSize bounds one decision as JSON: a 64-byte service, the
	// longest IPv6 address and port, a 255-byte node name, a
	// nanosecond-precision time. No field holds a character JSON escapes.
	MaxEncodedSize = 600
	// TombstoneTTL is how long a withdrawn decision is kept (see Prune).
	TombstoneTTL = 7 * 24 * time.Hour
	// MaxClockSkew is how far ahead of this node's clock a decision may
	// be dated. Last writer wins, so one dated far ahead would beat every
	// decision made until then; the pair's clocks are kept by NTP, so a
	// few minutes cover any honest difference.
	MaxClockSkew = 5 * time.Minute
)

// SupersededError is Put's answer to a decision that lost to a newer one
// for the same target: the operator's command did not take effect, and By
// is what did.
type SupersededError struct{ By Decision }

func (e *SupersededError) Error() string {
	what := string(e.By.Action)
	if e.By.Action == ActionWeight || e.By.Action == ActionRegister {
		what = fmt.Sprintf("%s %d", e.By.Action, e.By.Weight)
	}
	return fmt.Sprintf("superseded by a newer decision: %s by %s at %s (last writer wins; if that time is ahead of now, check the pair's clocks)",
		what, e.By.Node, e.By.At.Format(time.RFC3339Nano))
}

// ErrLimit is wrapped by every refusal for want of room: a pool at its
// registration cap, or a store full of live decisions.
var ErrLimit = errors.New("limit reached")

// Limits bound what the store takes.
type Limits struct {
	// Entries caps the decisions kept, tombstones included (0:
	// DefaultMaxEntries; at most MaxEntriesLimit). At the cap a new
	// decision replaces the oldest tombstone, or is refused if there is
	// none.
	Entries int
	// Registrations caps the live registrations per service; a service
	// not listed has no cap of its own.
	Registrations map[string]int
}

// Options configure Open.
type Options struct {
	// Path is the file ("" keeps the store in memory only).
	Path string
	// Legacy is where an older version kept the decisions: read once if
	// Path does not exist yet, written to Path, then removed.
	Legacy string
	// Now is the clock, nil for time.Now.
	Now    func() time.Time
	Limits Limits
}

// Store holds the current decision for each (Kind, Target), tombstones
// included, and persists them. It is safe for concurrent use.
type Store struct {
	path   string
	now    func() time.Time
	report LoadReport // set by Open

	mu     sync.Mutex
	m      map[key]Decision
	live   map[string]int // live registrations per service
	limits Limits
}

// Open loads the store. A missing file is an empty store; the old
// overrides.json map format is migrated (it is rewritten in the new
// format on the first change).
//
// A file with bad entries does not stop the store from opening: they are
// skipped, the file as it was is set aside and rewritten without them,
// and Report says what happened, for the caller to log. Only a file that
// cannot be read at all is an error.
func Open(o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{path: o.Path, now: o.Now, m: map[key]Decision{}, live: map[string]int{}}
	s.SetLimits(o.Limits)
	if o.Path == "" {
		return s, nil
	}
	from := o.Path
	if o.Legacy != "" && o.Legacy != o.Path {
		if _, err := os.Stat(o.Path); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(o.Legacy); err == nil {
				from = o.Legacy
			}
		}
	}
	ds, rep, raw, err := readFile(from)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		// One dated beyond the clock would beat every decision made until
		// then (the copy set aside keeps it).
		if _, err := s.check(d); err != nil {
			rep.Problems = append(rep.Problems, err)
			continue
		}
		s.setLocked(keyOf(d), d)
	}
	if len(rep.Problems) > 0 {
		for i, p := range rep.Problems {
			rep.Problems[i] = fmt.Errorf("%s: %w", from, p)
		}
		if aside, err := setAside(from, raw, s.now()); err != nil {
			rep.Problems = append(rep.Problems, err)
		} else {
			rep.SetAside = aside
		}
	}
	if from != o.Path {
		// Written to the new place first, so a failure loses nothing.
		if err := s.persistLocked(); err != nil {
			return nil, fmt.Errorf("move decisions from %s: %w", from, err)
		}
		if err := os.Remove(from); err != nil {
			rep.Problems = append(rep.Problems, fmt.Errorf("moved decisions from %s, but: %w", from, err))
		}
		rep.MovedFrom = from
	} else if rep.SetAside != "" {
		// Rewritten without the bad entries, so that the next start does
		// not set the same file aside again.
		if err := s.persistLocked(); err != nil {
			rep.Problems = append(rep.Problems, err)
		}
	}
	s.report = rep
	return s, nil
}

// Report is what Open found wrong with the file; empty if nothing.
func (s *Store) Report() LoadReport { return s.report }

// SetLimits changes the bounds (a reload). Decisions already kept stay;
// only new ones are held to the new bounds.
func (s *Store) SetLimits(l Limits) {
	if l.Entries <= 0 {
		l.Entries = DefaultMaxEntries
	}
	l.Entries = min(l.Entries, MaxEntriesLimit)
	s.mu.Lock()
	s.limits = l
	s.mu.Unlock()
}

// Len is how many decisions the store holds, tombstones included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Put records a local decision. A zero At is set to the store's clock.
// A decision that an existing one for the same (Kind, Target) beats is
// refused with a *SupersededError naming the winner (the same decision
// again is no change and no error). A decision over a limit is refused
// with an error wrapping ErrLimit. On a persistence error nothing changes.
func (s *Store) Put(d Decision) (changed bool, err error) {
	if d.At.IsZero() {
		d.At = s.now()
	}
	n, err := s.check(d)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[keyOf(n)]
	if had && !newer(n, old) {
		if sameDecision(n, old) {
			return false, nil
		}
		return false, &SupersededError{By: old}
	}
	t := s.begin()
	if err := s.admitLocked(t, n, old, had); err != nil {
		return false, err
	}
	t.set(keyOf(n), n)
	if err := s.persistLocked(); err != nil {
		t.rollback()
		return false, err
	}
	return true, nil
}

// Merge applies decisions from the peer, each by last-writer-wins, and
// returns those that changed the store. accept, if not nil, vets each
// (well-formed) decision first: the caller refuses targets it does not
// know. Invalid entries, entries dated beyond MaxClockSkew, refused ones
// and entries over a limit are skipped and summed up in err; the others
// still merge. The store is persisted once; if that fails nothing changes
// and changed is nil.
func (s *Store) Merge(remote []Decision, accept func(Decision) error) (changed []Decision, err error) {
	var refused refusals
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.begin()
	set := map[key]bool{}
	for _, d := range remote {
		n, err := s.check(d)
		if err == nil && accept != nil {
			err = accept(n)
		}
		if err != nil {
			refused.add(err)
			continue
		}
		k := keyOf(n)
		old, had := s.m[k]
		if had && !newer(n, old) {
			continue
		}
		if err := s.admitLocked(t, n, old, had); err != nil {
			refused.add(err)
			continue
		}
		t.set(k, n)
		set[k] = true
	}
	if len(t.prev) == 0 {
		return nil, refused.err()
	}
	if perr := s.persistLocked(); perr != nil {
		t.rollback()
		return nil, errors.Join(refused.err(), perr)
	}
	out := map[key]Decision{}
	for k := range set {
		if d, ok := s.m[k]; ok { // an eviction later in the batch may have taken it
			out[k] = d
		}
	}
	return sorted(out), refused.err()
}

// check validates d, returns it in canonical form, and refuses it if it
// is dated beyond the clock plus MaxClockSkew.
func (s *Store) check(d Decision) (Decision, error) {
	n, err := d.normalize()
	if err != nil {
		return n, err
	}
	if now := s.now(); n.At.After(now.Add(MaxClockSkew)) {
		return n, fmt.Errorf("decision %s %s: dated %s, more than %s ahead of this node's clock (%s); check both nodes' NTP",
			n.Kind, n.Target, n.At.Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return n, nil
}

// sameDecision reports whether a and b decide the same thing at the same
// time (a repeat, not a conflict).
func sameDecision(a, b Decision) bool {
	return a.At.Equal(b.At) && a.Node == b.Node && a.Action == b.Action && a.Weight == b.Weight
}

// admitLocked checks n against the limits before it is set, making room
// if it may: at the entry cap the oldest tombstone goes (through t, so
// that a failed write brings it back).
func (s *Store) admitLocked(t *txn, n, old Decision, had bool) error {
	if n.Kind == KindRegistration && !n.Tombstone() && (!had || old.Tombstone()) {
		svc := serviceOf(n.Target)
		if max, ok := s.limits.Registrations[svc]; ok && s.live[svc] >= max {
			return fmt.Errorf("%w: service %s has %d registrations, its registration.max_servers", ErrLimit, svc, max)
		}
	}
	if had || len(s.m) < s.limits.Entries {
		return nil
	}
	var oldest key
	var at time.Time
	for k, d := range s.m {
		if d.Tombstone() && (at.IsZero() || d.At.Before(at)) {
			oldest, at = k, d.At
		}
	}
	if at.IsZero() {
		return fmt.Errorf("%w: the store holds %d decisions (decisions.max_entries), none of them withdrawn; %s %s not kept", ErrLimit, len(s.m), n.Kind, n.Target)
	}
	t.del(oldest)
	return nil
}

// Snapshot lists every decision, tombstones included, sorted by kind and
// target.
func (s *Store) Snapshot() []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sorted(s.m)
}

// Override is the live override for a real server of a service: the
// service-specific one first, then the one for every service.
func (s *Store) Override(service string, ap netip.AddrPort) (Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range []string{service + "/" + ap.String(), ap.String()} {
		if d, ok := s.m[key{KindOverride, t}]; ok && !d.Tombstone() {
			return d, true
		}
	}
	return Decision{}, false
}

// Registrations lists the live registrations for a service, sorted by
// target.
func (s *Store) Registrations(service string) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[key]Decision{}
	for k, d := range s.m {
		if k.kind == KindRegistration && !d.Tombstone() && serviceOf(k.target) == service {
			m[k] = d
		}
	}
	return sorted(m)
}

// Prune drops tombstones decided more than olderThan ago and returns how
// many. Tombstones must live long enough for the peer to have seen them:
// once dropped, a peer that still holds the older live decision would
// bring it back.
func (s *Store) Prune(olderThan time.Duration) (int, error) {
	cutoff := s.now().Add(-olderThan)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.begin()
	for k, d := range s.m {
		if d.Tombstone() && d.At.Before(cutoff) {
			t.del(k)
		}
	}
	if len(t.prev) == 0 {
		return 0, nil
	}
	if err := s.persistLocked(); err != nil {
		t.rollback()
		return 0, err
	}
	return len(t.prev), nil
}

func (s *Store) persistLocked() error {
	if s.path == "" {
		return nil
	}
	if err := writeFile(s.path, sorted(s.m)); err != nil {
		return fmt.Errorf("persist decisions %s: %w", s.path, err)
	}
	return nil
}

// setLocked and deleteLocked are the only writes to s.m: they keep the
// live registration counts in step.
func (s *Store) setLocked(k key, d Decision) {
	s.deleteLocked(k)
	s.m[k] = d
	if k.kind == KindRegistration && !d.Tombstone() {
		s.live[serviceOf(k.target)]++
	}
}

func (s *Store) deleteLocked(k key) {
	old, had := s.m[k]
	if !had {
		return
	}
	delete(s.m, k)
	if k.kind == KindRegistration && !old.Tombstone() {
		svc := serviceOf(k.target)
		if s.live[svc]--; s.live[svc] == 0 {
			delete(s.live, svc)
		}
	}
}

// txn remembers what each key held before a change, so that a failed
// write undoes the change whole.
type txn struct {
	s    *Store
	prev map[key]*Decision // nil: the key was absent
}

func (s *Store) begin() *txn { return &txn{s: s, prev: map[key]*Decision{}} }

func (t *txn) save(k key) {
	if _, ok := t.prev[k]; ok {
		return
	}
	if old, had := t.s.m[k]; had {
		t.prev[k] = &old
	} else {
		t.prev[k] = nil
	}
}

func (t *txn) set(k key, d Decision) { t.save(k); t.s.setLocked(k, d) }
func (t *txn) del(k key)             { t.save(k); t.s.deleteLocked(k) }

func (t *txn) rollback() {
	for k, p := range t.prev {
		if p == nil {
			t.s.deleteLocked(k)
		} else {
			t.s.setLocked(k, *p)
		}
	}
}

// serviceOf is the service of a "SVC/ADDR:PORT" target, "" for
// "ADDR:PORT". The service is all before the last slash.
func serviceOf(target string) string {
	if i := strings.LastIndexByte(target, '/'); i >= 0 {
		return target[:i]
	}
	return ""
}

// refusals sums up the peer's decisions that were not taken: a count and
// the first few reasons, so that a peer sending thousands of bad entries
// makes one short error, not thousands of lines.
type refusals struct {
	n     int
	first []error
}

func (r *refusals) add(err error) {
	r.n++
	if len(r.first) < 3 {
		r.first = append(r.first, err)
	}
}

func (r *refusals) err() error {
	if r.n == 0 {
		return nil
	}
	msgs := make([]string, len(r.first))
	for i, e := range r.first {
		msgs[i] = e.Error()
	}
	more := ""
	if r.n > len(r.first) {
		more = fmt.Sprintf("; and %d more", r.n-len(r.first))
	}
	err := fmt.Errorf("%d decisions not taken: %s%s", r.n, strings.Join(msgs, "; "), more)
	for _, e := range r.first {
		if errors.Is(e, ErrLimit) {
			return fmt.Errorf("%w (%w)", err, ErrLimit)
		}
	}
	return err
}
