package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/config"
	"github.com/director-lb/director/decisions"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/ipvs/syncd"
	"github.com/director-lb/director/vrrp"
)

// Desired turns the configuration's services into the IPVS model.
func Desired(cfg *config.Config) []ipvs.Service {
	out := make([]ipvs.Service, 0, len(cfg.Services))
	for i := range cfg.Services {
		out = append(out, desiredService(&cfg.Services[i]))
	}
	return out
}

var forwards = map[string]ipvs.Forward{"dr": ipvs.Route, "nat": ipvs.Masq, "tunnel": ipvs.Tunnel}

var protocols = map[string]ipvs.Protocol{"tcp": ipvs.TCP, "udp": ipvs.UDP, "sctp": ipvs.SCTP}

func desiredService(s *config.Service) ipvs.Service {
	svc := ipvs.Service{
		Key:       ipvs.ServiceKey{Family: s.AddrFamily, FWMark: uint32(s.FWMark)},
		Scheduler: s.Scheduler,
	}
	if s.FWMark == 0 {
		svc.Key.Protocol = protocols[s.Protocol]
		svc.Key.Addr = s.Addr
		svc.Key.Port = uint16(s.Port)
	}
	for _, f := range s.SchedulerFlags {
		switch f {
		case "sh-fallback", "mh-fallback":
			svc.Flags |= ipvs.FlagSchedFallback
		case "sh-port", "mh-port":
			svc.Flags |= ipvs.FlagSchedPort
		}
	}
	if p := s.Persistence; p != nil {
		svc.Persistent = true
		svc.Timeout = p.Timeout.D()
		svc.Netmask = p.Bits
	}
	for _, r := range s.RealServers {
		fwd := forwards[s.Forwarding]
		if r.Forwarding != "" {
			fwd = forwards[r.Forwarding]
		}
		svc.Destinations = append(svc.Destinations, ipvs.Destination{
			Addr:    r.Addr,
			Port:    uint16(r.Port),
			Weight:  int32(r.EffectiveWeight()),
			Forward: fwd,
			Upper:   uint32(r.UpperThreshold),
			Lower:   uint32(r.LowerThreshold),
		})
	}
	if s.Sorry.IsValid() {
		svc.Sorry = &ipvs.Destination{Addr: s.Sorry.Addr(), Port: s.Sorry.Port(), Weight: 1, Forward: forwards[s.Forwarding]}
	}
	return svc
}

// followedInstance is the VRRP instance a service follows when services are
// installed on the master only: the configured one, or the one whose VIPs
// hold the service address, or the only instance there is.
func followedInstance(cfg *config.Config, s *config.Service) string {
	if s.Instance != "" {
		return s.Instance
	}
	for _, in := range cfg.Instances {
		for _, p := range in.Addresses {
			if p.Addr() == s.Addr {
				return in.Name
			}
		}
	}
	if len(cfg.Instances) == 1 {
		return cfg.Instances[0].Name
	}
	return ""
}

// drainPoll is how often draining real servers are checked for connections.
const drainPoll = time.Second

// tombstoneTTL is how long a withdrawn decision (enable, deregister) is
// remembered; pruned at start.
const tombstoneTTL = 7 * 24 * time.Hour

// dataplane keeps the kernel's IPVS table and sync daemon in step with the
// configuration and with VRRP mastership. It runs on its own goroutine so
// that kernel calls never hold up VRRP.
type dataplane struct {
	rec  *ipvs.Reconciler
	sync syncDaemon // nil until sync is first wanted
	// dialSync opens the sync daemon's socket when a reload turns sync on;
	// nil in tests that give sync directly.
	dialSync func() (syncDaemon, error)
	log      *slog.Logger

	mu       sync.Mutex // guards everything below
	cfg      *config.Config
	all      []ipvs.Service
	follows  []string // per service: the instance it follows
	syncInst string
	masters  map[string]bool
	// changedAt is when each instance's mastership last changed: the sync
	// daemon's role follows only a mastership that has lasted syncSettle.
	changedAt map[string]time.Time
	kick      chan struct{}
	pings     chan chan struct{}
	// store keeps the runtime decisions (overrides, registrations); node
	// signs this node's own; onDecision, if set, hears of each (the peer
	// sync). Set before run.
	store      *decisions.Store
	node       string
	onDecision func()
	// sysctlDir, if set, is where net.ipv4.vs.* are written (set before
	// run; unset in unit tests so they never touch the host's kernel).
	sysctlDir string
	// health, if set, decides the real servers' weights; set before run.
	health *health
	// onPass, if set, observes every reconcile pass (metrics); set before run.
	onPass func(ipvs.Result, time.Duration, error)
}

// sysctlState remembers what the dataplane last wrote to net.ipv4.vs.*, so
// that settings are written once per start or reload and a failure is
// logged once, not every pass.
type sysctlState struct {
	done    map[string]int
	lastErr string
}

func (s *sysctlState) ensure(dir string, want map[string]int, log *slog.Logger) {
	if dir == "" || maps.Equal(s.done, want) {
		return
	}
	changes, err := ipvs.SetSysctls(dir, want)
	for _, c := range changes {
		log.Info("ipvs: sysctl set", "name", "net.ipv4.vs."+c.Name, "old", c.Old, "new", c.New)
	}
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			log.Error("ipvs: sysctl, will retry", "err", err)
			s.lastErr = msg
		}
		return
	}
	s.done, s.lastErr = want, ""
}

// ping returns once the dataplane loop has answered (for the watchdog).
func (dp *dataplane) ping(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case dp.pings <- ch:
	case <-ctx.Done():
		return fmt.Errorf("ipvs loop does not answer: %w", ctx.Err())
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ipvs loop does not answer: %w", ctx.Err())
	}
}

func newDataplane(cfg *config.Config, k ipvs.Kernel, sc syncDaemon, log *slog.Logger) (*dataplane, error) {
	rec, err := ipvs.New(ipvs.Config{
		Kernel:       k,
		StatePath:    cfg.IPVS.StateFile,
		DrainTimeout: cfg.IPVS.DrainTimeout.D(),
		// Passes between resyncs (health, mastership, reload) plan against
		// the reconciler's view instead of re-reading every service: with
		// 1,000 real servers a full read costs far more than the writes.
		// The view expires just before each resync tick, whose pass then
		// reads the kernel whole and repairs drift.
		CacheFor: cacheFor(cfg),
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	dp := &dataplane{rec: rec, sync: sc, log: log, masters: map[string]bool{}, changedAt: map[string]time.Time{}, kick: make(chan struct{}, 1), pings: make(chan chan struct{})}
	dp.node = cfg.Node
	if dp.node == "" {
		dp.node = "local"
	}
	if dp.store, err = decisions.Open(overridesFile(cfg.IPVS.StateFile), nil); err != nil {
		return nil, fmt.Errorf("runtime decisions: %w", err)
	}
	// Withdrawn decisions are kept so that the peer cannot bring back what
	// they withdrew; a week covers any peer that is still in touch.
	if n, err := dp.store.Prune(tombstoneTTL); err != nil {
		log.Warn("runtime decisions: prune withdrawn ones", "err", err)
	} else if n > 0 {
		log.Info("runtime decisions: dropped old withdrawn ones", "count", n)
	}
	var live []string
	for _, d := range dp.store.Snapshot() {
		if !d.Tombstone() {
			live = append(live, string(d.Kind)+" "+d.Target+"="+describeOverride(d))
		}
	}
	if len(live) > 0 {
		log.Info("runtime decisions in force", "decisions", live)
	}
	dp.setConfig(cfg)
	return dp, nil
}

// cacheFor is how long passes may plan against the reconciler's view:
// until just before the next resync tick.
func cacheFor(cfg *config.Config) time.Duration { return cfg.IPVS.ResyncInterval.D() * 9 / 10 }

// setConfig takes a new configuration (start, reload) and wakes the loop.
func (dp *dataplane) setConfig(cfg *config.Config) {
	// A reload may change the drain timeout and the resync interval; the
	// run loop re-times its ticker on the pass this kicks.
	dp.rec.SetTimings(cfg.IPVS.DrainTimeout.D(), cacheFor(cfg))
	dp.mu.Lock()
	dp.cfg = cfg
	dp.all = Desired(cfg)
	dp.follows = dp.follows[:0]
	for i := range cfg.Services {
		dp.follows = append(dp.follows, followedInstance(cfg, &cfg.Services[i]))
	}
	dp.syncInst = ""
	if s := cfg.IPVS.Sync; s != nil {
		dp.syncInst = s.Instance
		if dp.syncInst == "" && len(cfg.Instances) > 0 {
			dp.syncInst = cfg.Instances[0].Name
		}
	}
	dp.mu.Unlock()
	select {
	case dp.kick <- struct{}{}:
	default:
	}
}

// onState is called on an instance's goroutine; it must not block.
func (dp *dataplane) onState(instance string, s vrrp.State) {
	dp.mu.Lock()
	changed := dp.masters[instance] != (s == vrrp.StateMaster)
	dp.masters[instance] = s == vrrp.StateMaster
	if changed {
		dp.changedAt[instance] = time.Now()
	}
	dp.mu.Unlock()
	if changed {
		select {
		case dp.kick <- struct{}{}:
		default:
		}
	}
}

// desired is what the table should hold now: every service, or on a node
// configured for master-only services, those of instances it is master of.
func (dp *dataplane) desired() []ipvs.Service {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	all := dp.all
	if dp.health != nil {
		all = withWeights(dp.cfg, dp.all, dp.health.weights())
	}
	names := make([]string, len(dp.cfg.Services))
	for i := range dp.cfg.Services {
		names[i] = dp.cfg.Services[i].Name
	}
	all = applyOverrides(names, all, dp.store.Override)
	if dp.cfg.IPVS.BackupServices() {
		return all
	}
	var out []ipvs.Service
	for i, s := range all {
		if dp.masters[dp.follows[i]] {
			out = append(out, s)
		}
	}
	return out
}

// withWeights applies health-decided weights to the configured services: a
// failed server gets weight 0 (or is left out with on_failure: remove), and
// with every weight at 0 the reconciler puts the sorry server in.
func withWeights(cfg *config.Config, all []ipvs.Service, ws map[string]checks.ServiceWeights) []ipvs.Service {
	out := make([]ipvs.Service, len(all))
	for i, s := range all {
		w, ok := ws[cfg.Services[i].Name]
		if !ok {
			out[i] = s
			continue
		}
		byAddr := make(map[netip.AddrPort]checks.ServerWeight, len(w.Servers))
		for _, sw := range w.Servers {
			byAddr[sw.Server] = sw
		}
		s.Destinations = nil
		for _, d := range all[i].Destinations {
			sw, ok := byAddr[d.AddrPort()]
			switch {
			case !ok:
			case !sw.Present:
				continue
			default:
				d.Weight = int32(sw.Weight)
			}
			s.Destinations = append(s.Destinations, d)
		}
		out[i] = s
	}
	return out
}

// setOverride records an operator override ("enable" withdraws it),
// persists it, wakes the loop and tells the peer.
func (dp *dataplane) setOverride(target, mode string, weight int) error {
	k, err := parseOverrideTarget(target)
	if err != nil {
		return err
	}
	dec := decisions.Decision{Kind: decisions.KindOverride, Target: string(k), Action: decisions.Action(mode), Node: dp.node}
	switch mode {
	case "enable", "drain", "disable":
	case "weight":
		if weight < 0 || weight > ipvs.MaxWeight {
			return fmt.Errorf("weight %d is not 0-%d", weight, ipvs.MaxWeight)
		}
		dec.Weight = weight
	default:
		return fmt.Errorf("unknown action %q", mode)
	}
	dp.mu.Lock()
	known := dp.knows(k)
	dp.mu.Unlock()
	if !known {
		return fmt.Errorf("no configured real server %s", k)
	}
	if _, err := dp.store.Put(dec); err != nil {
		return err
	}
	dp.log.Info("runtime override", "real_server", string(k), "action", mode, "weight", weight)
	dp.poke()
	if dp.onDecision != nil {
		dp.onDecision()
	}
	return nil
}

// knows reports whether k names a configured real server. dp.mu is held.
func (dp *dataplane) knows(k overrideKey) bool {
	for _, s := range dp.cfg.Services {
		for _, r := range s.RealServers {
			ap := netip.AddrPortFrom(r.Addr, uint16(r.Port)).String()
			if string(k) == ap || string(k) == s.Name+"/"+ap {
				return true
			}
		}
	}
	return false
}

// currentWeights is what health decided now, for state.
func (dp *dataplane) currentWeights() map[string]checks.ServiceWeights {
	if dp == nil || dp.health == nil {
		return nil
	}
	return dp.health.weights()
}

// poke asks the loop for a pass soon (health changed).
func (dp *dataplane) poke() {
	select {
	case dp.kick <- struct{}{}:
	default:
	}
}

// syncDaemon is the kernel's IPVS sync daemon as the dataplane drives it;
// *syncd.Client in production, a fake in tests.
type syncDaemon interface {
	Ensure(syncd.Config) (changed bool, err error)
	Stop(syncd.Role) error
}

// closeSync releases the sync daemon's socket, once the run loop is over.
func (dp *dataplane) closeSync() error {
	if c, ok := dp.sync.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// syncSettle is how long a mastership must last before the sync daemon's
// role follows it. Both nodes can be master for a few milliseconds at
// start-up; in the lab, stopping a master sync thread started that
// recently twice hung the kernel call, and with it the dataplane loop.
const syncSettle = 300 * time.Millisecond

// syncWant is the sync daemon to run now, or nil for none, and how long
// the role must still wait for the mastership to settle.
func (dp *dataplane) syncWant() (*syncd.Config, time.Duration) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	s := dp.cfg.IPVS.Sync
	if s == nil {
		return nil, 0
	}
	c := &syncd.Config{Role: syncd.Backup, Interface: s.Interface, SyncID: uint8(s.SyncID)}
	if dp.masters[dp.syncInst] {
		c.Role = syncd.Master
	}
	wait := syncSettle - time.Since(dp.changedAt[dp.syncInst])
	return c, max(wait, 0)
}

// ensureSync brings the kernel's sync daemon to what the configuration
// wants; have is what it last set. A reload may turn sync on (the socket
// is opened then) or off (the daemon director started is stopped; one
// started by hand without ipvs.sync is left alone). A role change waits
// for the mastership to settle. It returns how soon to look again: 0 when
// all is done, else after a failure or while a role change waits.
func (dp *dataplane) ensureSync(have *syncd.Config) time.Duration {
	want, settle := dp.syncWant()
	if want == nil {
		if *have == (syncd.Config{}) || dp.sync == nil {
			return 0
		}
		if err := dp.sync.Stop(have.Role); err != nil {
			dp.log.Error("ipvs: stopping the sync daemon, will retry", "role", have.Role.String(), "err", err)
			return drainPoll
		}
		dp.log.Info("ipvs: sync daemon stopped (ipvs.sync removed)", "role", have.Role.String())
		*have = syncd.Config{}
		return 0
	}
	if have.Role != 0 && want.Role != have.Role && settle > 0 {
		return settle
	}
	if dp.sync == nil {
		if dp.dialSync == nil {
			return 0
		}
		s, err := dp.dialSync()
		if err != nil {
			dp.log.Error("ipvs: sync daemon, will retry", "err", err)
			return drainPoll
		}
		dp.sync = s
	}
	changed, err := dp.sync.Ensure(*want)
	switch {
	case err != nil:
		dp.log.Error("ipvs: sync daemon, will retry", "role", want.Role.String(), "err", err)
		return drainPoll
	case changed && *want == *have:
		dp.log.Warn("ipvs: sync daemon had drifted, restarted", "role", want.Role.String(), "iface", want.Interface, "sync_id", want.SyncID)
	case changed || *want != *have:
		dp.log.Info("ipvs: sync daemon running", "role", want.Role.String(), "iface", want.Interface, "sync_id", want.SyncID)
	}
	*have = *want
	return 0
}

// run applies the table at start, after every mastership change and every
// resync interval, until ctx ends.
func (dp *dataplane) run(ctx context.Context) {
	dp.mu.Lock()
	every := dp.cfg.IPVS.ResyncInterval.D()
	dp.mu.Unlock()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var have syncd.Config
	var sysctls sysctlState
	for {
		began := time.Now()
		res, err := dp.rec.Apply(ctx, dp.desired())
		if dp.onPass != nil {
			dp.onPass(res, time.Since(began), err)
		}
		// After Apply: its first netlink call loads ip_vs, which creates
		// the sysctls.
		dp.mu.Lock()
		want := dp.cfg.IPVS.Sysctl
		if d := dp.cfg.IPVS.ResyncInterval.D(); d != every {
			every = d
			tick.Reset(every)
			dp.log.Info("ipvs: resync interval changed", "every", every)
		}
		dp.mu.Unlock()
		sysctls.ensure(dp.sysctlDir, want, dp.log)
		if err != nil {
			dp.log.Error("ipvs: apply incomplete, will retry", "err", err, "result", res.String())
		} else if res.Changed() {
			dp.log.Info("ipvs: table updated", "result", res.String())
		}
		// Draining real servers are deleted as soon as their connections
		// end, so look again soon rather than at the next resync.
		var soon <-chan time.Time
		if res.Draining > 0 || err != nil {
			soon = time.After(drainPoll)
		}
		// The sync daemon is checked against the kernel on every pass, not
		// only when the wanted role changes: a role switch that failed (a
		// master thread still stopping when the backup starts) or a daemon
		// stopped by hand is then repaired, and a failure is retried soon
		// rather than at the next resync.
		if d := dp.ensureSync(&have); d > 0 && (soon == nil || d < drainPoll) {
			soon = time.After(d)
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case ch := <-dp.pings:
				close(ch) // answer the watchdog and keep waiting
			case <-dp.kick:
				waiting = false
			case <-tick.C:
				waiting = false
			case <-soon:
				waiting = false
			}
		}
	}
}
