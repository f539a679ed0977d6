package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	web = tcp("10.0.0.100", 80)
	api = tcp("10.0.0.101", 443)
)

func webSvc(w21, w22 int32) Service {
	return svc(web, dst("10.0.0.21", 80, w21), dst("10.0.0.22", 80, w22))
}

func TestApplyCreatesMissing(t *testing.T) {
	e := newEnv(t)
	p := svc(api, dst("10.0.0.31", 443, 1))
	p.Persistent, p.Timeout, p.Netmask = true, 600*time.Second, 24
	res, w := e.apply(webSvc(1, 2), p)
	eqStrings(t, "writes", w, []string{
		"create-service TCP 10.0.0.100:80",
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
		"create-service TCP 10.0.0.101:443",
		"create-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=1",
	})
	if res != (Result{Created: 5}) {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2), p))
}

func TestUnchangedIsZeroOps(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	res, w := e.apply(webSvc(1, 2))
	if len(w) != 0 || res != (Result{}) {
		t.Errorf("second Apply wrote %q, result %v", w, res)
	}
	ops := e.fake.Ops()
	if len(ops) != 1 || ops[0].Kind != OpListServices {
		t.Errorf("second Apply made calls %v, want one list", ops)
	}
}

func TestWeightChangeIsOneUpdate(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	res, w := e.apply(webSvc(1, 5), svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=5"})
	if res != (Result{Updated: 1}) {
		t.Errorf("result %v", res)
	}
	// Weight 0 (a failed check) is still an update, never a delete.
	_, w = e.apply(webSvc(1, 0), svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0"})
}

func TestDestinationConfigChanges(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	for _, mod := range []func(*Destination){
		func(d *Destination) { d.Upper, d.Lower = 100, 10 },
		func(d *Destination) { d.Forward = Tunnel },
		func(d *Destination) { d.Forward, d.Encap = Tunnel, Encap{Type: TunnelGUE, Port: 6080} },
		func(d *Destination) {
			d.Forward, d.Encap = Tunnel, Encap{Type: TunnelGUE, Port: 6081, Checksum: TunnelRemoteChecksum}
		},
		func(d *Destination) { d.Forward, d.Encap = Tunnel, Encap{Type: TunnelGRE, Checksum: TunnelChecksumOn} },
		func(d *Destination) { d.Forward = Masq },
	} {
		s := webSvc(1, 2)
		mod(&s.Destinations[0])
		_, w := e.apply(s)
		eqStrings(t, "writes", w, []string{"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1"})
		e.checkTable(mustNormalize(t, s))
	}
}

func TestServiceConfigChanges(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	for _, mod := range []func(*Service){
		func(s *Service) { s.Scheduler = "sh" },
		func(s *Service) { s.Scheduler, s.Flags = "sh", FlagSchedFallback|FlagSchedPort },
		func(s *Service) { s.Persistent = true },
		func(s *Service) { s.Persistent, s.Timeout = true, 60*time.Second },
		func(s *Service) { s.Persistent, s.Timeout, s.Netmask = true, 60*time.Second, 24 },
		func(s *Service) {},
	} {
		s := webSvc(1, 2)
		mod(&s)
		res, w := e.apply(s)
		eqStrings(t, "writes", w, []string{"update-service TCP 10.0.0.100:80"})
		if res != (Result{Updated: 1}) {
			t.Errorf("result %v", res)
		}
		e.checkTable(mustNormalize(t, s))
	}
}

// ops and a persistence engine are service settings like any other: a
// change is one update, and the same again is nothing.
func TestOnePacketAndPersistenceEngine(t *testing.T) {
	e := newEnv(t)
	sip := svc(key(UDP, "10.0.0.100", 5060), dst("10.0.0.21", 5060, 1))
	e.apply(sip)
	for _, mod := range []func(*Service){
		func(s *Service) { s.Flags = FlagOnePacket },
		func(s *Service) { s.Flags, s.Persistent = FlagOnePacket, true },
		func(s *Service) { s.Flags, s.Persistent, s.PE = FlagOnePacket, true, "sip" },
		func(s *Service) { s.Persistent, s.PE = true, "sip" },
		func(s *Service) { s.Persistent = true },
	} {
		s := sip
		mod(&s)
		_, w := e.apply(s)
		eqStrings(t, "writes", w, []string{"update-service UDP 10.0.0.100:5060"})
		e.checkTable(mustNormalize(t, s))
		if _, w := e.apply(s); len(w) != 0 {
			t.Errorf("again: %q", w)
		}
	}
}

// A drained tunnel destination keeps its encapsulation: the weight-0
// update sends it as the kernel has it.
func TestDrainKeepsEncap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = time.Minute })
	gue := Destination{Addr: netip.MustParseAddr("10.0.0.22"), Port: 80, Weight: 1, Forward: Tunnel, Encap: Encap{Type: TunnelGUE, Port: 6080, Checksum: TunnelChecksumOn}}
	e.apply(svc(web, dst("10.0.0.21", 80, 1), gue))
	e.fake.Edit(web, gue.AddrPort(), func(d *Destination) { d.ActiveConns = 1 })
	_, w := e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0"})
	gue.Weight, gue.ActiveConns = 0, 1
	for _, s := range e.fake.Snapshot() {
		if got := s.Destinations[1]; got != gue {
			t.Errorf("drained: %+v, want %+v", got, gue)
		}
	}
}

func TestAdoptionAfterRestartIsZeroWrites(t *testing.T) {
	state := filepath.Join(t.TempDir(), "run", "owned.json")
	e := newEnv(t, func(c *Config) { c.StatePath = state })
	desired := []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))}
	e.apply(desired...)

	e.restart()
	res, w := e.apply(desired...)
	if len(w) != 0 || res.Changed() {
		t.Errorf("restart with the same config wrote %q", w)
	}

	// No state file at all (first run on a box an operator prepared):
	// matching services are adopted as they are, and become owned.
	os.Remove(state)
	e.restart()
	if _, w = e.apply(desired...); len(w) != 0 {
		t.Errorf("adoption wrote %q", w)
	}
	if got := e.rec.Owned(); len(got) != 2 || got[0] != web || got[1] != api {
		t.Errorf("owned %v", got)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file not written: %v", err)
	}
}

func TestRestartRemovesServiceDroppedWhileDown(t *testing.T) {
	state := filepath.Join(t.TempDir(), "owned.json")
	e := newEnv(t, func(c *Config) { c.StatePath = state })
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))

	e.restart()
	res, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=0"})
	if res.Drained != 1 {
		t.Errorf("result %v", res)
	}
	// No connections: the next pass deletes the service in one request.
	res, w = e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{"delete-service TCP 10.0.0.101:443"})
	if res != (Result{Deleted: 1}) {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2)))

	// The deletion is remembered across another restart.
	e.restart()
	if got := e.rec.Owned(); len(got) != 1 || got[0] != web {
		t.Errorf("owned after restart %v", got)
	}
}

func TestForeignServiceUntouched(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = -1 })
	foreign := svc(tcp("10.0.0.200", 22), dst("10.0.0.50", 22, 3))
	foreignV6 := svc(tcp("2001:db8::200", 22), dst("2001:db8::50", 22, 3))
	e.fake.Put(foreign)
	e.fake.Put(foreignV6)

	e.apply(webSvc(1, 2))
	e.apply(webSvc(1, 7))
	_, w := e.apply()
	eqStrings(t, "writes", w, []string{"delete-service TCP 10.0.0.100:80"})
	for _, o := range e.fake.Ops() {
		if o.Service == foreign.Key || o.Service == foreignV6.Key {
			t.Errorf("foreign service touched: %s", o)
		}
	}
	e.checkTable(nil, foreign, foreignV6)
}

func TestAdoptedServiceLosesUndesiredDestinations(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = -1 })
	hand := webSvc(1, 2)
	hand.Destinations = append(hand.Destinations, dst("10.0.0.99", 80, 1))
	e.fake.Put(hand)
	_, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.99:80 in TCP 10.0.0.100:80"})
}

func TestDrainByConnections(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns, d.InactiveConns = 3, 9 })

	one := svc(web, dst("10.0.0.21", 80, 1))
	res, w := e.apply(one)
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0"})
	if res != (Result{Drained: 1, Draining: 1}) {
		t.Errorf("result %v", res)
	}
	e.clock.Advance(time.Minute)
	res, w = e.apply(one)
	if len(w) != 0 || res.Draining != 1 {
		t.Errorf("while connections remain: writes %q result %v", w, res)
	}
	// Inactive connections do not hold a drain.
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 0 })
	res, w = e.apply(one)
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80"})
	if res != (Result{Deleted: 1}) {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, one))
}

func TestDrainByTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = 90 * time.Second })
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 5 })
	one := svc(web, dst("10.0.0.21", 80, 1))
	e.apply(one)
	e.clock.Advance(89 * time.Second)
	if _, w := e.apply(one); len(w) != 0 {
		t.Errorf("before the timeout: %q", w)
	}
	e.clock.Advance(time.Second)
	_, w := e.apply(one)
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80"})
}

// A reload that shortens drain_timeout applies to drains under way.
func TestDrainTimeoutChangedMidDrain(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = time.Hour })
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 5 })
	one := svc(web, dst("10.0.0.21", 80, 1))
	e.apply(one)
	e.clock.Advance(2 * time.Minute)
	if _, w := e.apply(one); len(w) != 0 {
		t.Errorf("within the old timeout: %q", w)
	}
	e.rec.SetTimings(time.Minute, 0)
	_, w := e.apply(one)
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80"})
}

func TestDrainedDestinationComesBack(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = time.Minute })
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 5 })
	e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	_, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2"})
	if res, _ := e.apply(webSvc(1, 2)); res.Draining != 0 {
		t.Errorf("still draining: %v", res)
	}
	// A later removal starts a fresh drain clock.
	e.clock.Advance(2 * time.Minute)
	e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	if _, w := e.apply(svc(web, dst("10.0.0.21", 80, 1))); len(w) != 0 {
		t.Errorf("old drain clock reused: %q", w)
	}
}

func TestDrainWeightRaisedByHandIsRepaired(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 5 })
	e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.Weight = 4 })
	res, w := e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	eqStrings(t, "writes", w, []string{"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0"})
	if res.Drained != 1 || res.Repaired != 1 {
		t.Errorf("result %v", res)
	}
}

func TestRemovedServiceDrainsThenGoes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = time.Hour })
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 2 })

	keep := svc(api, dst("10.0.0.31", 443, 1))
	_, w := e.apply(keep)
	eqStrings(t, "writes", w, []string{
		"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=0",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=0",
	})
	// .21 is idle and goes; .22 still has connections, so the service stays.
	_, w = e.apply(keep)
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.21:80 in TCP 10.0.0.100:80"})
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 0 })
	_, w = e.apply(keep)
	eqStrings(t, "writes", w, []string{"delete-service TCP 10.0.0.100:80"})
	e.checkTable(mustNormalize(t, keep))
	if got := e.rec.Owned(); len(got) != 1 || got[0] != api {
		t.Errorf("owned %v", got)
	}
}

func TestNoDrainWhenTimeoutNegative(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = -1 })
	e.apply(webSvc(1, 2))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.ActiveConns = 2 })
	_, w := e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80"})
}

func TestDriftRepairAfterFlush(t *testing.T) {
	e := newEnv(t)
	desired := []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))}
	e.apply(desired...)
	e.fake.Flush() // ipvsadm -C
	res, _ := e.apply(desired...)
	if res != (Result{Created: 5, Repaired: 5}) {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, desired...))
	if n := len(e.logs.matching("WARN ipvs: repaired drift")); n != 5 {
		t.Errorf("%d repair warnings logged, want 5", n)
	}
}

func TestDriftRepairDestinations(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	e.fake.RemoveDest(web, ap("10.0.0.21:80"))
	e.fake.Edit(web, ap("10.0.0.22:80"), func(d *Destination) { d.Weight = 100 })
	res, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
	})
	if res != (Result{Created: 1, Updated: 1, Repaired: 2}) {
		t.Errorf("result %v", res)
	}
	// A configuration change is not a repair.
	if res, _ := e.apply(webSvc(3, 2)); res.Repaired != 0 {
		t.Errorf("config change counted as repair: %v", res)
	}
}

// With a cached view, drift stays until the caller's resync: Invalidate
// makes the next Apply read the kernel whole and put the table back.
func TestInvalidateRepairsDrift(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CacheFor = time.Hour })
	want := dump(mustNormalize(t, webSvc(1, 2)))
	e.apply(webSvc(1, 2))
	e.fake.Flush()
	if res, _ := e.apply(webSvc(1, 2)); res.Changed() {
		t.Fatalf("Apply within CacheFor read the kernel: %v", res)
	}
	if got := dump(e.fake.Snapshot()); got == want {
		t.Fatal("the flush did not take")
	}
	e.rec.Invalidate()
	res, _ := e.apply(webSvc(1, 2))
	if res.Repaired == 0 {
		t.Errorf("Apply after Invalidate repaired nothing: %v", res)
	}
	if got := dump(e.fake.Snapshot()); got != want {
		t.Errorf("table after the resync:\n%s\nwant:\n%s", got, want)
	}
}

func TestPartialFailureThenRepair(t *testing.T) {
	e := newEnv(t)
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
	if !errors.Is(err, syscall.ENOBUFS) {
		t.Error("errno lost")
	}
	if res != (Result{Created: 4, Errors: 1}) {
		t.Errorf("result %v", res)
	}
	if n := len(e.logs.matching("ERROR ipvs: kernel write failed")); n != 1 {
		t.Errorf("%d error logs", n)
	}

	e.fake.SetFault(nil)
	res, w := e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	eqStrings(t, "writes", w, []string{"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2"})
	if res.Created != 1 || res.Errors != 0 {
		t.Errorf("result %v", res)
	}
}

func TestFailedServiceCreateSkipsItsDestinations(t *testing.T) {
	e := newEnv(t)
	e.fake.FailNext(OpCreateService, syscall.EINVAL)
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))})
	if err == nil || !strings.Contains(err.Error(), "create service TCP 10.0.0.100:80: invalid argument") {
		t.Errorf("error %v", err)
	}
	eqStrings(t, "writes", e.writes(), []string{
		"create-service TCP 10.0.0.100:80: invalid argument",
		"create-service TCP 10.0.0.101:443",
		"create-destination 10.0.0.31:443 in TCP 10.0.0.101:443 weight=1",
	})
	if res != (Result{Created: 2, Errors: 1}) {
		t.Errorf("result %v", res)
	}
	res, _ = e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	if res.Created != 3 {
		t.Errorf("repair pass %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))))
}

func TestCreateServiceExistsRereadsAndUpdates(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = -1 })
	// Another actor creates the service between our read and our create.
	racer := svc(web, dst("10.0.0.22", 80, 9), dst("10.0.0.77", 80, 1))
	racer.Scheduler = "rr"
	var once sync.Once
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateService {
			once.Do(func() { e.fake.Put(racer) })
		}
		return nil
	})
	_, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{
		"create-service TCP 10.0.0.100:80: file exists",
		"update-service TCP 10.0.0.100:80",
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
		"delete-destination 10.0.0.77:80 in TCP 10.0.0.100:80",
	})
	e.checkTable(mustNormalize(t, webSvc(1, 2)))
}

func TestCreateDestinationExists(t *testing.T) {
	e := newEnv(t)
	e.apply(svc(web, dst("10.0.0.21", 80, 1)))
	var once sync.Once
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateDestination {
			once.Do(func() {
				e.fake.Put(svc(web, dst("10.0.0.21", 80, 1), dst("10.0.0.22", 80, 7)))
			})
		}
		return nil
	})
	res, w := e.apply(webSvc(1, 2))
	eqStrings(t, "writes", w, []string{
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2: file exists",
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
	})
	if res.Errors != 0 || res.Updated != 1 {
		t.Errorf("result %v", res)
	}
}

func TestUpdateOfVanishedDestinationRecreates(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	var once sync.Once
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpUpdateDestination {
			once.Do(func() { e.fake.RemoveDest(web, o.Dest) })
		}
		return nil
	})
	_, w := e.apply(webSvc(1, 5))
	eqStrings(t, "writes", w, []string{
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=5: no such file or directory",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=5",
	})
	e.checkTable(mustNormalize(t, webSvc(1, 5)))
}

func TestDeleteOfVanishedObjectIsFine(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = -1 })
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.fake.SetFault(func(o Op) error {
		switch o.Kind {
		case OpDeleteDestination:
			e.fake.RemoveDest(o.Service, o.Dest)
		case OpDeleteService:
			e.fake.Remove(o.Service)
		}
		return nil
	})
	e.fake.ResetOps()
	res, err := e.rec.Apply(context.Background(), []Service{svc(web, dst("10.0.0.21", 80, 1))})
	if err != nil || res.Errors != 0 {
		t.Fatalf("Apply: %v %v", res, err)
	}
	eqStrings(t, "writes", e.writes(), []string{
		"delete-destination 10.0.0.22:80 in TCP 10.0.0.100:80: no such file or directory",
		"delete-service TCP 10.0.0.101:443: no such process",
	})
	if got := e.rec.Owned(); len(got) != 1 {
		t.Errorf("owned %v", got)
	}
}

func TestListFailureWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.fake.FailNext(OpListServices, syscall.ENOBUFS)
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2)})
	if !errors.Is(err, syscall.ENOBUFS) || !strings.Contains(err.Error(), "read kernel table") {
		t.Errorf("error %v", err)
	}
	if res.Errors != 1 || len(e.fake.Writes()) != 0 {
		t.Errorf("result %v writes %v", res, e.fake.Writes())
	}
	// Resync retries the remembered state.
	if _, err := e.rec.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2)))
}

func TestCancelledContextStopsAndNextPassRepairs(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateDestination {
			cancel()
		}
		return nil
	})
	_, err := e.rec.Apply(ctx, []Service{webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if n := len(e.fake.Writes()); n != 2 {
		t.Errorf("%d writes after cancel, want 2", n)
	}
	e.fake.SetFault(nil)
	e.apply(webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1)))
	e.checkTable(mustNormalize(t, webSvc(1, 2), svc(api, dst("10.0.0.31", 443, 1))))
}

func TestFamiliesAndProtocols(t *testing.T) {
	v6 := svc(tcp("2001:db8::100", 80), dst("2001:db8::21", 80, 1), dst("2001:db8::22", 8080, 2))
	v6.Persistent, v6.Netmask = true, 64
	udp := svc(key(UDP, "10.0.0.100", 53), dst("10.0.0.21", 53, 1))
	sctp := svc(key(SCTP, "10.0.0.100", 3868), dst("10.0.0.21", 3868, 1))
	udp6 := svc(key(UDP, "2001:db8::100", 53), dst("2001:db8::21", 0, 1))
	fwm := Service{Key: ServiceKey{Family: 4, FWMark: 7}, Scheduler: "mh", Flags: FlagSchedPort,
		Destinations: []Destination{dst("10.0.0.21", 0, 1), dst("10.0.0.22", 0, 1)}}
	fwm6 := Service{Key: ServiceKey{Family: 6, FWMark: 7}, Scheduler: "sh",
		Destinations: []Destination{dst("2001:db8::21", 0, 1)}}
	// Same address and port, other protocol: a different service.
	tcpWeb := webSvc(1, 1)
	all := []Service{v6, udp, sctp, udp6, fwm, fwm6, tcpWeb}

	e := newEnv(t)
	res, _ := e.apply(all...)
	if res.Created != 7+10 || res.Errors != 0 {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, all...))
	if _, w := e.apply(all...); len(w) != 0 {
		t.Errorf("second Apply wrote %q", w)
	}

	v6.Destinations[1].Weight = 9
	fwm.Destinations[0].Weight = 4
	udp.Destinations[0].Weight = 3
	_, w := e.apply(v6, udp, sctp, udp6, fwm, fwm6, tcpWeb)
	eqStrings(t, "writes", w, []string{
		"update-destination 10.0.0.21:53 in UDP 10.0.0.100:53 weight=3",
		"update-destination 10.0.0.21:0 in FWM 7 weight=4",
		"update-destination [2001:db8::22]:8080 in TCP [2001:db8::100]:80 weight=9",
	})
	// Dropping the v6 fwmark service leaves the v4 one alone.
	_, w = e.apply(v6, udp, sctp, udp6, fwm, tcpWeb)
	eqStrings(t, "writes", w, []string{"update-destination [2001:db8::21]:0 in FWM 7 IPv6 weight=0"})
	_, w = e.apply(v6, udp, sctp, udp6, fwm, tcpWeb)
	eqStrings(t, "writes", w, []string{"delete-service FWM 7 IPv6"})
}

func TestSorryServer(t *testing.T) {
	sorry := dst("10.0.0.250", 80, 0)
	with := func(w21, w22 int32) Service {
		s := webSvc(w21, w22)
		s.Sorry = &sorry
		return s
	}
	e := newEnv(t)
	_, w := e.apply(with(1, 0))
	if len(w) != 3 {
		t.Errorf("sorry server programmed while a real server has weight: %q", w)
	}
	_, w = e.apply(with(0, 0))
	eqStrings(t, "writes", w, []string{
		"update-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=0",
		"create-destination 10.0.0.250:80 in TCP 10.0.0.100:80 weight=1",
	})
	e.fake.Edit(web, ap("10.0.0.250:80"), func(d *Destination) { d.ActiveConns = 4 })
	_, w = e.apply(with(0, 3))
	eqStrings(t, "writes", w, []string{
		"update-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=3",
		"update-destination 10.0.0.250:80 in TCP 10.0.0.100:80 weight=0",
	})
	e.fake.Edit(web, ap("10.0.0.250:80"), func(d *Destination) { d.ActiveConns = 0 })
	_, w = e.apply(with(0, 3))
	eqStrings(t, "writes", w, []string{"delete-destination 10.0.0.250:80 in TCP 10.0.0.100:80"})
}

func TestInvalidDesiredStateIsRefusedBeforeAnyCall(t *testing.T) {
	e := newEnv(t)
	bad := webSvc(1, -1)
	dup := webSvc(1, 1)
	res, err := e.rec.Apply(context.Background(), []Service{bad, svc(api), dup, {Key: ServiceKey{Family: 5}}})
	if err == nil || res.Errors != 1 {
		t.Fatalf("accepted: %v %v", res, err)
	}
	for _, want := range []string{"weight -1 out of range", "service 3 (", "family must be 4 or 6"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if ops := e.fake.Ops(); len(ops) != 0 {
		t.Errorf("calls made: %v", ops)
	}
	if _, err := e.rec.Resync(context.Background()); err != nil || len(e.fake.Ops()) != 0 {
		t.Errorf("refused state was remembered")
	}
}

func TestConcurrentApply(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := e.rec.Apply(context.Background(), []Service{webSvc(1, int32(g*20+i))}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	final := webSvc(1, 1000)
	e.apply(final)
	if _, w := e.apply(final); len(w) != 0 {
		t.Errorf("not converged: %q", w)
	}
	e.checkTable(mustNormalize(t, final))
}

func TestOwnershipClaimedBeforeCreate(t *testing.T) {
	state := filepath.Join(t.TempDir(), "owned.json")
	e := newEnv(t, func(c *Config) { c.StatePath = state })
	var sawState bool
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpCreateService {
			owned, err := loadOwned(state)
			sawState = err == nil && owned[o.Service]
		}
		return nil
	})
	e.apply(webSvc(1, 2))
	if !sawState {
		t.Error("service created before its ownership reached the state file")
	}
}

func TestUnwritableStateStillPrograms(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.StatePath = filepath.Join(blocker, "owned.json") })
	res, err := e.rec.Apply(context.Background(), []Service{webSvc(1, 2)})
	if err == nil || !strings.Contains(err.Error(), "ownership state") {
		t.Errorf("error %v", err)
	}
	if res.Created != 3 || res.Errors == 0 {
		t.Errorf("result %v", res)
	}
	e.checkTable(mustNormalize(t, webSvc(1, 2)))
}

func TestCorruptStateFileIsIgnored(t *testing.T) {
	state := filepath.Join(t.TempDir(), "owned.json")
	if err := os.WriteFile(state, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.StatePath = state })
	if n := len(e.logs.matching("WARN ipvs: ignoring ownership state")); n != 1 {
		t.Errorf("%d warnings", n)
	}
	e.apply(webSvc(1, 2))
	owned, err := loadOwned(state)
	if err != nil || !owned[web] || len(owned) != 1 {
		t.Errorf("state not rewritten: %v %v", owned, err)
	}
}

func TestNewNeedsKernel(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted a nil Kernel")
	}
}

func TestMissingSchedulerModuleIsReportedNotRetried(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	s := webSvc(1, 2)
	s.Scheduler = "mh"
	e.fake.FailNext(OpUpdateService, syscall.ENOENT) // the kernel's answer when ip_vs_mh cannot load
	e.fake.ResetOps()
	_, err := e.rec.Apply(context.Background(), []Service{s})
	const msg = "update service TCP 10.0.0.100:80: no such file or directory (is kernel module ip_vs_mh available?)"
	if err == nil || err.Error() != msg {
		t.Errorf("error %q, want %q", err, msg)
	}
	for _, o := range e.fake.Ops() {
		if o.Kind == OpGetService {
			t.Errorf("ENOENT on a service update was taken for a vanished service")
		}
	}
}

func TestUpdateOfVanishedServiceRecreates(t *testing.T) {
	e := newEnv(t)
	e.apply(webSvc(1, 2))
	s := webSvc(1, 2)
	s.Scheduler = "rr"
	var once sync.Once
	e.fake.SetFault(func(o Op) error {
		if o.Kind == OpUpdateService {
			once.Do(func() { e.fake.Remove(web) })
		}
		return nil
	})
	_, w := e.apply(s)
	eqStrings(t, "writes", w, []string{
		"update-service TCP 10.0.0.100:80: no such process",
		"create-service TCP 10.0.0.100:80",
		"create-destination 10.0.0.21:80 in TCP 10.0.0.100:80 weight=1",
		"create-destination 10.0.0.22:80 in TCP 10.0.0.100:80 weight=2",
	})
	e.checkTable(mustNormalize(t, s))
}
