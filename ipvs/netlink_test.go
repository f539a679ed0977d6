package ipvs

import (
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	lib "github.com/cloudflare/ipvs"
	"github.com/mdlayher/netlink"
)

// The kernel answers EINVAL to a service without a netmask, so every
// conversion must carry one.
func TestToLibServiceAlwaysHasNetmask(t *testing.T) {
	for _, c := range []struct {
		s     Service
		is4   bool
		bits  int
		flags lib.Flags
		tmo   uint32
	}{
		{svc(web), true, 32, 0, 0},
		{svc(tcp("2001:db8::1", 80)), false, 128, 0, 0},
		{Service{Key: ServiceKey{Family: 4, FWMark: 3}, Scheduler: "rr"}, true, 32, 0, 0},
		{Service{Key: ServiceKey{Family: 6, FWMark: 3}, Scheduler: "rr"}, false, 128, 0, 0},
		{Service{Key: web, Scheduler: "sh", Flags: FlagSchedFallback, Persistent: true, Timeout: 600 * time.Second, Netmask: 24},
			true, 24, lib.ServicePersistent | lib.ServiceSchedulerOpt1, 600},
		{Service{Key: tcp("2001:db8::1", 80), Scheduler: "rr", Persistent: true, Timeout: time.Minute, Netmask: 64},
			false, 64, lib.ServicePersistent, 60},
	} {
		ls := toLibService(c.s)
		if ls.Netmask.Is4() != c.is4 || ls.Netmask.Is6() == c.is4 || ls.Netmask.Bits() != c.bits {
			t.Errorf("%s: netmask %s", c.s.Key, ls.Netmask)
		}
		if ls.Flags != c.flags || ls.Timeout != c.tmo || ls.Scheduler != c.s.Scheduler {
			t.Errorf("%s: flags %s timeout %d scheduler %q", c.s.Key, ls.Flags, ls.Timeout, ls.Scheduler)
		}
		wantFam := lib.INET
		if !c.is4 {
			wantFam = lib.INET6
		}
		if ls.Family != wantFam {
			t.Errorf("%s: family %s", c.s.Key, ls.Family)
		}
		if c.s.Key.FWMark != 0 && (ls.FWMark != c.s.Key.FWMark || ls.Address.IsValid() || ls.Protocol != 0) {
			t.Errorf("%s: fwmark service carries %v", c.s.Key, ls)
		}
	}
}

func TestLibServiceRoundTrip(t *testing.T) {
	for _, s := range []Service{
		{Key: web, Scheduler: "wrr"},
		{Key: key(UDP, "2001:db8::1", 53), Scheduler: "mh", Flags: FlagSchedPort | FlagSchedFallback},
		{Key: key(SCTP, "10.0.0.1", 3868), Scheduler: "rr", Flags: FlagOnePacket},
		{Key: ServiceKey{Family: 6, FWMark: 9}, Scheduler: "sh", Persistent: true, Timeout: 30 * time.Second, Netmask: 48},
		{Key: ServiceKey{Family: 4, FWMark: 9}, Scheduler: "lc", Persistent: true, Timeout: 30 * time.Second, Netmask: 16},
	} {
		ls := toLibService(s)
		ls.Flags |= lib.ServiceHashed // the kernel adds it to every service
		got, err := fromLibService(ls)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != s.Key || !got.sameConfig(&s) || got.Timeout != s.Timeout || got.Netmask != s.Netmask {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
		}
	}
	if _, err := fromLibService(lib.Service{Family: 7}); err == nil {
		t.Error("unknown family accepted")
	}
}

func TestLibDestinationConversion(t *testing.T) {
	d := Destination{Addr: netip.MustParseAddr("10.0.0.21"), Port: 80, Weight: 7, Forward: Route, Upper: 100, Lower: 10}
	ld := toLibDest(d)
	if ld.Family != lib.INET || ld.FwdMethod != lib.DirectRoute || ld.Weight != 7 || ld.UpperThreshold != 100 || ld.LowerThreshold != 10 {
		t.Errorf("toLibDest: %+v", ld)
	}
	if toLibDest(dst("2001:db8::1", 80, 1)).Family != lib.INET6 {
		t.Error("IPv6 destination family")
	}
	for f, lf := range map[Forward]lib.ForwardType{Masq: lib.Masquerade, Tunnel: lib.Tunnel, Route: lib.DirectRoute} {
		if lib.ForwardType(f) != lf {
			t.Errorf("%s is not the kernel's value", f)
		}
	}
	back := fromLibDest(lib.DestinationExtended{Destination: ld, ActiveConnections: 3, InactiveConnections: 4})
	if back.AddrPort() != d.AddrPort() || !back.sameConfig(&d) || back.ActiveConns != 3 || back.InactiveConns != 4 {
		t.Errorf("fromLibDest: %+v", back)
	}
	huge := fromLibDest(lib.DestinationExtended{Destination: lib.Destination{Family: lib.INET, Address: d.Addr, Weight: 1 << 31}})
	if huge.Weight < 0 {
		t.Errorf("weight overflowed: %d", huge.Weight)
	}
}

func TestErrnoOf(t *testing.T) {
	err := errnoOf(&netlink.OpError{Op: "receive", Err: syscall.EEXIST})
	if err != syscall.EEXIST || err.Error() != "file exists" {
		t.Errorf("got %#v", err)
	}
	other := fmt.Errorf("plain")
	if errnoOf(other) != other {
		t.Error("non-errno error changed")
	}
	if errnoOf(nil) != nil {
		t.Error("nil changed")
	}
}

// stubClient stands in for the library's netlink client.
type stubClient struct {
	lib.Client // methods not overridden panic
	svcs       []lib.ServiceExtended
	dests      map[uint16][]lib.DestinationExtended // by service port
	err        error
	sent       []lib.Service
}

func (c *stubClient) Services() ([]lib.ServiceExtended, error) {
	if len(c.svcs) == 0 {
		return nil, os.ErrNotExist
	}
	return c.svcs, c.err
}

func (c *stubClient) Destinations(s lib.Service) ([]lib.DestinationExtended, error) {
	if len(c.dests[s.Port]) == 0 {
		return nil, os.ErrNotExist
	}
	return c.dests[s.Port], nil
}

func (c *stubClient) CreateService(s lib.Service) error {
	c.sent = append(c.sent, s)
	return c.err
}

func TestNetlinkOverLibrary(t *testing.T) {
	c := &stubClient{}
	n := &Netlink{c: c}
	if got, err := n.Services(); err != nil || len(got) != 0 {
		t.Errorf("empty table: %v %v", got, err)
	}
	ls := toLibService(Service{Key: web, Scheduler: "wrr"})
	ls6 := toLibService(Service{Key: tcp("2001:db8::1", 443), Scheduler: "rr"})
	c.svcs = []lib.ServiceExtended{{Service: ls}, {Service: ls6}}
	c.dests = map[uint16][]lib.DestinationExtended{80: {{Destination: toLibDest(dst("10.0.0.21", 80, 4)), ActiveConnections: 2}}}
	got, err := n.Services()
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	if len(got[0].Destinations) != 1 || got[0].Destinations[0].Weight != 4 || got[0].Destinations[0].ActiveConns != 2 {
		t.Errorf("destinations %+v", got[0].Destinations)
	}
	if got[1].Key != tcp("2001:db8::1", 443) || len(got[1].Destinations) != 0 {
		t.Errorf("service without destinations: %+v", got[1])
	}

	c.err = &netlink.OpError{Op: "receive", Err: syscall.EEXIST}
	err = n.CreateService(Service{Key: web, Scheduler: "wrr"})
	if err != syscall.EEXIST {
		t.Errorf("create error %#v", err)
	}
	if len(c.sent) != 1 || !c.sent[0].Netmask.IsValid() {
		t.Errorf("sent %+v", c.sent)
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
