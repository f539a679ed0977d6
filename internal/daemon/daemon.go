// Package daemon wires a validated configuration to the real world: VRRP
// sockets, VIP movers, carrier watchers, notify hooks and the IPVS
// dataplane, and changes them in place on reload. cmd/director stays a thin
// main around it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/director-lb/director/cloud"
	"github.com/director-lb/director/internal/apiauth"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/internal/hooks"
	"github.com/director-lb/director/internal/privdir"
	"github.com/director-lb/director/internal/routing"
	"github.com/director-lb/director/internal/rtsched"
	"github.com/director-lb/director/internal/track"
	"github.com/director-lb/director/internal/vip"
	"github.com/director-lb/director/internal/vrrpproc"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/ipvs/ipvsadm"
	"github.com/director-lb/director/ipvs/syncd"
	"github.com/director-lb/director/vrrp"
	"github.com/director-lb/director/vrrp/transport"
)

// Edges are the daemon's connections to the kernel, the network and the
// cloud: everything it opens that a unit test cannot. DefaultEdges gives
// the real ones; tests give fakes. Every field must be set (OpenIPVS and
// DialSync are used only with services).
type Edges struct {
	// ListenVRRP opens one VRRP socket (transport.Listen).
	ListenVRRP func(transport.Options) (VRRPConn, error)
	// NewLocalMover prepares an instance's local VIP mover (vip.NewSet).
	NewLocalMover func(vip.Config) (LocalMover, error)
	// WatchCarrier reports iface's carrier: its state now, then every
	// change, until ctx ends (vip.WatchCarrier).
	WatchCarrier func(ctx context.Context, iface string) (<-chan bool, error)
	// NewEC2Mover prepares the EC2 mover that wraps local (cloud.New).
	NewEC2Mover func(ctx context.Context, cfg cloud.EC2Config, local vrrp.Mover, opt cloud.Options) (CloudMover, error)
	// OpenIPVS connects to the kernel's IPVS (ipvs.NewNetlink); the
	// daemon closes it if it is an io.Closer.
	OpenIPVS func() (ipvs.Kernel, error)
	// DialSync connects to the kernel's IPVS sync daemon (syncd.Dial); the
	// daemon closes it if it is an io.Closer.
	DialSync func() (SyncDaemon, error)
	// EnsureVMAC creates or adopts an instance's virtual-MAC interface
	// (vip.EnsureVMAC); used only by instances with vmac.
	EnsureVMAC func(vip.VMACConfig) (VMACLink, error)
	// SysctlDir is where net.ipv4.vs.* are written (ipvs.SysctlDir); empty
	// writes none.
	SysctlDir string
	// EnsureRoutingDevice prepares the interface routed VIPs live on
	// (routing.EnsureDevice); NewAnnouncer starts the BGP speaker or the
	// kernel table (routing/gobgp.New, routing.NewTable); ReadIPVS reads
	// the services' counters for a drain. Used only in routed mode.
	EnsureRoutingDevice func(name string, addrs []netip.Addr) (RoutingDevice, error)
	NewAnnouncer        func(ctx context.Context, r *config.Routing, log *slog.Logger) (routing.Announcer, error)
	ReadIPVS            func() (*ipvsadm.Snapshot, error)
	// CheckWorker is the command line of the health-check worker process
	// (internal/checkproc); empty runs the checks in the daemon's process.
	CheckWorker []string
	// VRRPWorker is the command line of the VRRP process
	// (internal/vrrpproc), which runs the instances (config.VRRPPart)
	// while the daemon runs the rest; empty runs them in the daemon's
	// process. It is started with the daemon's environment: it moves
	// VIPs through EC2.
	VRRPWorker []string
}

// VRRPConn is one VRRP socket as the daemon and its instances use it.
// *transport.Conn implements it.
type VRRPConn interface {
	vrrp.FrameReader
	vrrp.Sender
	Close() error
}

// LocalMover moves an instance's VIPs on its interface. *vip.Local
// implements it.
type LocalMover interface {
	vrrp.Mover
	// SetAddresses changes the VIPs live (a reload).
	SetAddresses(ctx context.Context, addrs []netip.Prefix) error
	Close() error
}

// CloudMover moves an instance's VIPs through a cloud API.
// *cloud.EC2Mover implements it.
type CloudMover interface {
	vrrp.Mover
	Status() cloud.Status
	Close() error
}

// SyncDaemon is the kernel's IPVS sync daemon as the dataplane drives it
// (declared once, by the dataplane); *syncd.Client implements it.
type SyncDaemon = dataplane.SyncDaemon

// rtKeepEvery is how often threads the Go runtime started since are given
// rt_priority too (they start normal: see internal/rtsched).
const rtKeepEvery = 2 * time.Second

// applyRT puts the daemon's threads under rt_priority (0: normal). It
// fails where the systemd unit forbids realtime scheduling: the error says
// what to change; the daemon runs on, normal.
func (d *Daemon) applyRT(prio int) {
	n, err := rtsched.Apply(prio)
	if err != nil {
		d.log.Error("rt_priority not applied: the unit needs RestrictRealtime=no and SystemCallFilter=sched_setattr (see README, The systemd unit)",
			"rt_priority", prio, "threads_set", n, "err", err)
		return
	}
	d.log.Info("scheduling policy set", "rt_priority", prio, "threads", n)
}

// DefaultEdges are the real kernel, network and EC2 connections.
func DefaultEdges() Edges {
	return Edges{
		ListenVRRP: func(o transport.Options) (VRRPConn, error) {
			c, err := transport.Listen(o)
			if err != nil {
				return nil, err // a nil interface, not a nil *transport.Conn
			}
			return c, nil
		},
		NewLocalMover: func(c vip.Config) (LocalMover, error) {
			s, err := vip.NewSet(c)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		WatchCarrier: vip.WatchCarrier,
		NewEC2Mover: func(ctx context.Context, cfg cloud.EC2Config, local vrrp.Mover, opt cloud.Options) (CloudMover, error) {
			m, err := cloud.New(ctx, cfg, local, opt)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		OpenIPVS: func() (ipvs.Kernel, error) {
			k, err := ipvs.NewNetlink()
			if err != nil {
				return nil, err
			}
			return k, nil
		},
		DialSync: func() (SyncDaemon, error) {
			c, err := syncd.Dial()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		EnsureVMAC: func(c vip.VMACConfig) (VMACLink, error) {
			v, err := vip.EnsureVMAC(c)
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		SysctlDir:           ipvs.SysctlDir,
		EnsureRoutingDevice: ensureRoutingDevice,
		NewAnnouncer:        newAnnouncer,
		ReadIPVS:            defaultReadIPVS,
	}
}

// Daemon is one running director.
type Daemon struct {
	log     *slog.Logger
	level   *slog.LevelVar
	version string
	started time.Time
	edges   Edges

	reloadMu sync.Mutex // serialises reloads
	mu       sync.Mutex // guards the fields below
	cfg      *config.Config
	running  []*runningInstance // in configuration order
	sockets  map[connKey]*socket
	carriers map[string]*carrier
	vmacs    map[vmacKey]*vmacUse // created lazily

	dp      *dataplane.Dataplane // nil without services
	metrics *metrics             // nil unless metrics.listen is set
	hooks   *hookState           // notify commands and the notify FIFO
	closers []func() error
	// eff is cfg with registered real servers added: what the dataplane
	// and checks run. pairHash is cfg's config.PairHash. api serves the
	// peer and registrations (nil when off).
	eff      *config.Config
	pairHash string
	api      *apiServer
	auth     *apiauth.Guard // throttles failed authentications; made on first use
	// mergeRefused is the last refusal of the peer's decisions logged.
	mergeRefused string
	// ec2Call, if set (metrics on), observes EC2 API calls; set by Run
	// before any instance starts.
	ec2Call func(op string, took time.Duration, err error)
	// regKick wakes registrationLoop.
	regKick chan struct{}
	// tracks runs the scripts, track files and track processes; nil in
	// tests that build a Daemon by hand (everything counts as up).
	tracks *track.Manager

	runCtx context.Context // set by Run; instances started by a reload use it

	// groups coordinates the sync groups; it has its own lock, taken on
	// instance goroutines, so it never waits for d.mu.
	groups *syncGroups

	// routed is routed mode's running part; nil without a routing section.
	routed *routed

	// With a VRRP process (Edges.VRRPWorker): vrrp is its client, full
	// the whole configuration (cfg is its HostPart). nil otherwise.
	vrrp *vrrpproc.Client
	full *config.Config
	// In the VRRP process: onMaster reports mastership changes to the
	// daemon (which keeps the dataplane), onReady the instances'
	// start, and remote holds the tracked services' and real servers'
	// states the daemon sends (vrrpproc.TrackKey). Guarded by mu.
	onMaster func(instance string, master bool)
	onReady  func()
	remote   map[string]bool
	// quietReload leaves reload log lines to the daemon (set in the
	// VRRP process).
	quietReload bool
}

// runningInstance is one VRRP instance and what it owns.
type runningInstance struct {
	cfg    config.Instance
	in     *vrrp.Instance
	sock   *socket
	closer func() error       // the mover's
	local  LocalMover         // the local mover (under cloud's, if any)
	cloud  CloudMover         // nil unless the instance moves its VIPs through EC2
	cancel context.CancelFunc // set when it starts
	done   chan error
	// hooks are the instance's notify commands, read when its state
	// changes, so that a reload changes them without a restart.
	hooks *atomic.Pointer[config.StateHooks]
	// Last values given to the instance, so that only changes are sent.
	prio  int
	fault bool
	link  bool
}

// connKey identifies one socket: instances that share an interface, family
// and mode share a socket, and the dispatcher demultiplexes by VRID.
type connKey struct {
	iface  string
	family int
	source netip.Addr // invalid for multicast, or unicast from the interface's own address
	// unicast: adverts go to listed peers. Without source the socket
	// picks the interface's address of the family when it opens.
	unicast bool
	// sourceIf is where that address is picked when it is not iface: a
	// VMAC interface's parent.
	sourceIf string
	// routed: unicast peers behind routers, any TTL accepted.
	routed bool
}

type socket struct {
	key   connKey
	conn  *swappableConn // reopened by superviseReader if its reader fails
	disp  *vrrp.Dispatcher
	users int
	done  chan struct{}
	// fault is set while the reader is down (the watchdog checks it).
	fault atomic.Pointer[readerFault]
}

// carrier watches one interface for the instances on it.
type carrier struct {
	up     bool
	cancel context.CancelFunc
}

// New prepares a daemon on edges (DefaultEdges in production): it opens
// IPVS if services are configured, so that a kernel without IPVS fails at
// start. Run opens the VRRP sockets.
func New(cfg *config.Config, edges Edges, version string, level *slog.LevelVar, log *slog.Logger) (*Daemon, error) {
	if level == nil {
		level = new(slog.LevelVar)
	}
	logWarnings(log, cfg)
	var full *config.Config
	if len(edges.VRRPWorker) > 0 && len(cfg.Instances) > 0 {
		// The instances run in the VRRP process; this one runs the rest.
		full, cfg = cfg, cfg.HostPart()
	}
	d := &Daemon{
		cfg: cfg, log: log, level: level, version: version, started: time.Now(), edges: edges,
		sockets: map[connKey]*socket{}, carriers: map[string]*carrier{},
		eff: cfg, pairHash: config.PairHash(cfg), regKick: make(chan struct{}, 1), full: full,
	}
	if full != nil {
		d.pairHash = config.PairHash(full)
	}
	d.groups = newSyncGroups(cfg, groupHooks{d: d, log: logGroupNotifier{log.With("part", "sync-group")}}, log)
	d.tracks = track.New(track.Options{OnChange: d.retrack, Logger: log.With("part", "track")})
	if cfg.Metrics.Listen != "" {
		d.metrics = newMetrics(d) // before the dataplane, which reports to it
	}
	if err := d.openHooks(cfg); err != nil { // before the dataplane, which reports to it
		return nil, err
	}
	if len(cfg.Services) > 0 {
		if err := d.openDataplane(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// openDataplane connects to the kernel's IPVS; with services configured, a
// kernel without IPVS is a start-up error rather than a silent no-op.
func (d *Daemon) openDataplane() error {
	// The ownership file and the runtime decisions beside it decide what
	// director deletes and how it weighs servers: their directory must be
	// root's alone.
	if f := d.cfg.IPVS.StateFile; f != "" {
		if err := privdir.Ensure("state directory", filepath.Dir(f)); err != nil {
			return err
		}
	}
	k, err := d.edges.OpenIPVS()
	if err != nil {
		return fmt.Errorf("open IPVS (is the ip_vs module loaded?): %w", err)
	}
	if c, ok := k.(io.Closer); ok {
		d.closers = append(d.closers, c.Close)
	}
	dial := func() (dataplane.SyncDaemon, error) {
		c, err := d.edges.DialSync()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	var sc dataplane.SyncDaemon // opened at once when configured, so a start-up fails clearly
	if d.cfg.IPVS.Sync != nil {
		if sc, err = dial(); err != nil {
			return err
		}
	}
	o := dataplane.Options{
		Kernel: k, Sync: sc, DialSync: dial, SysctlDir: d.edges.SysctlDir,
		Logger: d.log.With("part", "ipvs"), CheckLogger: d.log.With("part", "checks"),
		OnDecision: d.kickPeer, OnHealth: func() { d.retrack(); d.kickHealthHooks() },
		CheckWorker: d.edges.CheckWorker,
	}
	if m := d.metrics; m != nil {
		o.OnPass, o.OnCheckResult = m.observe, m.checkResult
	}
	dp, err := dataplane.New(d.cfg, o)
	if err != nil {
		if c, ok := sc.(io.Closer); ok {
			c.Close()
		}
		return err
	}
	d.closers = append(d.closers, dp.Close)
	d.dp = dp
	return d.applyData(d.cfg)
}

func socketName(k connKey) string {
	if k.source.IsValid() {
		return "unicast " + k.source.String()
	}
	if k.unicast {
		return fmt.Sprintf("unicast IPv%d", k.family)
	}
	return fmt.Sprintf("multicast IPv%d", k.family)
}

func keyOf(ic *config.Instance) connKey {
	k := connKey{iface: ic.Interface, family: ic.Family()}
	if ic.Unicast != nil {
		k.source, k.unicast, k.routed = ic.Unicast.SourceAddr, true, ic.Unicast.Routed
	}
	if ic.VMAC && !ic.VMACXmitBase && ic.Unicast == nil {
		// Adverts leave from the virtual MAC, with the parent's address.
		// Not with unicast: peers send to the parent's address, so to the
		// parent's MAC, which the macvlan never receives.
		k.iface, k.sourceIf = ic.VMACName, ic.Interface
	}
	return k
}

func instanceConfig(ic *config.Instance, conn vrrp.Sender, log *slog.Logger) vrrp.InstanceConfig {
	c := vrrp.InstanceConfig{
		Name: ic.Name,
		VRID: uint8(ic.VRID),
		Machine: vrrp.MachineConfig{
			Version:      vrrp.Version(ic.Version),
			Priority:     uint8(ic.Priority),
			Interval:     ic.AdvertInterval.D(),
			Preempt:      ic.PreemptEnabled(),
			PreemptDelay: ic.PreemptDelay.D(),
			Addr:         conn.Source(),
		},
		Group:  transport.MulticastGroup(ic.Family()),
		Logger: log,
	}
	for _, p := range ic.Addresses {
		c.Addresses = append(c.Addresses, p.Addr())
	}
	if ic.Unicast != nil {
		c.Peers = ic.Unicast.PeerAddrs
	}
	c.Sources = ic.SourceAddrs
	if ic.AuthPass != "" {
		c.AuthType = 1
		copy(c.AuthData[:], ic.AuthPass)
	}
	return c
}

// instances returns the running VRRP instances.
func (d *Daemon) instances() []*vrrp.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*vrrp.Instance, len(d.running))
	for i, r := range d.running {
		out[i] = r.in
	}
	return out
}

// Run runs until ctx ends, then stops every instance gracefully (a master
// hands its VIPs over first) and releases everything.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	// The VRRP process has none: the daemon answers for it.
	if d.cfg.ControlSocket != "" {
		ctl, err := control.Listen(d.cfg.ControlSocket, d, d.log)
		if err != nil {
			return err
		}
		go func() {
			if err := ctl.Serve(); err != nil {
				d.log.Error("control socket stopped", "err", err)
			}
		}()
		defer ctl.Close()
	}
	regCtx, stopReg := context.WithCancel(context.Background())
	defer stopReg()
	go d.registrationLoop(regCtx)
	go d.healthLoop(regCtx)
	if d.cfg.RTPriority > 0 {
		d.applyRT(d.cfg.RTPriority)
	}
	go rtsched.Keep(regCtx, func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.cfg.RTPriority
	}, rtKeepEvery, func(err error) { d.log.Error("rt_priority: threads the runtime started since", "err", err) })
	if err := d.reloadAPI(d.cfg); err != nil {
		return err
	}
	defer func() {
		d.mu.Lock()
		a := d.api
		d.api = nil
		d.mu.Unlock()
		a.close()
	}()

	// The dataplane outlives the instances: a stopping master keeps
	// forwarding until its successor has taken over.
	dpCtx, stopDP := context.WithCancel(context.Background())
	dpDone := make(chan struct{})
	if d.dp != nil {
		go func() { defer close(dpDone); d.dp.Run(dpCtx) }()
		go d.pruneLoop(regCtx, pruneEvery)
	} else {
		close(dpDone)
	}
	defer func() { stopDP(); <-dpDone }()

	if addr := d.cfg.Metrics.Listen; addr != "" {
		m := d.metrics
		d.ec2Call = m.ec2Call
		mctx, stopMetrics := context.WithCancel(context.Background())
		defer stopMetrics()
		go func() {
			if err := m.serve(mctx, addr); err != nil {
				d.log.Error("metrics endpoint stopped", "err", err)
			}
		}()
	}
	d.mu.Lock()
	d.runCtx = ctx
	d.mu.Unlock()
	// Trackers first: their first probes run at once, before the
	// instances could become master.
	d.tracks.Set(d.cfg)
	defer d.tracks.Close()
	if d.cfg.Routed() {
		if err := d.startRouting(ctx, d.cfg); err != nil {
			return err
		}
		// After the drain below; before the dataplane stops.
		defer func() {
			if err := d.stopRouting(context.Background()); err != nil {
				d.log.Error("routing: stop", "err", err)
			}
		}()
	}
	// No reload while the instances start: it would see some running and
	// could stop watching the carrier of one prepared but not yet launched.
	d.reloadMu.Lock()
	for _, ic := range d.ownInstances(d.cfg) {
		if err := d.startInstance(ic); err != nil {
			d.reloadMu.Unlock()
			d.stopAll()
			return err
		}
	}
	d.reloadMu.Unlock()
	if d.full != nil {
		if err := d.startVRRP(); err != nil {
			return err
		}
		defer d.stopVRRP()
	}
	instances := len(d.cfg.Instances)
	if d.full != nil {
		instances = len(d.full.Instances)
	}
	d.log.Info("director running", "instances", instances, "services", len(d.cfg.Services))
	d.notify(sd.SdNotifyReady)
	if d.onReady != nil {
		d.onReady()
	}
	wdCtx, stopWD := context.WithCancel(context.Background())
	defer stopWD()
	go d.watchdog(wdCtx)

	<-ctx.Done()
	d.notify(sd.SdNotifyStopping)
	// Routed mode: the routes go first and the traffic is let leave,
	// bounded by drain_timeout, while everything still forwards.
	d.drainForStop()
	d.reloadMu.Lock() // no reload may start instances now
	defer d.reloadMu.Unlock()
	d.stopVRRP() // its masters hand over while this one still forwards
	err := d.stopAll()
	// The instances' notify_stop hooks may still run, each within its
	// timeout; past that they are killed.
	hctx, cancel := context.WithTimeout(context.Background(), d.cfg.Hooks.Timeout.D()+hooks.DefaultGrace)
	d.closeHooks(hctx)
	cancel()
	d.log.Info("director stopped")
	return err
}

// startInstance opens what ic needs (socket, carrier watch, mover) and
// starts it under the run context.
func (d *Daemon) startInstance(ic config.Instance) error {
	ri, err := d.prepareInstance(ic)
	if err != nil {
		return err
	}
	d.launch(ri)
	return nil
}

// prepareInstance opens what ic needs (socket, carrier watch, mover) and
// builds its VRRP instance without starting it, so that a reload can open
// everything before it stops anything. discard undoes it.
func (d *Daemon) prepareInstance(ic config.Instance) (ri *runningInstance, err error) {
	if ic.VMAC {
		// Before the socket, which may be bound to it.
		var release func()
		if release, err = d.acquireVMAC(&ic); err != nil {
			return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
		}
		defer func() {
			if err != nil {
				release()
				return
			}
			closer := ri.closer
			ri.closer = func() error { err := closer(); release(); return err }
		}()
	}
	sock, err := d.acquireSocket(keyOf(&ic))
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
	}
	if _, err := d.watchCarrier(ic.Interface); err != nil {
		d.releaseSocket(sock)
		return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
	}
	for _, t := range ic.Tracks() {
		if t.Interface == "" {
			continue
		}
		if _, err := d.watchCarrier(t.Interface); err != nil {
			d.releaseSocket(sock)
			return nil, fmt.Errorf("instance %s: track: %w", ic.Name, err)
		}
	}
	local, err := d.edges.NewLocalMover(vip.Config{
		Interface: ic.AddressInterface(),
		Addresses: ownAddresses(&ic),
		Elsewhere: elsewhere(&ic),
		Routes:    routesOf(&ic),
		Rules:     rulesOf(&ic),
		Count:     ic.GARP.Count,
		Spacing:   ic.GARP.Interval.D(),
		Refresh:   ic.GARP.Refresh.D(),
		Logger:    d.log.With("instance", ic.Name),
	})
	if err != nil {
		d.releaseSocket(sock)
		return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
	}
	var mover vrrp.Mover = local
	closer := local.Close
	icfg := instanceConfig(&ic, sock.conn, d.log)
	var ec2 CloudMover
	if ic.EC2 != nil {
		// The EC2 mover wraps the local one: the VIP must be on the
		// interface too, so that IPVS receives its packets.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ec2, err = d.edges.NewEC2Mover(dctx, ic.EC2.Cloud, local, cloud.Options{Logger: d.log.With("instance", ic.Name, "part", "ec2"), ObserveCall: d.ec2Call})
		cancel()
		if err != nil {
			local.Close()
			d.releaseSocket(sock)
			return nil, fmt.Errorf("instance %s: EC2: %w", ic.Name, err)
		}
		mover, closer = ec2, func() error { ec2.Close(); return local.Close() }
		icfg.MoveTimeout = max(icfg.MoveTimeout, ic.EC2.Cloud.MoveTimeout+5*time.Second)
	}
	if d.dp != nil || d.onMaster != nil {
		name := ic.Name
		icfg.OnState = func(s vrrp.State) { d.setMaster(name, s == vrrp.StateMaster) }
	}
	hk := new(atomic.Pointer[config.StateHooks])
	hk.Store(&ic.StateHooks)
	icfg.Notify = d.instanceNotifier(ic.Name, hk)
	// A sync group member starts with its group's gate and reports to it.
	icfg.Gate = d.groups.gateFor(ic.Name)
	var self *vrrp.Instance // set below, before the instance runs
	icfg.OnMember = func(ms vrrp.MemberStatus) { d.groups.report(self, ms) }
	in := vrrp.NewInstance(icfg, sock.conn, mover)
	self = in
	return &runningInstance{cfg: ic, in: in, sock: sock, closer: closer, local: local, cloud: ec2, hooks: hk, done: make(chan error, 1), prio: ic.Priority}, nil
}

// ownInstances are the instances of cfg this process runs: none where a
// VRRP process runs them (cfg, its HostPart, only describes them).
func (d *Daemon) ownInstances(cfg *config.Config) []config.Instance {
	d.mu.Lock()
	split := d.full != nil
	d.mu.Unlock()
	if split {
		return nil
	}
	return cfg.Instances
}

// setMaster tells the dataplane (the sync daemon's role follows
// mastership), or from the VRRP process the daemon that has it.
func (d *Daemon) setMaster(instance string, master bool) {
	if d.dp != nil {
		d.dp.SetMaster(instance, master)
	}
	if d.onMaster != nil {
		d.onMaster(instance, master)
	}
}

// ownAddresses are the instance's addresses on its own interface (or its
// VMAC).
func ownAddresses(ic *config.Instance) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ic.Placed {
		if p.Dev == ic.AddressInterface() {
			out = append(out, p.Prefix)
		}
	}
	return out
}

// elsewhere are the instance's addresses on other interfaces.
func elsewhere(ic *config.Instance) []vip.Placed {
	var out []vip.Placed
	for _, p := range ic.Placed {
		if p.Dev != ic.AddressInterface() {
			out = append(out, vip.Placed{Prefix: p.Prefix, Interface: p.Dev})
		}
	}
	return out
}

// routesOf are the instance's routes for the mover.
func routesOf(ic *config.Instance) []vip.Route {
	var out []vip.Route
	for _, r := range ic.Routes {
		out = append(out, vip.Route{To: r.ToPrefix, Via: r.ViaAddr, Dev: r.Dev, Table: r.Table, Metric: r.Metric, Src: r.SrcAddr})
	}
	return out
}

// rulesOf are the instance's rules for the mover.
func rulesOf(ic *config.Instance) []vip.Rule {
	var out []vip.Rule
	for _, r := range ic.Rules {
		out = append(out, vip.Rule{From: r.FromPrefix, To: r.ToPrefix, Table: r.Table, Priority: r.Priority, Family: r.Family})
	}
	return out
}

// discard releases what prepareInstance opened for an instance that never
// ran.
func (d *Daemon) discard(ri *runningInstance) {
	ri.closer()
	d.releaseSocket(ri.sock)
}

// launch starts a prepared instance under the run context, with its
// interface's carrier as it is now.
func (d *Daemon) launch(ri *runningInstance) {
	d.mu.Lock()
	up := true
	if c, ok := d.carriers[ri.cfg.Interface]; ok {
		up = c.up
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	ri.cancel, ri.link = cancel, up
	d.running = append(d.running, ri)
	d.mu.Unlock()
	d.groups.register(ri.in)
	d.updateDispatcher(ri.sock)
	go func() { ri.done <- ri.in.Run(ctx, up) }()
	d.retrack()
}

// stopInstance stops ri gracefully, waits for its handover, and releases
// what only it used.
func (d *Daemon) stopInstance(ri *runningInstance) error {
	ri.cancel()
	err := <-ri.done
	d.groups.unregister(ri.in)
	ri.closer()
	d.mu.Lock()
	for i, r := range d.running {
		if r == ri {
			d.running = append(d.running[:i], d.running[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	d.updateDispatcher(ri.sock)
	d.releaseSocket(ri.sock)
	return err
}

// stopAll stops every instance at once and waits for all handovers.
func (d *Daemon) stopAll() error {
	d.mu.Lock()
	rs := append([]*runningInstance(nil), d.running...)
	d.mu.Unlock()
	errs := make(chan error, len(rs))
	for _, r := range rs {
		go func() { errs <- d.stopInstance(r) }()
	}
	var all []error
	for range rs {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// acquireSocket returns the shared socket for k, opening it on first use.
func (d *Daemon) acquireSocket(k connKey) (*socket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sockets[k]; ok {
		s.users++
		return s, nil
	}
	c, err := d.edges.ListenVRRP(listenOptions(k))
	if err != nil {
		return nil, fmt.Errorf("open VRRP socket on %s: %w", k.iface, err)
	}
	group := netip.Addr{}
	if !k.unicast {
		group = transport.MulticastGroup(k.family)
	}
	s := &socket{key: k, conn: newSwappableConn(c), users: 1, done: make(chan struct{})}
	s.disp = vrrp.NewDispatcher(s.conn, k.iface, group, nil, d.log.With("iface", k.iface, "socket", socketName(k)))
	s.disp.SetRouted(k.routed)
	d.sockets[k] = s
	go func() {
		defer close(s.done)
		d.superviseReader(s)
	}()
	return s, nil
}

// releaseSocket closes s when its last instance is gone.
func (d *Daemon) releaseSocket(s *socket) {
	d.mu.Lock()
	s.users--
	last := s.users == 0
	if last {
		delete(d.sockets, s.key)
	}
	d.mu.Unlock()
	if last {
		s.conn.Close()
		<-s.done
	}
}

// updateDispatcher gives s's dispatcher the instances now using it.
func (d *Daemon) updateDispatcher(s *socket) {
	d.mu.Lock()
	var ins []*vrrp.Instance
	for _, r := range d.running {
		if r.sock == s {
			ins = append(ins, r.in)
		}
	}
	d.mu.Unlock()
	s.disp.SetInstances(ins)
}

// watchCarrier starts watching iface once and returns its current carrier.
func (d *Daemon) watchCarrier(iface string) (bool, error) {
	d.mu.Lock()
	if c, ok := d.carriers[iface]; ok {
		up := c.up
		d.mu.Unlock()
		return up, nil
	}
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := d.edges.WatchCarrier(ctx, iface)
	if err != nil {
		cancel()
		return false, fmt.Errorf("watch carrier of %s: %w", iface, err)
	}
	var up bool
	select {
	case up = <-ch:
	case <-time.After(5 * time.Second):
		cancel()
		return false, fmt.Errorf("watch carrier of %s: no initial state", iface)
	}
	c := &carrier{up: up, cancel: cancel}
	d.mu.Lock()
	d.carriers[iface] = c
	d.mu.Unlock()
	go func() {
		for up := range ch {
			d.mu.Lock()
			c.up = up
			current := d.carriers[iface] == c
			d.mu.Unlock()
			if !current {
				continue // stopped by pruneCarriers; the channel closes soon
			}
			d.log.Info("carrier changed", "iface", iface, "up", up)
			d.retrack()
		}
	}()
	return up, nil
}

// pruneCarriers stops watching the interfaces no running instance is on or
// tracks any more, after a reload removed or moved their instances.
func (d *Daemon) pruneCarriers() {
	d.mu.Lock()
	need := map[string]bool{}
	if r := d.cfg.Routing; r != nil {
		for _, t := range r.Track {
			if t.Interface != "" {
				need[t.Interface] = true
			}
		}
	}
	for _, r := range d.running {
		need[r.cfg.Interface] = true
		for _, t := range r.cfg.Tracks() {
			if t.Interface != "" {
				need[t.Interface] = true
			}
		}
	}
	var stop []string
	for iface, c := range d.carriers {
		if !need[iface] {
			c.cancel()
			delete(d.carriers, iface)
			stop = append(stop, iface)
		}
	}
	d.mu.Unlock()
	for _, iface := range stop {
		d.log.Info("stopped watching carrier", "iface", iface)
	}
}

// Close releases IPVS, sockets and watchers; it does not remove VIPs (Run does).
func (d *Daemon) Close() {
	d.mu.Lock()
	socks := make([]*socket, 0, len(d.sockets))
	for _, s := range d.sockets {
		socks = append(socks, s)
	}
	for _, c := range d.carriers {
		c.cancel()
	}
	d.mu.Unlock()
	for _, s := range socks {
		s.conn.Close()
	}
	for _, f := range d.closers {
		f()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // whatever hook still runs is killed
	d.closeHooks(ctx)
}
