// Package gobgp is routed mode's BGP speaker: an embedded GoBGP server
// (github.com/osrg/gobgp/v4) that only originates the VIP routes. It
// listens on no port (it connects out to its peers), so it never learns
// or installs a route, and runs GoBGP's own BFD to the peers that ask for
// it. It implements routing.Announcer.
package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/routing"
)

// ConnectRetry is how often a peer that is down is dialled again; GoBGP's
// default (120s) would leave a restarted router without this node's
// routes for minutes.
const ConnectRetry = 5 * time.Second

// IdleHoldAfterReset is how long a session stays idle after a reset (BFD
// down, a notification); GoBGP's default, 30 s, kept a node's routes off
// its router that long for one BFD blip.
const IdleHoldAfterReset = 5 * time.Second

// Options are the speaker's edges.
type Options struct {
	Logger *slog.Logger
	// ReadPassword reads a peer's password file (in production
	// apiauth.ReadSecretFile's checks: root's, mode 0600).
	ReadPassword func(path string) (string, error)
	// PeerPort, if set, is the peers' TCP port instead of 179 (tests);
	// LocalAddress, if valid, the source of the sessions (tests).
	PeerPort     uint32
	LocalAddress netip.Addr
	// Now is the clock for session uptimes (time.Now if nil).
	Now func() time.Time
}

// Speaker is the embedded GoBGP server.
type Speaker struct {
	o   Options
	log *slog.Logger
	s   *server.BgpServer
	// stopWatch ends the peer-state watch.
	stopWatch context.CancelFunc

	mu       sync.Mutex
	global   [2]string // router ID and ASN the server started with
	peers    map[netip.Addr]peerConf
	routes   []routing.Route
	sessions map[netip.Addr]*session
}

// peerConf is a configured peer with its password read.
type peerConf struct {
	cfg      config.BGPPeer
	password string
}

type session struct {
	state     bgp.FSMState
	since     time.Time
	flaps     uint64
	lastError string
	// bfd is whether the peer's BFD is on in GoBGP now: only while the
	// session is established (see bfdWhileEstablished).
	bfd bool
}

// New starts a speaker for r and adds its peers.
func New(ctx context.Context, r *config.Routing, o Options) (*Speaker, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// GoBGP logs every FSM step at info; only its warnings reach the
	// journal. Its log lines never carry a peer's password.
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	glog := slog.New(levelHandler{o.Logger.Handler(), lv})
	s := server.NewBgpServer(server.LoggerOption(glog, lv))
	go s.Serve()
	sp := &Speaker{o: o, log: o.Logger, s: s, peers: map[netip.Addr]peerConf{}, sessions: map[netip.Addr]*session{}}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: r.ASN, RouterId: r.RouterID,
		ListenPort: -1, // no listener: the speaker dials its peers
	}}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start BGP speaker: %w", err)
	}
	sp.global = [2]string{r.RouterID, fmt.Sprint(r.ASN)}
	wctx, cancel := context.WithCancel(context.Background())
	sp.stopWatch = cancel
	if err := s.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: sp.peerEvent}, server.WatchPeer()); err != nil {
		cancel()
		s.Stop()
		return nil, fmt.Errorf("watch BGP peers: %w", err)
	}
	if err := sp.Configure(ctx, r); err != nil {
		sp.Close(ctx)
		return nil, err
	}
	return sp, nil
}

// peerEvent counts transitions to established (flaps) and remembers when
// and why a session went down.
func (sp *Speaker) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress
	st := ev.Peer.State.SessionState
	sp.mu.Lock()
	defer sp.mu.Unlock()
	s := sp.sessions[addr]
	if s == nil {
		s = &session{}
		sp.sessions[addr] = s
	}
	was := s.state
	s.state = st
	switch {
	case st == bgp.BGP_FSM_ESTABLISHED && was != st:
		s.flaps++
		s.since = sp.o.Now()
		s.lastError = ""
		sp.log.Info("bgp: session established", "peer", addr, "asn", ev.Peer.State.PeerASN)
		go sp.bfdWhileEstablished(addr)
	case was == bgp.BGP_FSM_ESTABLISHED && st != was:
		s.since = time.Time{}
		s.lastError = downReason(ev.Peer.State)
		sp.log.Warn("bgp: session down", "peer", addr, "state", stateName(st), "reason", s.lastError)
		go sp.bfdWhileEstablished(addr)
	}
}

// bfdWhileEstablished turns a peer's BFD on while its session is
// established and off otherwise. Why not always on: a BFD session that
// comes up before BGP is torn down by FRR (8.4) once BGP is up (it
// re-keys the session with its BGP source, sending Down), and GoBGP then
// resets a healthy BGP session; a BFD session that comes up after BGP
// does not see that. Turning BFD on or off changes no BGP state (GoBGP
// updates only its BFD peer). Run on its own goroutine: it calls GoBGP,
// whose watch callback this follows.
func (sp *Speaker) bfdWhileEstablished(addr netip.Addr) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	pc, ok := sp.peers[addr]
	s := sp.sessions[addr]
	if !ok || s == nil || pc.cfg.BFD == nil || !pc.cfg.BFD.Enabled {
		return
	}
	want := s.state == bgp.BGP_FSM_ESTABLISHED
	if s.bfd == want {
		return
	}
	if _, err := sp.s.UpdatePeer(context.Background(), &api.UpdatePeerRequest{Peer: sp.apiPeer(pc, want)}); err != nil {
		sp.log.Warn("bgp: BFD not switched", "peer", addr, "on", want, "err", err)
		return
	}
	s.bfd = want
	sp.log.Info("bgp: BFD switched", "peer", addr, "on", want)
}

// downReason says why a session went down, from GoBGP's disconnect reason.
func downReason(ps apiutil.PeerState) string {
	r := strings.ToLower(strings.TrimPrefix(ps.DisconnectReason.String(), "DISCONNECT_REASON_"))
	if ps.DisconnectMessage != "" {
		r += ": " + ps.DisconnectMessage
	}
	return r
}

// Configure adds, updates and removes peers to match r; an unchanged peer
// is not touched, a changed one is updated in place (GoBGP resets only
// that session when what changed needs it).
func (sp *Speaker) Configure(ctx context.Context, r *config.Routing) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.global != [2]string{r.RouterID, fmt.Sprint(r.ASN)} {
		return fmt.Errorf("router_id and asn cannot change in a running speaker (have %s AS%s)", sp.global[0], sp.global[1])
	}
	want := map[netip.Addr]peerConf{}
	for _, p := range r.Peers {
		pc := peerConf{cfg: p}
		if p.PasswordFile != "" {
			if sp.o.ReadPassword == nil {
				return fmt.Errorf("peer %s: no way to read password_file", p.Addr)
			}
			pw, err := sp.o.ReadPassword(p.PasswordFile)
			if err != nil {
				return fmt.Errorf("peer %s: password_file: %w", p.Addr, err)
			}
			if len(pw) == 0 || len(pw) > 80 {
				return fmt.Errorf("peer %s: password_file %s: a TCP MD5 password is 1-80 bytes, got %d", p.Addr, p.PasswordFile, len(pw))
			}
			pc.password = pw
		}
		want[p.Addr] = pc
	}
	var errs []error
	for addr := range sp.peers {
		if _, ok := want[addr]; ok {
			continue
		}
		if err := sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("remove peer %s: %w", addr, err))
			continue
		}
		delete(sp.peers, addr)
		delete(sp.sessions, addr)
		sp.log.Info("bgp: peer removed", "peer", addr)
	}
	for addr, pc := range want {
		old, ok := sp.peers[addr]
		switch {
		case !ok:
			// BFD comes on once the session is established.
			if err := sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: sp.apiPeer(pc, false)}); err != nil {
				errs = append(errs, fmt.Errorf("add peer %s: %w", addr, err))
				continue
			}
			sp.log.Info("bgp: peer added", "peer", addr, "asn", pc.cfg.ASN, "bfd", pc.cfg.BFD != nil && pc.cfg.BFD.Enabled)
		case !samePeer(old, pc):
			s := sp.sessions[addr]
			bfd := s != nil && s.bfd && pc.cfg.BFD != nil && pc.cfg.BFD.Enabled
			if _, err := sp.s.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: sp.apiPeer(pc, bfd)}); err != nil {
				errs = append(errs, fmt.Errorf("update peer %s: %w", addr, err))
				continue
			}
			if s != nil {
				s.bfd = bfd
			}
			sp.log.Info("bgp: peer updated", "peer", addr)
		}
		sp.peers[addr] = pc
	}
	return errors.Join(errs...)
}

func samePeer(a, b peerConf) bool {
	return a.password == b.password && reflect.DeepEqual(a.cfg, b.cfg)
}

// apiPeer is pc as GoBGP's API takes it, with its BFD on if bfd (and
// configured).
func (sp *Speaker) apiPeer(pc peerConf, bfd bool) *api.Peer {
	p := pc.cfg
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.String(), PeerAsn: p.ASN, AuthPassword: pc.password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.Hold.D() / time.Second),
			KeepaliveInterval: uint64(p.Keepalive.D() / time.Second),
			ConnectRetry:      uint64(ConnectRetry / time.Second),
			// GoBGP v4.9.0 or later: before it, a reset while the
			// session was down left a notification that killed the
			// next session (osrg/gobgp#3561).
			IdleHoldTimeAfterReset: uint64(IdleHoldAfterReset / time.Second),
		}},
		Transport: &api.Transport{RemotePort: sp.o.PeerPort},
	}
	if sp.o.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = sp.o.LocalAddress.String()
	}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	for _, f := range p.Families {
		afi := api.Family_AFI_IP
		if f == "ipv6" {
			afi = api.Family_AFI_IP6
		}
		ap.AfiSafis = append(ap.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}})
	}
	if b := p.BFD; bfd && b != nil && b.Enabled {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(b.MinTx.D() / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.MinRx.D() / time.Microsecond),
			DetectionMultiplier:      uint32(b.Multiplier),
		}
	}
	return ap
}

// Announce implements routing.Announcer: routes not wanted any more are
// withdrawn, new or changed ones announced (a changed one replaces the
// old by implicit withdrawal).
func (sp *Speaker) Announce(_ context.Context, routes []routing.Route) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var add, del []*apiutil.Path
	for _, old := range sp.routes {
		if !slices.ContainsFunc(routes, func(r routing.Route) bool { return r.Prefix == old.Prefix }) {
			p, err := sp.path(old, true)
			if err != nil {
				return err
			}
			del = append(del, p)
		}
	}
	for _, r := range routes {
		if slices.ContainsFunc(sp.routes, r.Equal) {
			continue
		}
		p, err := sp.path(r, false)
		if err != nil {
			return err
		}
		add = append(add, p)
	}
	if len(del) > 0 {
		if err := sp.s.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
			return fmt.Errorf("withdraw: %w", err)
		}
	}
	if len(add) > 0 {
		if _, err := sp.s.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
			// Some may have gone out: withdraw them all, so that what
			// the speaker has is what sp.routes says (what was
			// announced before, less what was withdrawn above).
			sp.routes = slices.DeleteFunc(slices.Clone(sp.routes), func(o routing.Route) bool {
				return !slices.ContainsFunc(routes, func(r routing.Route) bool { return r.Prefix == o.Prefix })
			})
			return fmt.Errorf("announce: %w", err)
		}
	}
	sp.routes = slices.Clone(routes)
	return nil
}

// path is r as a GoBGP path: origin IGP, an unspecified next hop (GoBGP
// puts the session's own address there), r's attributes.
func (sp *Speaker) path(r routing.Route, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", r.Prefix, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgp.RF_IPv4_UC
	if r.Prefix.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		fam = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(slices.Clone(r.Communities)))
	}
	if r.HasLocalPref {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(r.LocalPref))
	}
	if r.HasMED {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(r.MED))
	}
	if r.Prepend > 0 {
		asn, _ := parseASN(sp.global[1])
		path := make([]uint32, r.Prepend)
		for i := range path {
			path[i] = asn
		}
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, path)}))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

func parseASN(s string) (uint32, error) {
	var n uint32
	_, err := fmt.Sscan(s, &n)
	return n, err
}

// Sessions implements routing.Announcer.
func (sp *Speaker) Sessions() []routing.Session {
	var peers []*api.Peer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := sp.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) { peers = append(peers, p) })
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []routing.Session
	for _, pc := range sp.peers {
		rs := routing.Session{Peer: pc.cfg.Addr, ASN: pc.cfg.ASN, State: "unknown"}
		if err != nil {
			rs.LastError = err.Error()
		}
		if s := sp.sessions[pc.cfg.Addr]; s != nil {
			rs.Flaps, rs.Since, rs.LastError = s.flaps, s.since, s.lastError
		}
		for _, p := range peers {
			if p.GetConf().GetNeighborAddress() != pc.cfg.Addr.String() {
				continue
			}
			rs.State = strings.ToLower(strings.TrimPrefix(p.GetState().GetSessionState().String(), "SESSION_STATE_"))
			for _, af := range p.GetAfiSafis() {
				rs.PrefixesSent += int(af.GetState().GetAdvertised())
			}
			if b := p.GetState().GetBfdState(); b != nil && pc.cfg.BFD != nil && pc.cfg.BFD.Enabled {
				rs.BFD = strings.ToLower(strings.TrimPrefix(b.GetSessionState().String(), "BFD_SESSION_STATE_"))
			}
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b routing.Session) int { return a.Peer.Compare(b.Peer) })
	return out
}

// Close implements routing.Announcer: the sessions end with a Cease, which
// withdraws every route at the peers at once.
func (sp *Speaker) Close(ctx context.Context) error {
	sp.mu.Lock()
	sp.routes = nil
	sp.mu.Unlock()
	sp.stopWatch()
	sp.s.Stop()
	return nil
}

func stateName(s bgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// levelHandler filters GoBGP's records by its own level, under the
// daemon's handler.
type levelHandler struct {
	slog.Handler
	lv *slog.LevelVar
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.lv.Level() && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(as), h.lv}
}

func (h levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(n), h.lv}
}
