package vip

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/director-lb/director/vrrp"
)

// Local and Fake are VRRP movers; the interface is declared by its
// consumer, vrrp.
var (
	_ vrrp.Mover = (*Local)(nil)
	_ vrrp.Mover = (*Fake)(nil)
)

func TestFake(t *testing.T) {
	ctx := context.Background()
	var f Fake
	if f.Held() {
		t.Fatal("zero Fake holds")
	}
	if err := f.Take(ctx); err != nil || !f.Held() {
		t.Fatalf("Take: %v, held %v", err, f.Held())
	}
	if err := f.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	f.SetError(CallRelease, boom)
	if err := f.Release(ctx); !errors.Is(err, boom) || !f.Held() {
		t.Fatalf("failing Release: %v, held %v", err, f.Held())
	}
	f.SetError(CallRelease, nil)
	if err := f.Release(ctx); err != nil || f.Held() {
		t.Fatalf("Release: %v, held %v", err, f.Held())
	}
	want := []string{CallTake, CallAnnounce, CallRelease, CallRelease}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Fatalf("Calls = %v, want %v", got, want)
	}
	// Calls returns a copy.
	f.Calls()[0] = "x"
	if f.Calls()[0] != CallTake {
		t.Fatal("Calls exposes internal state")
	}
}

func TestFakeConcurrent(t *testing.T) {
	var f Fake
	var m vrrp.Mover = &f
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_ = m.Take(context.Background())
				_ = m.Announce(context.Background())
				_ = m.Release(context.Background())
			}
		})
	}
	wg.Wait()
	if n := len(f.Calls()); n != 8*300 {
		t.Fatalf("%d calls recorded, want %d", n, 8*300)
	}
}
