package vrrp

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/director-lb/director/vrrp/transport"
)

// filteringFrames records the kernel filters the dispatcher attaches.
type filteringFrames struct {
	fakeFrames
	got []transport.Filter
}

func (f *filteringFrames) SetFilter(x transport.Filter) error {
	f.got = append(f.got, x)
	return nil
}

func mkInstance(t *testing.T, cfg InstanceConfig) *Instance {
	t.Helper()
	cfg.Logger = quietLog()
	cfg.Addresses = []netip.Addr{netip.MustParseAddr("10.0.0.100")}
	cfg.Machine.Version, cfg.Machine.Priority, cfg.Machine.Interval = V3, 100, time.Second
	return NewInstance(cfg, &wireNode{addr: netip.MustParseAddr("10.0.0.11")}, &logMover{log: &eventLog{}})
}

// The kernel filter follows the instances: their VRIDs, TTL 255, and the
// sources only when every instance names them.
func TestDispatcherFilter(t *testing.T) {
	own, a, b := netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13")
	group := netip.MustParseAddr("224.0.0.18")
	conn := &filteringFrames{fakeFrames: fakeFrames{src: own}}
	d := NewDispatcher(conn, "eth0", group, nil, quietLog())
	if f := conn.got[len(conn.got)-1]; len(f.VRIDs) != 0 {
		t.Errorf("no instances yet: filter %+v lets VRIDs through", f)
	}
	open := mkInstance(t, InstanceConfig{Name: "open", VRID: 7})
	listed := mkInstance(t, InstanceConfig{Name: "listed", VRID: 3, Sources: []netip.Addr{b, a}})
	d.SetInstances([]*Instance{listed})
	f := conn.got[len(conn.got)-1]
	if !slices.Equal(f.VRIDs, []uint8{3}) || !slices.Equal(f.Sources, []netip.Addr{a, b}) || !f.TTL255 || f.Dest.IsValid() {
		t.Errorf("multicast with allowed sources: %+v", f)
	}
	d.SetInstances([]*Instance{listed, open})
	f = conn.got[len(conn.got)-1]
	if !slices.Equal(f.VRIDs, []uint8{3, 7}) || len(f.Sources) != 0 {
		t.Errorf("one instance hears anyone, so all sources pass: %+v", f)
	}

	uconn := &filteringFrames{fakeFrames: fakeFrames{src: own}}
	ud := NewDispatcher(uconn, "eth0", netip.Addr{}, nil, quietLog())
	ud.SetInstances([]*Instance{mkInstance(t, InstanceConfig{Name: "u", VRID: 9, Peers: []netip.Addr{a}})})
	ud.SetRouted(true)
	f = uconn.got[len(uconn.got)-1]
	if !slices.Equal(f.Sources, []netip.Addr{a}) || f.Dest != own || f.TTL255 {
		t.Errorf("routed unicast: %+v", f)
	}

	// In user space too, a multicast instance hears only its allowed sources.
	listed.Deliver(Received{Src: netip.MustParseAddr("10.0.0.66"), Dst: group, Packet: &Packet{Version: V3, VRID: 3, Priority: 200, Interval: time.Second}})
	if got := listed.Stats().Drops[DropStranger]; got != 1 {
		t.Errorf("stranger drops %d, want 1", got)
	}
}
