package decisions

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Store holds the current decision for each (Kind, Target), tombstones
// included, and persists them. It is safe for concurrent use.
type Store struct {
	path   string
	now    func() time.Time
	report LoadReport // set by Open

	mu sync.Mutex
	m  map[key]Decision
}

// Open loads the store from path ("" keeps it in memory only). A missing
// file is an empty store; the old overrides.json map format is migrated
// (it is rewritten in the new format on the first change). now is the
// clock, nil for time.Now.
//
// A file with bad entries does not stop the store from opening: they are
// skipped, the file as it was is set aside and rewritten without them,
// and Report says what happened, for the caller to log. Only a file that
// cannot be read at all is an error.
func Open(path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now, m: map[key]Decision{}}
	if path == "" {
		return s, nil
	}
	ds, rep, raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		s.m[keyOf(d)] = d
	}
	if len(rep.Problems) > 0 {
		for i, p := range rep.Problems {
			rep.Problems[i] = fmt.Errorf("%s: %w", path, p)
		}
		if aside, err := setAside(path, raw, now()); err != nil {
			rep.Problems = append(rep.Problems, err)
		} else {
			rep.SetAside = aside
			// Rewritten without the bad entries, so that the next start
			// does not set the same file aside again.
			if err := s.persistLocked(); err != nil {
				rep.Problems = append(rep.Problems, err)
			}
		}
	}
	s.report = rep
	return s, nil
}

// Report is what Open found wrong with the file; empty if nothing.
func (s *Store) Report() LoadReport { return s.report }

// Put records a local decision. A zero At is set to the store's clock.
// changed is false when an existing decision for the same (Kind, Target)
// is as new or newer. On a persistence error nothing changes.
func (s *Store) Put(d Decision) (changed bool, err error) {
	if d.At.IsZero() {
		d.At = s.now()
	}
	n, err := d.normalize()
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[keyOf(n)]
	if had && !newer(n, old) {
		return false, nil
	}
	s.m[keyOf(n)] = n
	if err := s.persistLocked(); err != nil {
		if had {
			s.m[keyOf(n)] = old
		} else {
			delete(s.m, keyOf(n))
		}
		return false, err
	}
	return true, nil
}

// Merge applies decisions from the peer, each by last-writer-wins, and
// returns those that changed the store. Invalid entries are skipped and
// reported in err; valid ones still merge. The store is persisted once;
// if that fails nothing changes and changed is nil.
func (s *Store) Merge(remote []Decision) (changed []Decision, err error) {
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	undo := map[key]*Decision{}
	for _, d := range remote {
		n, err := d.normalize()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := keyOf(n)
		old, had := s.m[k]
		if had && !newer(n, old) {
			continue
		}
		if _, seen := undo[k]; !seen {
			if had {
				undo[k] = &old
			} else {
				undo[k] = nil
			}
		}
		s.m[k] = n
	}
	if len(undo) == 0 {
		return nil, errors.Join(errs...)
	}
	if perr := s.persistLocked(); perr != nil {
		for k, old := range undo {
			if old == nil {
				delete(s.m, k)
			} else {
				s.m[k] = *old
			}
		}
		return nil, errors.Join(append(errs, perr)...)
	}
	changed = make([]Decision, 0, len(undo))
	for k := range undo {
		changed = append(changed, s.m[k])
	}
	changed = sorted(toMap(changed))
	return changed, errors.Join(errs...)
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
	prefix := service + "/"
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[key]Decision{}
	for k, d := range s.m {
		// The service is all before the last slash, so the rest must be
		// the address alone.
		if k.kind == KindRegistration && !d.Tombstone() &&
			strings.HasPrefix(k.target, prefix) && !strings.Contains(k.target[len(prefix):], "/") {
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
	dropped := map[key]Decision{}
	for k, d := range s.m {
		if d.Tombstone() && d.At.Before(cutoff) {
			dropped[k] = d
			delete(s.m, k)
		}
	}
	if len(dropped) == 0 {
		return 0, nil
	}
	if err := s.persistLocked(); err != nil {
		for k, d := range dropped {
			s.m[k] = d
		}
		return 0, err
	}
	return len(dropped), nil
}

func (s *Store) persistLocked() error {
	if s.path == "" {
		return nil
	}
	if err := writeFile(s.path, sorted(s.m)); err != nil {
		return fmt.Errorf("persist decisions: %w", err)
	}
	return nil
}

func toMap(ds []Decision) map[key]Decision {
	m := make(map[key]Decision, len(ds))
	for _, d := range ds {
		m[keyOf(d)] = d
	}
	return m
}
