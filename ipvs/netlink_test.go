package ipvs

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// The kernel answers EINVAL to a service without a netmask, so every
// conversion must carry one.
func TestNLServiceAlwaysHasNetmask(t *testing.T) {
	for _, c := range []struct {
		s     Service
		af    uint16
		mask  uint32
		flags uint32
		tmo   uint32
	}{
		{svc(web), ipvsnl.AFInet, 0xffffffff, 0, 0},
		{svc(tcp("2001:db8::1", 80)), ipvsnl.AFInet6, 128, 0, 0},
		{Service{Key: ServiceKey{Family: 4, FWMark: 3}, Scheduler: "rr"}, ipvsnl.AFInet, 0xffffffff, 0, 0},
		{Service{Key: ServiceKey{Family: 6, FWMark: 3}, Scheduler: "rr"}, ipvsnl.AFInet6, 128, 0, 0},
		{Service{Key: web, Scheduler: "sh", Flags: FlagSchedFallback, Persistent: true, Timeout: 600 * time.Second, Netmask: 24},
			ipvsnl.AFInet, 0xffffff00, ipvsnl.FlagPersistent | FlagSchedFallback, 600},
		{Service{Key: tcp("2001:db8::1", 80), Scheduler: "rr", Persistent: true, Timeout: time.Minute, Netmask: 64},
			ipvsnl.AFInet6, 64, ipvsnl.FlagPersistent, 60},
	} {
		ns := nlService(&c.s)
		if ns.Family != c.af || ns.Netmask != c.mask {
			t.Errorf("%s: family %d netmask %#x", c.s.Key, ns.Family, ns.Netmask)
		}
		if ns.Flags != c.flags || ns.Timeout != c.tmo || ns.Scheduler != c.s.Scheduler {
			t.Errorf("%s: flags %#x timeout %d scheduler %q", c.s.Key, ns.Flags, ns.Timeout, ns.Scheduler)
		}
		if c.s.Key.FWMark != 0 && (ns.FWMark != c.s.Key.FWMark || ns.Addr.IsValid() || ns.Protocol != 0) {
			t.Errorf("%s: fwmark service carries %+v", c.s.Key, ns.Key)
		}
	}
}

func TestNLServiceRoundTrip(t *testing.T) {
	for _, s := range []Service{
		{Key: web, Scheduler: "wrr"},
		{Key: key(UDP, "2001:db8::1", 53), Scheduler: "mh", Flags: FlagSchedPort | FlagSchedFallback},
		{Key: key(SCTP, "10.0.0.1", 3868), Scheduler: "rr", Flags: FlagOnePacket},
		{Key: ServiceKey{Family: 6, FWMark: 9}, Scheduler: "sh", Persistent: true, Timeout: 30 * time.Second, Netmask: 48},
		{Key: ServiceKey{Family: 4, FWMark: 9}, Scheduler: "lc", Persistent: true, Timeout: 30 * time.Second, Netmask: 16},
		{Key: key(UDP, "10.0.0.1", 5060), Scheduler: "rr", Flags: FlagOnePacket, Persistent: true, Timeout: time.Minute, Netmask: 32, PE: "sip"},
	} {
		ns := nlService(&s)
		ns.Flags |= ipvsnl.FlagHashed // the kernel adds it to every service
		got, err := fromNLService(&ns)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != s.Key || !got.sameConfig(&s) || got.Timeout != s.Timeout || got.Netmask != s.Netmask || got.PE != s.PE {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
		}
	}
	if _, err := fromNLService(&ipvsnl.Service{Key: ipvsnl.Key{Family: 7}}); err == nil {
		t.Error("unknown family accepted")
	}
	// A non-contiguous IPv4 mask set by hand never equals a desired one.
	odd := ipvsnl.Service{Key: nlKey(web), Flags: ipvsnl.FlagPersistent, Netmask: 0xff00ff00}
	if got, _ := fromNLService(&odd); got.Netmask != -1 {
		t.Errorf("netmask %d, want -1", got.Netmask)
	}
}

func TestNLWrites(t *testing.T) {
	d := Destination{Addr: netip.MustParseAddr("10.0.0.21"), Port: 80, Weight: 7, Forward: Route, Upper: 100, Lower: 10}
	w, err := nlWrite(&Write{Kind: OpUpdateDestination, Service: Service{Key: web}, Dest: d})
	if err != nil {
		t.Fatal(err)
	}
	want := ipvsnl.Dest{Addr: d.Addr, Port: 80, FwdMethod: 3, Weight: 7, Upper: 100, Lower: 10}
	if w.Cmd != ipvsnl.CmdSetDest || w.Dest != want || w.Service.Key != nlKey(web) {
		t.Errorf("write %+v", w)
	}
	for f, v := range map[Forward]uint32{Masq: 0, Tunnel: 2, Route: 3} {
		if uint32(f) != v {
			t.Errorf("%s is not the kernel's value %d", f, v)
		}
	}
	for _, w := range []Write{
		{Kind: OpListServices, Service: svc(web)},
		{Kind: OpCreateService, Service: Service{Key: ServiceKey{Family: 5}}},
		{Kind: OpCreateDestination, Service: svc(web)},
	} {
		if _, err := nlWrite(&w); err == nil {
			t.Errorf("%+v converted", w)
		}
	}
}

// The one mapping of a kernel destination: counters kept, and a weight
// beyond the kernel's int clamped rather than wrapped negative.
func TestFromNLDest(t *testing.T) {
	nd := ipvsnl.Dest{Family: ipvsnl.AFInet, Addr: netip.MustParseAddr("10.0.0.21"), Port: 80, FwdMethod: 3, Weight: 7,
		Upper: 100, Lower: 10, ActiveConns: 3, InactiveConns: 4}
	got := fromNLDest(&nd)
	want := Destination{Addr: nd.Addr, Port: 80, Weight: 7, Forward: Route, Upper: 100, Lower: 10, ActiveConns: 3, InactiveConns: 4}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	nd.Weight = 1 << 31
	if huge := fromNLDest(&nd); huge.Weight != math.MaxInt32 {
		t.Errorf("weight %d, want it clamped to %d", huge.Weight, math.MaxInt32)
	}
	// Tunnel attributes count for a tunnel only (the kernel keeps the
	// last ones sent whatever the forwarding).
	nd.TunType, nd.TunPort, nd.TunFlags = ipvsnl.TunGUE, 6080, ipvsnl.TunFlagRemCsum
	if got := fromNLDest(&nd); got.Encap != (Encap{}) {
		t.Errorf("route destination with %+v", got.Encap)
	}
	nd.FwdMethod = ipvsnl.FwdTunnel
	if got := fromNLDest(&nd); got.Forward != Tunnel || got.Encap != (Encap{Type: TunnelGUE, Port: 6080, Checksum: TunnelRemoteChecksum}) {
		t.Errorf("tunnel destination: %+v", got)
	}
	// And they go out as the write's.
	d := nlDestOf(t, Destination{Addr: nd.Addr, Port: 80, Weight: 1, Forward: Tunnel, Encap: Encap{Type: TunnelGRE, Checksum: TunnelChecksumOn}})
	if d.TunType != ipvsnl.TunGRE || d.TunPort != 0 || d.TunFlags != ipvsnl.TunFlagCsum || d.FwdMethod != ipvsnl.FwdTunnel {
		t.Errorf("write %+v", d)
	}
}

// nlDestOf converts a destination create for the kernel.
func nlDestOf(t *testing.T, d Destination) ipvsnl.Dest {
	t.Helper()
	w, err := nlWrite(&Write{Kind: OpCreateDestination, Service: Service{Key: web}, Dest: d})
	if err != nil {
		t.Fatal(err)
	}
	return w.Dest
}
