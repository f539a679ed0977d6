package ipvs

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fuzzBytes hands out the fuzzer's bytes, then zeros.
type fuzzBytes []byte

func (f *fuzzBytes) n(k int) int {
	if len(*f) == 0 {
		return 0
	}
	c := (*f)[0]
	*f = (*f)[1:]
	return int(c) % k
}

var (
	fuzzKeys = []ServiceKey{
		tcp("10.0.0.100", 80),
		key(UDP, "10.0.0.100", 80),
		key(SCTP, "10.0.0.101", 80),
		tcp("2001:db8::100", 80),
		{Family: 4, FWMark: 1},
		{Family: 6, FWMark: 1},
	}
	fuzzAddrs = map[int][]string{
		4: {"10.0.0.21", "10.0.0.22", "10.0.0.23", "10.0.0.24"},
		6: {"2001:db8::21", "2001:db8::22", "2001:db8::23"},
	}
	fuzzSched  = []string{"rr", "wrr", "wlc", "sh", "mh"}
	fuzzEncaps = []Encap{
		{},
		{Type: TunnelGUE, Port: 6080},
		{Type: TunnelGUE, Port: 6081, Checksum: TunnelRemoteChecksum},
		{Type: TunnelGRE, Checksum: TunnelChecksumOn},
	}
)

// fuzzService builds a valid service for k from the fuzzer's bytes.
func fuzzService(f *fuzzBytes, k ServiceKey) Service {
	s := Service{Key: k, Scheduler: fuzzSched[f.n(len(fuzzSched))]}
	if f.n(3) == 0 {
		s.Flags = FlagSchedFallback
	}
	if f.n(3) == 0 {
		s.Persistent = true
		s.Timeout = time.Duration(f.n(3)) * 100 * time.Second
		s.Netmask = []int{0, 8, 24}[f.n(3)]
	}
	if k.Protocol == UDP || k.FWMark != 0 {
		if f.n(2) == 0 {
			s.Flags |= FlagOnePacket
		}
		if s.Persistent && f.n(2) == 0 {
			s.PE = "sip"
		}
	}
	ports := []uint16{k.Port, 8080}
	for _, a := range fuzzAddrs[k.Family] {
		for _, p := range ports {
			if f.n(3) != 0 {
				continue
			}
			d := Destination{Addr: netip.MustParseAddr(a), Port: p, Weight: int32(f.n(4)), Forward: []Forward{Route, Masq, Tunnel}[f.n(3)]}
			if d.Forward == Tunnel {
				d.Encap = fuzzEncaps[f.n(len(fuzzEncaps))]
			}
			if f.n(4) == 0 {
				d.Upper = uint32(f.n(50) + 1)
				d.Lower = uint32(f.n(int(d.Upper) + 1))
			}
			d.ActiveConns = uint32(f.n(3)) // only the Fake pre-state keeps these
			s.Destinations = append(s.Destinations, d)
		}
	}
	if f.n(4) == 0 {
		sorry := Destination{Addr: netip.MustParseAddr(map[int]string{4: "10.0.0.250", 6: "2001:db8::250"}[k.Family]), Forward: Route}
		s.Sorry = &sorry
	}
	return s
}

func fuzzState(f *fuzzBytes) []Service {
	var out []Service
	for _, k := range fuzzKeys {
		if f.n(2) == 0 {
			out = append(out, fuzzService(f, k))
		}
	}
	return out
}

// FuzzDiff: from any kernel table (foreign services included), through a
// first desired state, random drift, and a second desired state, the
// reconciler converges within two passes, the third pass writes nothing, and
// the table is exactly the desired state plus the untouched foreign services.
func FuzzDiff(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01"))
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := fuzzBytes(data)
		fake := NewFake()
		clk := newClock()
		drain := 10 * time.Second
		if fb.n(2) == 0 {
			drain = -1
		}
		rec, err := New(Config{Kernel: fake, Now: clk.Now, DrainTimeout: drain, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range fuzzState(&fb) {
			fake.Put(s) // whatever was there before the daemon: foreign
		}
		desired1, desired2 := fuzzState(&fb), fuzzState(&fb)
		ctx := context.Background()
		if _, err := rec.Apply(ctx, desired1); err != nil {
			t.Fatalf("first Apply: %v", err)
		}

		fuzzDrift(&fb, fake)

		foreign := foreignOf(fake, rec.Owned(), desired2)

		convergeTo(t, ctx, rec, fake, clk, drain, desired2, foreign)
	})
}

// fuzzDrift changes the table behind the reconciler's back, as an operator
// would: a flush, deleted or re-weighted (or re-encapsulated) destinations,
// a hand-made service.
func fuzzDrift(fb *fuzzBytes, fake *Fake) {
	switch fb.n(4) {
	case 0:
		fake.Flush()
	case 1:
		for _, s := range fake.Snapshot() {
			for _, d := range s.Destinations {
				if fb.n(2) == 0 {
					fake.RemoveDest(s.Key, d.AddrPort())
				} else {
					fake.Edit(s.Key, d.AddrPort(), func(d *Destination) {
						d.Weight += int32(fb.n(3))
						if d.Forward == Tunnel {
							d.Encap = fuzzEncaps[fb.n(len(fuzzEncaps))]
						}
					})
				}
			}
		}
	case 2:
		fake.Put(fuzzService(fb, fuzzKeys[fb.n(len(fuzzKeys))]))
	}
}

// foreignOf lists the services in the table that no desired state names
// and the reconciler does not own: it must leave them as they are.
func foreignOf(fake *Fake, owned []ServiceKey, desired ...[]Service) []Service {
	want := map[ServiceKey]bool{}
	for _, d := range desired {
		for _, s := range d {
			want[s.Key] = true
		}
	}
	var foreign []Service
	for _, s := range fake.Snapshot() {
		if !want[s.Key] && !slices.Contains(owned, s.Key) {
			foreign = append(foreign, s)
		}
	}
	return foreign
}

// convergeTo applies desired three times: the third pass must write
// nothing, and the table must then be desired plus the foreign services,
// with exactly the desired keys owned. It returns the table as dump prints it.
func convergeTo(t *testing.T, ctx context.Context, rec *Reconciler, fake *Fake, clk *clock, drain time.Duration, desired, foreign []Service) string {
	t.Helper()
	var writes []string
	for pass := range 3 {
		fake.ResetOps()
		res, err := rec.Apply(ctx, desired)
		if err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		writes = writes[:0]
		for _, o := range fake.Writes() {
			writes = append(writes, o.String())
		}
		if pass == 2 && (len(writes) != 0 || res.Changed()) {
			t.Fatalf("third pass still writes: %q (%v)", writes, res)
		}
		clk.Advance(drain + time.Second)
	}
	want := NewFake()
	n, err := normalizeAll(desired)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(n, foreign...) {
		want.Put(s)
	}
	kernel := dump(fake.Snapshot())
	if exp := dump(want.Snapshot()); kernel != exp {
		t.Fatalf("table:\n%s\nwant:\n%s", kernel, exp)
	}
	if len(rec.Owned()) != len(n) {
		t.Fatalf("owned %v, want the %d desired keys", rec.Owned(), len(n))
	}
	return kernel
}
