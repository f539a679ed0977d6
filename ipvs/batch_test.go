package ipvs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// batched makes the env's Reconciler talk to the Fake through Batch.
func batched(c *Config) { c.Kernel = c.Kernel.(*Fake).Batching() }

// cached lets Apply plan against the view for an hour.
func cached(c *Config) { c.CacheFor = time.Hour }

func TestBatchedCreateFromEmpty(t *testing.T) {
	e := newEnv(t, batched)
	desired := bigState(1000, 10, 1)
	res, w := e.apply(desired...)
	if res != (Result{Created: 11000}) {
		t.Errorf("result %v", res)
	}
	if len(w) != 11000 {
		t.Fatalf("%d writes", len(w))
	}
	// 11,000 writes in chunks of reconcilerBatch, nothing one at a time.
	want := (11000 + reconcilerBatch - 1) / reconcilerBatch
	if got := e.fake.Batches(); got != want {
		t.Errorf("%d batches, want %d", got, want)
	}
	for i, o := range e.fake.Writes() {
		if o.Batch != i/reconcilerBatch+1 {
			t.Fatalf("write %d (%s) in batch %d", i, o, o.Batch)
		}
	}
	e.checkTable(mustNormalize(t, desired...))
	if _, w := e.apply(desired...); len(w) != 0 {
		t.Errorf("second Apply wrote %d", len(w))
	}
}

// One failure in a batch is reported against its object, and every other
// write of the batch still happens.
func TestBatchFailureIsAttributed(t *testing.T) {
	e := newEnv(t, batched)
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateDestination && o.Dest == ap("10.0.0.22:80") {
			return syscall.ENOBUFS
		}
		return nil
	})
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))})
	const msg = "create destination 10.0.0.22:80 in TCP 10.0.0.100:80: no buffer space available"
	if err == nil || err.Error() != msg {
		t.Errorf("error %q, want %q", err, msg)
	}
	if res != (Result{Created: 4, Errors: 1}) {
		t.Errorf("result %v", res)
	}
	if e.fake.Batches() != 1 {
		t.Errorf("%d batches", e.fake.Batches())
	}
	e.fake.SetFault(nil)
	_, w := e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "writes", w, []string{"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2"})
}

// The destinations of a service whose create failed were in the same
// batch and fail in turn; only the service's failure is reported.
func TestBatchFailedServiceCreate(t *testing.T) {
	e := newEnv(t, batched)
	e.fake.FailNext(OpCreateService, syscall.EINVAL)
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))})
	if err == nil || err.Error() != "create service TCP 10.0.0.100:80: invalid argument" {
		t.Errorf("error %v", err)
	}
	eqStrings(t, "writes", e.writes(), []string{
		"create-service TCP 10.0.0.100:80: invalid argument",
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1: no such process",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2: no such process",
		"create-service TCP 10.0.0.101:443",
		"create-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=1",
	})
	if res != (Result{Created: 2, Errors: 1}) {
		t.Errorf("result %v", res)
	}
	res, _ = e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	if res != (Result{Created: 3, Repaired: 3}) {
		t.Errorf("repair pass %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))))
}

// A chunk boundary between a failed service create and its destinations:
// those in later chunks are not sent at all.
func TestBatchSkipsDestinationsOfFailedServiceInLaterChunks(t *testing.T) {
	e := newEnv(t, batched)
	desired := bigState(2*reconcilerBatch/11+1, 10, 1)
	// The service created in the first chunk whose destinations straddle
	// the boundary (11 writes per service).
	victim := desired[(reconcilerBatch-1)/11].Key
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateService && o.Service == victim {
			return syscall.EINVAL
		}
		return nil
	})
	res, err := e.rec.Apply(context.Background(), desired)
	if err == nil || res.Errors != 1 {
		t.Errorf("result %v err %v", res, err)
	}
	sent := 0
	for _, o := range e.fake.Writes() {
		if o.Service == victim {
			sent++
			if o.Batch != 1 {
				t.Errorf("sent after its service failed, in batch %d: %s", o.Batch, o)
			}
		}
	}
	if sent == 0 || sent == 11 {
		t.Errorf("%d writes of the victim sent; the test no longer straddles a chunk", sent)
	}
	if res.Created != len(desired)*11-11 {
		t.Errorf("created %d", res.Created)
	}
}

// A create meeting EEXIST in a batch re-reads the service and re-plans it,
// as without batches.
func TestBatchCreateExistsRereads(t *testing.T) {
	e := newEnv(t, batched, func(c *Config) { c.DrainTimeout = -1 })
	racer := svc(web, dst("10.0.0.22", 80, 9), dst("10.0.0.77", 80, 1))
	racer.Scheduler = "rr"
	var once sync.Once
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateService {
			once.Do(func() { e.fake.Put(racer) })
		}
		return nil
	})
	res, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{
		"create-service TCP 10.0.0.100:80: file exists",
		// Already on their way in the same batch:
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2: file exists",
		// After the re-read:
		"update-service TCP 10.0.0.100:80",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
		"delete-destination 10.0.0.77:80 in TCP 10.0.0.100:80",
	})
	if res.Errors != 0 {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2)))
}

// A write whose answer was lost (it happened, as far as the Fake goes) is
// an error, and its service is re-read before the view is used again.
func TestBatchUnknownOutcome(t *testing.T) {
	e := newEnv(t, batched, cached)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	lost := errors.Join(ErrOutcomeUnknown, syscall.ENOBUFS)
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpUpdateDestination {
			return lost
		}
		return nil
	})
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1))})
	if !errors.Is(err, ErrOutcomeUnknown) || res.Errors != 1 || res.Updated != 0 {
		t.Errorf("result %v err %v", res, err)
	}
	e.fake.SetFault(nil)
	e.fake.ResetOps()
	res, err = e.rec.Apply(context.Background(), []Service{webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1))})
	if err != nil || res.Changed() {
		t.Errorf("result %v err %v", res, err)
	}
	var ops []string
	for _, o := range e.fake.Ops() {
		ops = append(ops, o.String())
	}
	eqStrings(t, "calls", ops, []string{"get-service TCP 10.0.0.100:80"})
}

func TestBatchCancelledContextSendsNothingMore(t *testing.T) {
	e := newEnv(t, batched)
	ctx, cancel := context.WithCancel(context.Background())
	desired := bigState(2*reconcilerBatch/11+1, 10, 1)
	e.fake.SetFault(func(o Op) error {
		if o.Kind.IsWrite() {
			cancel() // during the first batch
		}
		return nil
	})
	_, err := e.rec.Apply(ctx, desired)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if n := len(e.fake.Writes()); n != reconcilerBatch || e.fake.Batches() != 1 {
		t.Errorf("%d writes in %d batches after cancel, want the first batch only", n, e.fake.Batches())
	}
	e.fake.SetFault(nil)
	e.apply(desired...)
	e.checkTable(mustNormalize(t, desired...))
}

func TestBatchesAreLogged(t *testing.T) {
	e := newEnv(t, batched)
	e.apply(webSvc(1, 2))
	if n := len(e.logs.matching("DEBUG ipvs: created")); n != 3 {
		t.Errorf("%d creation logs, want 3: %q", n, strings.Join(e.logs.matching("ipvs:"), "\n"))
	}
}

// BenchmarkApplyFromEmptyBatched is the reconciler's own share of
// programming 1,000 services x 10 real servers: validation, diff,
// bookkeeping and batching, over the Fake.
func BenchmarkApplyFromEmptyBatched(b *testing.B) {
	desired := bigState(1000, 10, 1)
	b.ReportAllocs()
	for b.Loop() {
		fake := NewFake()
		rec, err := New(Config{Kernel: fake.Batching(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if res, err := rec.Apply(context.Background(), desired); err != nil || res.Created != 11000 {
			b.Fatal(res, err)
		}
	}
}
