package routing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

const cfgYAML = `services:
  - {name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}
  - {name: web6, vip: "fd00::100", port: 80, real_servers: [{address: "fd00:2::21"}]}
routing:
  mode: bgp
  vips: [10.0.0.100, "fd00::100"]
  router_id: 10.0.0.11
  asn: 65011
  announce:
    - {vip: 10.0.0.100, communities: ["65000:100"], local_pref: 200, med: 10}
  peers: [{address: 10.0.1.1, asn: 65000}]
`

func routingCfg(t *testing.T) *config.Routing {
	t.Helper()
	c, err := config.Parse("r.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c.Routing
}

var (
	v4 = netip.MustParseAddr("10.0.0.100")
	v6 = netip.MustParseAddr("fd00::100")
)

func TestDecide(t *testing.T) {
	r := routingCfg(t)
	full := Route{Prefix: netip.MustParsePrefix("10.0.0.100/32"), Communities: []uint32{65000<<16 | 100}, LocalPref: 200, HasLocalPref: true, MED: 10, HasMED: true}
	plain6 := Route{Prefix: netip.MustParsePrefix("fd00::100/128")}
	for _, tc := range []struct {
		name   string
		in     Inputs
		want   []Route
		reason map[netip.Addr]string
	}{
		{"fit", Inputs{}, []Route{full, plain6}, map[netip.Addr]string{v4: "fit", v6: "fit"}},
		{"one VIP's service lost quorum", Inputs{QuorumLost: map[netip.Addr][]string{v6: {"web6"}}}, []Route{full},
			map[netip.Addr]string{v6: "quorum lost: web6"}},
		{"tracking down withdraws all", Inputs{TracksDown: []string{"script chk"}}, nil,
			map[netip.Addr]string{v4: "tracking down: script chk", v6: "tracking down: script chk"}},
		{"drained", Inputs{Drain: Withdrawn}, nil, map[netip.Addr]string{v4: "node drained: withdrawn"}},
		{"depreferred keeps communities, lowers preference", Inputs{Drain: Depreferred}, []Route{
			{Prefix: full.Prefix, Communities: full.Communities, LocalPref: DepreferLocalPref, HasLocalPref: true, MED: DepreferMED, HasMED: true, Prepend: DepreferPrepend},
			{Prefix: plain6.Prefix, LocalPref: DepreferLocalPref, HasLocalPref: true, MED: DepreferMED, HasMED: true, Prepend: DepreferPrepend},
		}, map[netip.Addr]string{v4: "node drained: depreferred"}},
		{"depreferred still withdraws an unfit VIP", Inputs{Drain: Depreferred, QuorumLost: map[netip.Addr][]string{v4: {"web"}}}, []Route{
			{Prefix: plain6.Prefix, LocalPref: DepreferLocalPref, HasLocalPref: true, MED: DepreferMED, HasMED: true, Prepend: DepreferPrepend},
		}, map[netip.Addr]string{v4: "quorum lost: web"}},
	} {
		d := Decide(r, tc.in)
		if !slices.EqualFunc(d.Routes, tc.want, Route.Equal) {
			t.Errorf("%s: routes\n got %v\nwant %v", tc.name, d.Routes, tc.want)
		}
		for _, v := range d.VIPs {
			if want, ok := tc.reason[v.Addr]; ok && v.Reason != want {
				t.Errorf("%s: %s reason %q, want %q", tc.name, v.Addr, v.Reason, want)
			}
			if v.Announced != slices.ContainsFunc(d.Routes, func(r Route) bool { return r.Prefix.Addr() == v.Addr }) {
				t.Errorf("%s: %s announced=%v disagrees with the routes", tc.name, v.Addr, v.Announced)
			}
		}
	}
	if s := full.String(); s != "10.0.0.100/32 communities 65000:100 local_pref 200 med 10" {
		t.Errorf("String = %q", s)
	}
}

func TestController(t *testing.T) {
	r := routingCfg(t)
	f := NewFake()
	c := NewController(r, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := c.Update(ctx, Inputs{}); err != nil {
		t.Fatal(err)
	}
	if got := f.Routes(); len(got) != 2 || f.Calls() != 1 {
		t.Fatalf("routes %v after %d calls, want both VIPs after 1", got, f.Calls())
	}
	// The same decision is not announced again.
	if err := c.Update(ctx, Inputs{QuorumLost: map[netip.Addr][]string{}}); err != nil || f.Calls() != 1 {
		t.Fatalf("unchanged decision: err %v, calls %d, want no new call", err, f.Calls())
	}
	// A failed announce is retried, and reported in the meantime.
	f.FailNext(errors.New("speaker down"))
	if err := c.Update(ctx, Inputs{TracksDown: []string{"x"}}); err == nil {
		t.Fatal("failed announce not reported")
	}
	if st := c.Status(); !strings.Contains(st.LastError, "speaker down") {
		t.Errorf("status error %q", st.LastError)
	}
	if len(f.Routes()) != 2 {
		t.Fatalf("fake changed despite the failure: %v", f.Routes())
	}
	if err := c.Retry(ctx); err != nil || len(f.Routes()) != 0 {
		t.Fatalf("retry: err %v, routes %v, want withdrawn", err, f.Routes())
	}
	if err := c.Retry(ctx); err != nil || f.Calls() != 3 {
		t.Fatalf("retry after success called the announcer again (%d calls)", f.Calls())
	}
	// A reload's changed section is configured and decided anew.
	r2 := *r
	r2.Announce = nil
	if err := c.Update(ctx, Inputs{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetConfig(ctx, &r2); err != nil {
		t.Fatal(err)
	}
	if got := f.Routes(); len(got) != 2 || got[0].HasMED || len(f.Configured()) != 1 {
		t.Errorf("after SetConfig routes %v, configured %d", got, len(f.Configured()))
	}
	if st := c.Status(); len(st.VIPs) != 2 || !st.VIPs[0].Announced || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	if err := c.Close(ctx); err != nil || !f.Closed() || len(f.Routes()) != 0 {
		t.Errorf("close: err %v closed %v routes %v", err, f.Closed(), f.Routes())
	}
}

func TestDrainer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	// Connections end: drained as soon as none is active.
	d := NewDrainer(Withdrawn, t0, 60*time.Second, DrainQuiet)
	if p, done := d.Observe(at(0), Traffic{ActiveConns: 5, InPackets: 100}); done || p.State != "draining" {
		t.Fatalf("at 0: %+v done %v", p, done)
	}
	if p, done := d.Observe(at(1), Traffic{ActiveConns: 2, InPackets: 150}); done || p.ActiveConns != 2 {
		t.Fatalf("at 1: %+v", p)
	}
	p, done := d.Observe(at(2), Traffic{ActiveConns: 0, InPackets: 160})
	if !done || p.State != "drained" || p.Elapsed != 2*time.Second || !strings.Contains(p.Result, "no active connections") {
		t.Fatalf("at 2: %+v done %v", p, done)
	}
	if p2, done := d.Observe(at(9), Traffic{ActiveConns: 7}); !done || p2 != p {
		t.Errorf("a finished drain changed: %+v", p2)
	}

	// Connections still listed (synced) but no packets: drained once
	// the counter stood still for the quiet time.
	d = NewDrainer(Depreferred, t0, 60*time.Second, DrainQuiet)
	d.Observe(at(0), Traffic{ActiveConns: 40, InPackets: 10})
	d.Observe(at(1), Traffic{ActiveConns: 40, InPackets: 20})
	if _, done := d.Observe(at(3.9), Traffic{ActiveConns: 40, InPackets: 20}); done {
		t.Fatal("drained before the quiet time")
	}
	p, done = d.Observe(at(4), Traffic{ActiveConns: 40, InPackets: 20})
	if !done || p.State != "drained" || p.QuietFor != 3*time.Second || p.Mode != "depreferred" || !strings.Contains(p.Result, "no packets for 3s (40 connections still listed") {
		t.Fatalf("quiet: %+v done %v", p, done)
	}

	// Packets keep coming: timed out.
	d = NewDrainer(Withdrawn, t0, 10*time.Second, DrainQuiet)
	for s := 0.0; s < 10; s++ {
		if _, done := d.Observe(at(s), Traffic{ActiveConns: 3, InPackets: uint64(s) * 10}); done {
			t.Fatalf("done at %vs", s)
		}
	}
	p, done = d.Observe(at(10), Traffic{ActiveConns: 3, InPackets: 1000})
	if !done || p.State != "timed_out" || !strings.Contains(p.Result, "3 active connections") {
		t.Fatalf("timeout: %+v done %v", p, done)
	}
	d = NewDrainer(Withdrawn, t0, 10*time.Second, DrainQuiet)
	if p := d.Fail(at(1), errors.New("no IPVS")); p.State != "timed_out" || !strings.Contains(p.Result, "no IPVS") {
		t.Errorf("fail: %+v", p)
	}
}
