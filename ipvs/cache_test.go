package ipvs

import (
	"context"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

// calls renders every Kernel call since the last ResetOps.
func (e *env) calls() []string {
	var out []string
	for _, o := range e.fake.Ops() {
		out = append(out, o.String())
	}
	return out
}

func (e *env) setWeight(key ServiceKey, dst string, w int32) Result {
	e.t.Helper()
	e.fake.ResetOps()
	res, err := e.rec.SetWeight(context.Background(), key, ap(dst), w)
	if err != nil {
		e.t.Fatalf("SetWeight: %v", err)
	}
	return res
}

func TestCachedApplyDoesNotReread(t *testing.T) {
	e := newEnv(t, cached)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	res, _ := e.apply(webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=5"})
	if res != (Result{Updated: 1}) {
		t.Errorf("result %v", res)
	}
	// Its own writes keep the view right: no change, no call at all.
	if e.apply(webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1))); len(e.calls()) != 0 {
		t.Errorf("calls %q", e.calls())
	}
	// A new service and a new destination, still without reading.
	e.apply(webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1), dst("10.0.0.32", 443, 1)), svc(tcp("10.0.0.102", 25), dst("10.0.0.41", 25, 1)))
	eqStrings(t, "calls", e.calls(), []string{
		"create-destination 10.0.0.32:443 in TCP 10.0.0.101:443 weight=1",
		"create-service TCP 10.0.0.102:25",
		"create-destination 10.0.0.41:25 in TCP 10.0.0.102:25 weight=1",
	})
}

func TestCacheExpires(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CacheFor = time.Minute })
	e.apply(webSvc(1, 2))
	e.clock.Advance(59 * time.Second)
	if e.apply(webSvc(1, 2)); len(e.calls()) != 0 {
		t.Errorf("fresh view re-read: %q", e.calls())
	}
	e.clock.Advance(time.Second)
	e.apply(webSvc(1, 2))
	eqStrings(t, "calls", e.calls(), []string{"list-services"})
}

// Drift is invisible to the view; Resync reads the kernel and repairs it.
func TestResyncRereadsAndRepairsDrift(t *testing.T) {
	e := newEnv(t, cached)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.fake.RemoveDest(web, ap("10.0.0.21:80"))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.Weight = 100 })
	e.fake.Remove(api)
	if res, _ := e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))); res.Changed() || len(e.calls()) != 0 {
		t.Errorf("cached Apply saw drift: %v %q", res, e.calls())
	}
	e.fake.ResetOps()
	res, err := e.rec.Resync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "calls", e.calls(), []string{
		"list-services",
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
		"create-service TCP 10.0.0.101:443",
		"create-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=1",
	})
	if res != (Result{Created: 3, Updated: 1, Repaired: 4}) {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))))
}

// A destination leaving needs its connection count, which the view does
// not keep up to date: that one service is read, the others are not.
func TestCachedApplyReadsServicesLosingDestinations(t *testing.T) {
	e := newEnv(t, cached)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 3 })
	one := svc(web, dst("10.0.0.21", 80, 1))
	res, _ := e.apply(one, svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.100:80",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0",
	})
	if res != (Result{Drained: 1, Draining: 1}) {
		t.Errorf("result %v", res)
	}
	// Still connections: read again, nothing to do.
	e.apply(one, svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "calls", e.calls(), []string{"get-service TCP 10.0.0.100:80"})
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 0 })
	e.apply(one, svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.100:80",
		"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80",
	})
	// A whole service leaving is read too, until it is gone.
	e.fake.Edit(api, ap("10.0.0.31:443"), func(d *Destination) { d.ActiveConns = 1 })
	e.apply(one)
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.101:443",
		"update-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=0",
	})
	e.fake.Edit(api, ap("10.0.0.31:443"), func(d *Destination) { d.ActiveConns = 0 })
	e.apply(one)
	eqStrings(t, "calls", e.calls(), []string{"get-service TCP 10.0.0.101:443", "delete-service TCP 10.0.0.101:443"})
	if e.apply(one); len(e.calls()) != 0 {
		t.Errorf("calls %q", e.calls())
	}
	e.checkTable(mustNormalize(t, one))
}

// A failed write puts its service in doubt: only that service is read
// before the next cached pass.
func TestFailedWriteInvalidatesItsServiceOnly(t *testing.T) {
	for _, b := range []bool{false, true} {
		e := newEnv(t, cached)
		if b {
			batched(&e.cfg)
			e.restart()
		}
		e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
		e.fake.FailNext(OpUpdateDestination, syscall.ENOBUFS)
		if _, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 7))}); err == nil {
			t.Fatal("no error")
		}
		e.fake.SetFault(nil)
		e.fake.Edit(web, ap("10.0.0.21:80"), func(d *Destination) { d.Weight = 9 }) // drift in that service
		e.apply(webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 7)))
		eqStrings(t, "calls", e.calls(), []string{
			"get-service TCP 10.0.0.100:80",
			"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
			"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=5",
		})
		e.checkTable(mustNormalize(t, webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 7))))
	}
}

// A service the view says is absent but someone made by hand: the create
// meets EEXIST, and the service is read and fixed.
func TestCachedApplyMeetsHandMadeService(t *testing.T) {
	e := newEnv(t, cached, func(c *Config) { c.DrainTimeout = -1 })
	e.apply(webSvc(1, 2))
	e.fake.Put(svc(api, dst("10.0.0.31", 443, 4), dst("10.0.0.99", 443, 1)))
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v %v", res, err)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))))
}

func TestSetWeightIsOneWrite(t *testing.T) {
	e := newEnv(t) // no CacheFor: SetWeight never needs it
	desired := append(bigState(50, 10, 1), webSvc(1, 2))
	e.apply(desired...)
	res := e.setWeight(web, "10.0.0.22:80", 7)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=7"})
	if res != (Result{Updated: 1}) {
		t.Errorf("result %v", res)
	}
	if e.setWeight(web, "10.0.0.22:80", 7); len(e.calls()) != 0 {
		t.Errorf("same weight: calls %q", e.calls())
	}
	// The new weight is part of the desired state from now on.
	e.fake.ResetOps()
	if res, err := e.rec.Resync(context.Background()); err != nil || res.Changed() {
		t.Errorf("Resync after SetWeight: %v %v", res, err)
	}
	desired[len(desired)-1] = webSvc(1, 7)
	e.checkTable(mustNormalize(t, desired...))
	// A failed check (weight 0) is an update too, never a delete.
	e.setWeight(web, "10.0.0.21:80", 0)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=0"})
}

// Through a Batcher, as with Netlink, it is still one write and no read:
// a batch of one.
func TestSetWeightIsOneWriteBatched(t *testing.T) {
	e := newEnv(t, batched)
	e.apply(append(bigState(50, 10, 1), webSvc(1, 2))...)
	before := e.fake.Batches()
	e.setWeight(web, "10.0.0.22:80", 7)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=7"})
	if n := e.fake.Batches() - before; n != 1 {
		t.Errorf("%d batches, want 1", n)
	}
}

func TestSetWeightAddressForms(t *testing.T) {
	e := newEnv(t)
	s := svc(tcp("2001:db8::100", 80), dst("2001:db8::21", 0, 1)) // port 0: the service's
	fwm := Service{Key: ServiceKey{Family: 4, FWMark: 3}, Scheduler: "rr", Destinations: []Destination{dst("10.0.0.21", 0, 1)}}
	e.apply(s, fwm)
	e.setWeight(s.Key, "[2001:db8::21]:0", 4)
	eqStrings(t, "calls", e.calls(), []string{"update-destination [2001:db8::21]:80 in TCP [2001:db8::100]:80 weight=4"})
	e.setWeight(fwm.Key, "10.0.0.21:0", 5)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.21:0 in FWM 3 weight=5"})
	v4mapped := ServiceKey{Family: 4, FWMark: 3}
	e.setWeight(v4mapped, "[::ffff:10.0.0.21]:0", 6)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.21:0 in FWM 3 weight=6"})
}

// The sorry-server rule holds: the last real server losing its weight
// brings the sorry server in; one regaining weight drains it again.
func TestSetWeightSorryServer(t *testing.T) {
	e := newEnv(t)
	sorry := dst("10.0.0.250", 80, 0)
	s := webSvc(1, 2)
	s.Sorry = &sorry
	e.apply(s)
	e.setWeight(web, "10.0.0.21:80", 0)
	eqStrings(t, "calls", e.calls(), []string{"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=0"})
	e.setWeight(web, "10.0.0.22:80", 0)
	eqStrings(t, "calls", e.calls(), []string{
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0",
		"create-destination 10.0.0.250:80 in TCP 10.0.0.100:80 weight=1",
	})
	e.fake.Edit(web, ap("10.0.0.250:80"), func(d *Destination) { d.ActiveConns = 2 })
	res := e.setWeight(web, "10.0.0.21:80", 3)
	// The sorry server leaves: its service is read for connection counts.
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.100:80",
		"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=3",
		"update-destination 10.0.0.250:80 in TCP 10.0.0.100:80 weight=0",
	})
	if res != (Result{Updated: 1, Drained: 1, Draining: 1}) {
		t.Errorf("result %v", res)
	}
	e.fake.Edit(web, ap("10.0.0.250:80"), func(d *Destination) { d.ActiveConns = 0 })
	e.fake.ResetOps()
	if _, err := e.rec.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "calls", e.calls(), []string{"list-services", "delete-destination 10.0.0.250:80 in TCP 10.0.0.100:80"})
	if _, err := e.rec.SetWeight(context.Background(), web, ap("10.0.0.250:80"), 1); err == nil {
		t.Error("the sorry server's weight was set")
	}
}

func TestSetWeightRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.rec.SetWeight(ctx, web, ap("10.0.0.21:80"), 1); err == nil || !strings.Contains(err.Error(), "before the first Apply") {
		t.Errorf("before Apply: %v", err)
	}
	e.apply(webSvc(1, 2))
	e.fake.ResetOps()
	for _, c := range []struct {
		key  ServiceKey
		dst  string
		w    int32
		want string
	}{
		{api, "10.0.0.21:80", 1, "not in the desired state"},
		{web, "10.0.0.23:80", 1, "not a real server of"},
		{web, "10.0.0.21:8080", 1, "not a real server of"},
		{web, "10.0.0.21:80", -1, "out of range"},
		{web, "10.0.0.21:80", MaxWeight + 1, "out of range"},
	} {
		res, err := e.rec.SetWeight(ctx, c.key, ap(c.dst), c.w)
		if err == nil || !strings.Contains(err.Error(), c.want) || res.Errors != 1 {
			t.Errorf("%s %s w=%d: %v %v, want %q", c.key, c.dst, c.w, res, err, c.want)
		}
	}
	if len(e.calls()) != 0 {
		t.Errorf("calls %q", e.calls())
	}
	// Refused weights left the desired state alone.
	if _, err := e.rec.Resync(ctx); err != nil || len(e.fake.Writes()) != 0 {
		t.Errorf("Resync wrote %v (%v)", e.fake.Writes(), err)
	}
}

// SetWeight on a service the view has in doubt reads it first, and a
// vanished destination is put back with the new weight.
func TestSetWeightAfterFailureAndDrift(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.fake.FailNext(OpUpdateDestination, syscall.ENOBUFS)
	if _, err := e.rec.SetWeight(context.Background(), web, ap("10.0.0.22:80"), 5); err == nil {
		t.Fatal("no error")
	}
	e.fake.SetFault(nil)
	e.setWeight(web, "10.0.0.22:80", 6)
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.100:80",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=6",
	})
	// Behind our back, the destination goes: the update meets ENOENT,
	// the service is read and the destination created again.
	e.fake.RemoveDest(web, ap("10.0.0.22:80"))
	e.setWeight(web, "10.0.0.22:80", 7)
	eqStrings(t, "calls", e.calls(), []string{
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=7: no such file or directory",
		"get-service TCP 10.0.0.100:80",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=7",
	})
	e.checkTable(mustNormalize(t, webSvc(1, 7), svc(api, dst("10.0.0.31", 443, 1))))
}

// Before any full read succeeded there is no view: SetWeight reads its
// one service each time.
func TestSetWeightWithoutView(t *testing.T) {
	e := newEnv(t)
	e.fake.Put(webSvc(1, 2))
	e.fake.FailNext(OpListServices, syscall.ENOBUFS)
	if _, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2)}); err == nil {
		t.Fatal("no error")
	}
	e.fake.SetFault(nil)
	e.setWeight(web, "10.0.0.21:80", 4)
	eqStrings(t, "calls", e.calls(), []string{
		"get-service TCP 10.0.0.100:80",
		"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=4",
	})
}

// The cost of SetWeight does not grow with the table.
func BenchmarkSetWeight(b *testing.B) {
	desired := bigState(1000, 10, 1)
	rec, _ := benchReconciler(b, desired)
	key, dst := desired[500].Key, desired[500].Destinations[3].AddrPort()
	i := int32(0)
	b.ReportAllocs()
	for b.Loop() {
		i++
		if res, err := rec.SetWeight(context.Background(), key, dst, 1+i%2); err != nil || res.Updated != 1 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkApplyCachedOneWeight is a whole Apply with one weight changed,
// planned against the view.
func BenchmarkApplyCachedOneWeight(b *testing.B) {
	states := [2][]Service{bigState(1000, 10, 1), bigState(1000, 10, 1)}
	states[1][500].Destinations[3].Weight = 2
	fake := NewFake()
	rec, err := New(Config{Kernel: fake, CacheFor: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rec.Apply(context.Background(), states[0]); err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if res, err := rec.Apply(context.Background(), states[i%2]); err != nil || res.Updated != 1 {
			b.Fatal(res, err)
		}
	}
}
