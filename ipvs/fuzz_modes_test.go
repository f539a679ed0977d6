package ipvs

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"
)

// FuzzDiffModes is FuzzDiff across the ways of writing: with or without
// batches, with or without CacheFor (drift is then repaired by a Resync),
// with SetWeight calls, and with writes failing in a pass towards a third
// desired state before the passes towards the second. The reconciler must still converge, the last
// pass must write nothing, the table must be exactly the desired state
// plus the foreign services, and the reconciler's view must match the
// kernel.
func FuzzDiffModes(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte("\x00\x01\x00the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"))
	f.Add([]byte("\x01\x00\x00\x00the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := fuzzBytes(data)
		batch, cache, faults := fb.n(2) == 0, fb.n(2) == 0, fb.n(2) == 0
		fake := NewFake()
		var k Kernel = fake
		if batch {
			k = fake.Batching()
		}
		clk := newClock()
		drain := 10 * time.Second
		if fb.n(2) == 0 {
			drain = -1
		}
		cfg := Config{Kernel: k, Now: clk.Now, DrainTimeout: drain, Logger: slog.New(slog.DiscardHandler)}
		if cache {
			cfg.CacheFor = time.Hour
		}
		rec, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range fuzzState(&fb) {
			fake.Put(s)
		}
		desired1, desired2 := fuzzState(&fb), fuzzState(&fb)
		ctx := context.Background()
		if _, err := rec.Apply(ctx, desired1); err != nil {
			t.Fatalf("first Apply: %v", err)
		}
		for range fb.n(4) {
			if len(desired1) == 0 {
				break
			}
			s := desired1[fb.n(len(desired1))]
			if len(s.Destinations) == 0 {
				continue
			}
			d := s.Destinations[fb.n(len(s.Destinations))]
			if _, err := rec.SetWeight(ctx, s.Key, d.AddrPort(), int32(fb.n(4))); err != nil {
				t.Fatalf("SetWeight %s %s: %v", s.Key, d.AddrPort(), err)
			}
		}

		fuzzDrift(&fb, fake)

		// With faults, a pass towards a third desired state fails some of
		// its writes (some of them done all the same, answers lost) before
		// the passes towards the second: the view must not keep believing
		// what a failed write left unknown.
		var desired3 []Service
		if faults {
			desired3 = fuzzState(&fb)
		}
		// desired3's services are adopted by the faulty pass if foreign.
		foreign := foreignOf(fake, rec.Owned(), desired2, desired3)
		if cache {
			// The view cannot see the drift; a Resync does.
			if _, err := rec.Resync(ctx); err != nil {
				t.Fatalf("Resync: %v", err)
			}
		}
		if faults {
			lost := errors.Join(ErrOutcomeUnknown, syscall.ENOBUFS)
			fake.SetFault(func(o Op) error {
				if !o.Kind.IsWrite() || fb.n(3) != 0 {
					return nil
				}
				return []error{syscall.ENOBUFS, syscall.EINVAL, lost, lost}[fb.n(4)]
			})
			_, _ = rec.Apply(ctx, desired3)
			fake.SetFault(nil)
			clk.Advance(drain + time.Second)
		}

		kernel := convergeTo(t, ctx, rec, fake, clk, drain, desired2, foreign)
		var view []Service
		for _, s := range rec.view {
			view = append(view, *s)
		}
		slices.SortFunc(view, func(a, b Service) int { return a.Key.Compare(b.Key) })
		if got := dump(view); got != kernel || len(rec.doubt) != 0 {
			t.Fatalf("view (doubt %v):\n%s\nkernel:\n%s", rec.doubt, got, kernel)
		}
	})
}
