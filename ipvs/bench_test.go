package ipvs

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
)

// bigState is n services of m destinations each.
func bigState(n, m int, weight int32) []Service {
	out := make([]Service, 0, n)
	for i := range n {
		k := ServiceKey{Family: 4, Protocol: TCP, Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
		s := Service{Key: k, Scheduler: "wrr"}
		for j := range m {
			s.Destinations = append(s.Destinations, Destination{
				Addr: netip.AddrFrom4([4]byte{10, 2, byte(j), 1}), Port: 80, Weight: weight, Forward: Route,
			})
		}
		out = append(out, s)
	}
	return out
}

func benchReconciler(b *testing.B, desired []Service) (*Reconciler, *Fake) {
	fake := NewFake()
	rec, err := New(Config{Kernel: fake, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rec.Apply(context.Background(), desired); err != nil {
		b.Fatal(err)
	}
	return rec, fake
}

// BenchmarkDiff is the pure diff of 1,000 services x 10 destinations against
// a converged table (the common periodic pass), without kernel I/O.
func BenchmarkDiff(b *testing.B) {
	desired := bigState(1000, 10, 1)
	rec, fake := benchReconciler(b, desired)
	want, err := normalizeAll(desired)
	if err != nil {
		b.Fatal(err)
	}
	list := fake.Snapshot()
	cur := make(map[ServiceKey]*Service, len(list))
	for i := range list {
		cur[list[i].Key] = &list[i]
	}
	d := rec.differ(rec.now())
	b.ReportAllocs()
	for b.Loop() {
		if plans := d.plan(cur, want); len(plans) != 0 {
			b.Fatalf("%d plans on a converged table", len(plans))
		}
	}
}

// BenchmarkApplyConverged is a whole no-op pass: validation, Fake read, diff.
func BenchmarkApplyConverged(b *testing.B) {
	desired := bigState(1000, 10, 1)
	rec, fake := benchReconciler(b, desired)
	b.ReportAllocs()
	for b.Loop() {
		fake.ResetOps()
		if res, err := rec.Apply(context.Background(), desired); err != nil || res.Changed() {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkApplyWeightChange flips every weight: 10,000 updates per pass.
func BenchmarkApplyWeightChange(b *testing.B) {
	states := [2][]Service{bigState(1000, 10, 1), bigState(1000, 10, 2)}
	rec, fake := benchReconciler(b, states[0])
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		fake.ResetOps()
		if res, err := rec.Apply(context.Background(), states[i%2]); err != nil || res.Updated != 10000 {
			b.Fatal(res, err)
		}
	}
}
