package gobgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/internal/testwait"
)

// The test's router is a second GoBGP server on 127.0.0.2, passive, with
// a TCP MD5 password; the speaker dials it from 127.0.0.1. Only loopback.
const (
	routerAddr = "127.0.0.2"
	nodeAddr   = "127.0.0.1"
	secret     = "s3cret-md5-pass"
)

// freePort finds a TCP port free on the router's address.
func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", routerAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

// testRouter starts the router side: AS asn, listening on port, with the
// node as a passive neighbour of AS nodeASN.
func testRouter(t *testing.T, port uint32, asn, nodeASN uint32) *server.BgpServer {
	t.Helper()
	s := server.NewBgpServer()
	go s.Serve()
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: "10.255.0.1", ListenPort: int32(port), ListenAddresses: []string{routerAddr},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	fams := []*api.AfiSafi{}
	for _, afi := range []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6} {
		fams = append(fams, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}})
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: nodeAddr, PeerAsn: nodeASN, AuthPassword: secret},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: routerAddr},
		AfiSafis:  fams,
	}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// received is what the router holds for prefix: nil if nothing.
func received(t *testing.T, s *server.BgpServer, fam bgp.Family, prefix string) *apiutil.Path {
	t.Helper()
	var got *apiutil.Path
	err := s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}, func(p bgp.NLRI, paths []*apiutil.Path) {
		if p.String() == prefix && len(paths) > 0 {
			got = paths[0]
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitFor waits until cond holds, at most 20s (GoBGP's state has no
// change notification to wait on, so testwait polls it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Eventually(t, 20*time.Second, what, cond)
}

// attrs summarises a path's attributes for comparison.
func attrs(p *apiutil.Path) string {
	var out []string
	for _, a := range p.Attrs {
		switch v := a.(type) {
		case *bgp.PathAttributeCommunities:
			var cs []string
			for _, c := range v.Value {
				cs = append(cs, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
			out = append(out, "communities "+strings.Join(cs, ","))
		case *bgp.PathAttributeLocalPref:
			out = append(out, fmt.Sprintf("local_pref %d", v.Value))
		case *bgp.PathAttributeMultiExitDisc:
			out = append(out, fmt.Sprintf("med %d", v.Value))
		case *bgp.PathAttributeAsPath:
			out = append(out, "as_path "+strings.TrimSuffix(strings.TrimPrefix(v.String(), "{AsPath: "), "}"))
		case *bgp.PathAttributeNextHop:
			out = append(out, "next_hop "+v.Value.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func routingConfig(t *testing.T, y string) *config.Routing {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c.Routing
}

func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	port := freePort(t)
	router := testRouter(t, port, 65000, 65011)
	dir := t.TempDir()
	pwFile := dir + "/bgp.secret"
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := routingConfig(t, fmt.Sprintf(`services: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]
routing:
  mode: bgp
  vips: [10.0.0.100, 10.0.0.101]
  router_id: 10.0.0.11
  asn: 65011
  announce:
    - {vip: 10.0.0.100, communities: ["65000:100", "65000:7"], local_pref: 200, med: 10}
  peers:
    - {address: %s, asn: 65000, password_file: %s, hold: 9s, keepalive: 3s, families: [ipv4]}
`, routerAddr, pwFile))
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	sp, err := New(ctx, r, Options{
		Logger: log, PeerPort: port, LocalAddress: netip.MustParseAddr(nodeAddr),
		ReadPassword: func(p string) (string, error) {
			b, err := os.ReadFile(p)
			return strings.TrimSpace(string(b)), err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	established := func() bool {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].State == "established"
	}
	waitFor(t, "the session (with TCP MD5) to come up", established)

	ctl := routing.NewController(r, sp, log)
	if err := ctl.Update(ctx, routing.Inputs{}); err != nil {
		t.Fatal(err)
	}
	want := "as_path 65011; communities 65000:100,65000:7; med 10; next_hop 127.0.0.1"
	last := ""
	waitFor(t, "10.0.0.100 at the router with "+want, func() bool {
		p := received(t, router, bgp.RF_IPv4_UC, "10.0.0.100/32")
		if p != nil && attrs(p) != last {
			last = attrs(p)
			t.Logf("router has 10.0.0.100 with %s", last)
		}
		return p != nil && last == want
	})
	waitFor(t, "10.0.0.101 at the router", func() bool { return received(t, router, bgp.RF_IPv4_UC, "10.0.0.101/32") != nil })
	ss := sp.Sessions()
	if s := ss[0]; s.PrefixesSent != 2 || s.Flaps != 1 || s.Since.IsZero() || s.Peer != netip.MustParseAddr(routerAddr) || s.ASN != 65000 {
		t.Errorf("session %+v, want 2 prefixes sent, 1 flap, an uptime", s)
	}

	// One VIP's service loses quorum: only that route is withdrawn.
	if err := ctl.Update(ctx, routing.Inputs{QuorumLost: map[netip.Addr][]string{netip.MustParseAddr("10.0.0.101"): {"web"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10.0.0.101 withdrawn", func() bool { return received(t, router, bgp.RF_IPv4_UC, "10.0.0.101/32") == nil })
	if received(t, router, bgp.RF_IPv4_UC, "10.0.0.100/32") == nil {
		t.Fatal("10.0.0.100 withdrawn with 10.0.0.101")
	}

	// Deprefer: the route stays, with the AS path prepended and the
	// highest MED.
	if err := ctl.Update(ctx, routing.Inputs{Drain: routing.Depreferred}); err != nil {
		t.Fatal(err)
	}
	want = "as_path 65011 65011 65011 65011; communities 65000:100,65000:7; med 4294967294; next_hop 127.0.0.1"
	waitFor(t, "10.0.0.100 depreferred", func() bool {
		p := received(t, router, bgp.RF_IPv4_UC, "10.0.0.100/32")
		return p != nil && attrs(p) == want
	})

	// A reload changing the peer's timers updates it in place; a new
	// MED is re-announced.
	r2 := routingConfig(t, strings.Replace(strings.Replace(fmt.Sprintf(`services: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]
routing:
  mode: bgp
  vips: [10.0.0.100, 10.0.0.101]
  router_id: 10.0.0.11
  asn: 65011
  announce:
    - {vip: 10.0.0.100, communities: ["65000:100", "65000:7"], local_pref: 200, med: 10}
  peers:
    - {address: %s, asn: 65000, password_file: %s, hold: 9s, keepalive: 3s, families: [ipv4]}
`, routerAddr, pwFile), "med: 10", "med: 30", 1), "hold: 9s", "hold: 12s", 1))
	if err := ctl.SetConfig(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Update(ctx, routing.Inputs{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10.0.0.100 with MED 30", func() bool {
		p := received(t, router, bgp.RF_IPv4_UC, "10.0.0.100/32")
		return p != nil && strings.Contains(attrs(p), "med 30;") && !strings.Contains(attrs(p), "65011 65011")
	})
	waitFor(t, "the session back up", established)

	// Drained: everything withdrawn, the session stays up.
	if err := ctl.Update(ctx, routing.Inputs{Drain: routing.Withdrawn}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every route withdrawn", func() bool {
		return received(t, router, bgp.RF_IPv4_UC, "10.0.0.100/32") == nil && received(t, router, bgp.RF_IPv4_UC, "10.0.0.101/32") == nil
	})
	if !established() {
		t.Error("a drain dropped the session")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the password reached the log")
	}
}

// An IPv6 VIP goes to an IPv6 peer; over iBGP the local preference
// reaches the router too.
func TestSpeakerIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	router := server.NewBgpServer()
	go router.Serve()
	ctx := context.Background()
	if err := router.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "10.255.0.1", ListenPort: int32(port), ListenAddresses: []string{"::1"}}}); err != nil {
		t.Fatal(err)
	}
	defer router.Stop()
	if err := router.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "::1", PeerAsn: 65000},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := routingConfig(t, `services: [{name: web6, vip: "fd00::100", port: 80, real_servers: [{address: "fd00:2::21"}]}]
routing:
  mode: bgp
  vips: ["fd00::100"]
  router_id: 10.0.0.11
  asn: 65000
  announce: [{vip: "fd00::100", local_pref: 250, communities: [no-export]}]
  peers: [{address: "::1", asn: 65000, families: [ipv6]}]
`)
	sp, err := New(ctx, r, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PeerPort: port})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	if err := sp.Announce(ctx, routing.Decide(r, routing.Inputs{}).Routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fd00::100 at the router", func() bool {
		p := received(t, router, bgp.RF_IPv6_UC, "fd00::100/128")
		return p != nil && attrs(p) == "as_path ; communities 65535:65281; local_pref 250"
	})
	// Closing the speaker ends the session: the router drops the route.
	sp.Close(ctx)
	waitFor(t, "fd00::100 gone with the session", func() bool { return received(t, router, bgp.RF_IPv6_UC, "fd00::100/128") == nil })
}

// peerBFD is whether GoBGP has BFD on for peer now.
func peerBFD(t *testing.T, sp *Speaker, peer string) bool {
	t.Helper()
	on := false
	err := sp.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: peer}, func(p *api.Peer) {
		on = p.GetBfd().GetEnabled()
	})
	if err != nil {
		t.Fatal(err)
	}
	return on
}

// A peer's BFD runs only while its session is established: off while the
// router is not there, on once the session is up, off again when it
// drops. (FRR re-keys a BFD session that came up before BGP, and GoBGP
// then resets the BGP session it just made.)
func TestSpeakerBFDOnlyWhileEstablished(t *testing.T) {
	port := freePort(t)
	r := routingConfig(t, fmt.Sprintf(`services: [{name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.2.21}]}]
routing:
  mode: bgp
  vips: [10.0.0.100]
  router_id: 10.0.0.11
  asn: 65011
  peers:
    - {address: %s, asn: 65000, hold: 9s, keepalive: 3s, families: [ipv4], bfd: {enabled: true, min_rx: 1s, min_tx: 1s, multiplier: 5}}
`, routerAddr))
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	sp, err := New(ctx, r, Options{Logger: log, PeerPort: port, LocalAddress: netip.MustParseAddr(nodeAddr)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	if peerBFD(t, sp, routerAddr) {
		t.Fatal("BFD on before the session was ever established")
	}
	router := server.NewBgpServer()
	go router.Serve()
	if err := router.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "10.255.0.1", ListenPort: int32(port), ListenAddresses: []string{routerAddr},
	}}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			router.Stop()
		}
	}()
	if err := router.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: nodeAddr, PeerAsn: 65011},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: routerAddr},
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session up and BFD on", func() bool {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].State == "established" && peerBFD(t, sp, routerAddr)
	})
	router.Stop()
	stopped = true
	waitFor(t, "the session down and BFD off", func() bool {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].State != "established" && !peerBFD(t, sp, routerAddr)
	})
	if !strings.Contains(logs.String(), `msg="bgp: BFD switched" peer=127.0.0.2 on=true`) {
		t.Errorf("no log line for BFD switched on:\n%s", logs.String())
	}
}
