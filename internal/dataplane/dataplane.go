// Package dataplane keeps the kernel's IPVS table and sync daemon in step
// with the configuration, the health checks, the operator's overrides and
// VRRP mastership. One pure function, Desired, turns those inputs into the
// table; the loop programs it and state shows it. See
// docs/design/dataplane.md.
package dataplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/checkproc"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/ipvs/syncd"
)

// Clock is the dataplane's time: real in production (checks.RealClock),
// fake in tests. It drives the checks, slow start, the resync and retries.
type Clock = checks.Clock

// SyncDaemon is the kernel's IPVS sync daemon as the dataplane drives it;
// *syncd.Client in production, a fake in tests.
type SyncDaemon interface {
	// Ensure makes exactly these daemons (one per role) run.
	Ensure(...syncd.Config) (changed bool, err error)
	Stop(syncd.Role) error
}

// Programmer writes the table to the kernel; *ipvs.Reconciler is one.
type Programmer interface {
	Apply(ctx context.Context, desired []ipvs.Service) (ipvs.Result, error)
	SetWeight(ctx context.Context, key ipvs.ServiceKey, dst netip.AddrPort, weight int32) (ipvs.Result, error)
	SetTimings(drainTimeout, cacheFor time.Duration)
	// Invalidate makes the next Apply read the kernel whole (the resync).
	Invalidate()
}

// Options are the dataplane's edges. Only Kernel (or Programmer) is required.
type Options struct {
	// Kernel is the IPVS kernel a reconciler is built on, unless
	// Programmer is given.
	Kernel     ipvs.Kernel
	Programmer Programmer
	// Sync is the sync daemon, opened at start when configured; DialSync
	// opens it when a reload turns sync on (nil: never).
	Sync     SyncDaemon
	DialSync func() (SyncDaemon, error)
	// SysctlDir is where net.ipv4.vs.* are written; empty (unit tests)
	// never touches the host's kernel.
	SysctlDir string
	Clock     Clock        // nil: checks.RealClock{}
	Logger    *slog.Logger // the IPVS side; nil: slog.Default()
	// CheckLogger logs the health checks; nil: Logger.
	CheckLogger *slog.Logger
	// OnDecision hears of each local operator decision (the peer sync).
	OnDecision func()
	// OnHealth hears of every health transition and slow-start step, after
	// the snapshot changed (tracking). It must not block.
	OnHealth func()
	// OnPass observes every kernel pass (metrics); OnCheckResult every
	// check attempt, on the check's goroutine.
	OnPass        func(ipvs.Result, time.Duration, error)
	OnCheckResult func(checks.Result)
	// CheckWorker, if set, is the command line of the check worker
	// process (checkproc): the checks run there, not in this process. If
	// it cannot start, the checks run in process and an error is logged.
	CheckWorker []string
}

// drainPoll is how often draining real servers are checked for connections.
const drainPoll = time.Second

// tombstoneTTL is how long a withdrawn decision (enable, deregister) is
// remembered; pruned at start (and by the daemon on a timer).
const tombstoneTTL = decisions.TombstoneTTL

// fastPathMax is the most weight changes one pass makes with SetWeight;
// more go through one Apply, which batches its writes.
const fastPathMax = 64

// Dataplane keeps the kernel's IPVS table and sync daemon in step. Its loop
// runs on its own goroutine so that kernel calls never hold up VRRP.
type Dataplane struct {
	prog       Programmer
	dialSync   func() (SyncDaemon, error)
	sysctlDir  string
	clock      Clock
	log        *slog.Logger
	onDecision func()
	onPass     func(ipvs.Result, time.Duration, error)
	health     *health
	// store keeps the runtime decisions (overrides, registrations); node
	// signs this node's own.
	store *decisions.Store
	node  string
	sync  SyncDaemon // nil until sync is first wanted; the loop's alone

	mu       sync.Mutex // guards everything below
	cfg      *config.Config
	syncInst string
	masters  map[string]bool
	// changedAt is when each instance's mastership last changed: the sync
	// daemon's role follows only a mastership that has lasted syncSettle.
	changedAt map[string]time.Time
	table     Table // the table the loop last computed: state shows it

	kick  chan struct{}
	pings chan chan struct{}
	// gen counts input changes (every Poke); done is the gen the last
	// finished pass started from. Tests wait on them for a pass that saw
	// a change.
	gen, done atomic.Int64
}

// New builds the dataplane for cfg, loads the runtime decisions and starts
// the health checks. Run programs the kernel; Close releases it all.
func New(cfg *config.Config, o Options) (*Dataplane, error) {
	clock := o.Clock
	if clock == nil {
		clock = checks.RealClock{}
	}
	checkLog := o.CheckLogger
	if checkLog == nil {
		checkLog = o.Logger
	}
	if checkLog == nil {
		checkLog = slog.Default()
	}
	return newWith(cfg, o, func(onEvent func(checks.Event)) checkRunner {
		var onResult func(checks.ID, checks.Result)
		if f := o.OnCheckResult; f != nil {
			onResult = func(_ checks.ID, r checks.Result) { f(r) }
		}
		if len(o.CheckWorker) > 0 {
			c, err := checkproc.Start(checkproc.Config{Argv: o.CheckWorker, Logger: checkLog, OnEvent: onEvent, OnResult: onResult})
			if err == nil {
				return c
			}
			checkLog.Error("health checks run in the daemon's process instead", "err", err)
		}
		return checks.NewManager(checks.Options{Clock: clock, Logger: checkLog, OnEvent: onEvent, OnResult: onResult})
	})
}

// newWith is New with the check runner given (tests give a fake one).
func newWith(cfg *config.Config, o Options, mgr func(func(checks.Event)) checkRunner) (*Dataplane, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	clock := o.Clock
	if clock == nil {
		clock = checks.RealClock{}
	}
	prog := o.Programmer
	if prog == nil {
		rec, err := ipvs.New(ipvs.Config{
			Kernel:       o.Kernel,
			StatePath:    cfg.IPVS.StateFile,
			DrainTimeout: cfg.IPVS.DrainTimeout.D(),
			// Passes between resyncs (health, mastership, reload) plan
			// against the reconciler's view instead of re-reading every
			// service: with 1,000 real servers a full read costs far more
			// than the writes. The view expires just before each resync
			// tick, whose pass then reads the kernel whole and repairs drift.
			CacheFor: cacheFor(cfg),
			Now:      clock.Now,
			Logger:   log,
		})
		if err != nil {
			return nil, err
		}
		prog = rec
	}
	dp := &Dataplane{
		prog: prog, sync: o.Sync, dialSync: o.DialSync, sysctlDir: o.SysctlDir, clock: clock, log: log,
		onDecision: o.OnDecision, onPass: o.OnPass, node: cmp.Or(cfg.Node, "local"),
		masters: map[string]bool{}, changedAt: map[string]time.Time{},
		kick: make(chan struct{}, 1), pings: make(chan chan struct{}),
	}
	var err error
	dp.store, err = decisions.Open(decisions.Options{Path: cfg.DecisionsFile(), Legacy: cfg.LegacyDecisionsFile(), Limits: DecisionLimits(cfg)})
	if err != nil {
		return nil, fmt.Errorf("runtime decisions: %w", err)
	}
	logLoadReport(log, dp.store.Report())
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
	checkLog := o.CheckLogger
	if checkLog == nil {
		checkLog = log
	}
	onHealth := o.OnHealth
	dp.health = newHealth(checkLog, clock, func() {
		dp.Poke()
		if onHealth != nil {
			onHealth()
		}
	}, mgr)
	dp.setConfig(cfg)
	dp.mu.Lock()
	dp.table = dp.desiredLocked()
	dp.mu.Unlock()
	return dp, nil
}

// logLoadReport says loudly what was wrong with the decisions file: the
// daemon starts without the bad entries, and the peer sends its copy of
// them again. A file with many bad entries logs the first few and a count.
func logLoadReport(log *slog.Logger, rep decisions.LoadReport) {
	const most = 10
	for i, p := range rep.Problems {
		if i == most {
			log.Error("runtime decisions: more entries skipped", "count", len(rep.Problems)-most)
			break
		}
		log.Error("runtime decisions: entry skipped", "err", p)
	}
	if rep.SetAside != "" {
		log.Error("runtime decisions: the file as it was is kept for inspection; the peer resyncs what was skipped", "copy", rep.SetAside)
	}
	if rep.MovedFrom != "" {
		log.Info("runtime decisions: moved to the state directory, where they survive a reboot", "from", rep.MovedFrom)
	}
}

// DecisionLimits are the decision store's bounds in cfg: decisions.max_entries
// and each registration pool's max_servers.
func DecisionLimits(cfg *config.Config) decisions.Limits {
	l := decisions.Limits{Entries: cfg.Decisions.MaxEntries, Registrations: map[string]int{}}
	for _, s := range cfg.Services {
		if r := s.Registration; r != nil {
			l.Registrations[s.Name] = r.MaxServers
		}
	}
	return l
}

// cacheFor is how long passes may plan against the reconciler's view:
// until just before the next resync tick.
func cacheFor(cfg *config.Config) time.Duration { return cfg.IPVS.ResyncInterval.D() * 9 / 10 }

// SetConfig takes a new configuration (start, reload, registrations): the
// checks follow it and the loop programs the new table.
func (dp *Dataplane) SetConfig(cfg *config.Config) error {
	err := dp.health.setConfig(cfg)
	dp.setConfig(cfg)
	if err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	return nil
}

// setConfig takes the IPVS side of a configuration and wakes the loop.
func (dp *Dataplane) setConfig(cfg *config.Config) {
	// A reload may change the drain timeout and the resync interval; the
	// run loop re-times its resync on the pass this kicks.
	dp.prog.SetTimings(cfg.IPVS.DrainTimeout.D(), cacheFor(cfg))
	dp.store.SetLimits(DecisionLimits(cfg))
	dp.mu.Lock()
	dp.cfg = cfg
	dp.syncInst = ""
	if s := cfg.IPVS.Sync; s != nil {
		dp.syncInst = s.Instance
		if dp.syncInst == "" && len(cfg.Instances) > 0 {
			dp.syncInst = cfg.Instances[0].Name
		}
	}
	dp.mu.Unlock()
	dp.Poke()
}

// SetMaster records whether this node is master of a VRRP instance. It is
// called on the instance's goroutine and does not block.
func (dp *Dataplane) SetMaster(instance string, master bool) {
	dp.mu.Lock()
	changed := dp.masters[instance] != master
	dp.masters[instance] = master
	if changed {
		dp.changedAt[instance] = dp.clock.Now()
	}
	dp.mu.Unlock()
	if changed {
		dp.Poke()
	}
}

// Poke asks the loop for a pass soon (an input changed).
func (dp *Dataplane) Poke() {
	dp.gen.Add(1)
	select {
	case dp.kick <- struct{}{}:
	default:
	}
}

// desiredLocked computes the table from the inputs now. dp.mu is held.
func (dp *Dataplane) desiredLocked() Table {
	return Desired(Input{Config: dp.cfg, Health: dp.health.snapshot(), Overrides: Overrides(dp.store.Snapshot()), Masters: maps.Clone(dp.masters)})
}

// Table is the table the loop last computed (and programmed, or is
// programming): what state and metrics show.
func (dp *Dataplane) Table() Table {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.table
}

// Health is the health-decided weights per service, as last decided.
// The caller must not change the map.
func (dp *Dataplane) Health() map[string]checks.ServiceWeights { return dp.health.snapshot() }

// Status reports a real server's health ("up", "down", "unknown", "no
// checks"; "" for an unknown server) and the last check's reason.
func (dp *Dataplane) Status(service string, ap netip.AddrPort) (health, reason string) {
	return dp.health.status(service, ap)
}

// Store is the runtime decisions (overrides, registrations).
func (dp *Dataplane) Store() *decisions.Store { return dp.store }

// Node is the name this node signs its decisions with.
func (dp *Dataplane) Node() string { return dp.node }

// SetOverride records an operator override ("enable" withdraws it),
// persists it, wakes the loop and tells the peer.
func (dp *Dataplane) SetOverride(target, mode string, weight int) error {
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
		return fmt.Errorf("%s %s not applied: %w", mode, k, err)
	}
	dp.log.Info("runtime override", "real_server", string(k), "action", mode, "weight", weight)
	dp.Poke()
	if dp.onDecision != nil {
		dp.onDecision()
	}
	return nil
}

// knows reports whether k names a configured real server. dp.mu is held.
func (dp *Dataplane) knows(k overrideKey) bool {
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

// Ping returns once the loop has answered (for the watchdog).
func (dp *Dataplane) Ping(ctx context.Context) error {
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

// Close stops the checks and releases the sync daemon's socket, once Run
// is over.
func (dp *Dataplane) Close() error {
	dp.health.close()
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

// syncWant is the sync daemons to run now, none for none, and how long
// the role must still wait for the mastership to settle. In routed mode
// every director runs a master and a backup at once: each sends the
// connections it makes and learns everyone else's, so that a flow ECMP
// moves to it finds its connection (and real server) there.
func (dp *Dataplane) syncWant() ([]syncd.Config, time.Duration) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	s := dp.cfg.IPVS.Sync
	if s == nil {
		return nil, 0
	}
	c := syncd.Config{Role: syncd.Backup, Interface: s.Interface, SyncID: uint8(s.SyncID)}
	if dp.cfg.Routed() {
		m := c
		m.Role = syncd.Master
		return []syncd.Config{m, c}, 0
	}
	if dp.masters[dp.syncInst] {
		c.Role = syncd.Master
	}
	wait := syncSettle - dp.clock.Now().Sub(dp.changedAt[dp.syncInst])
	return []syncd.Config{c}, max(wait, 0)
}

// roles names the roles of cs, for logs.
func roles(cs []syncd.Config) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Role.String())
	}
	return strings.Join(out, "+")
}

// ensureSync brings the kernel's sync daemons to what the configuration
// wants; have is what it last set. A reload may turn sync on (the socket
// is opened then) or off (the daemons director started are stopped; one
// started by hand without ipvs.sync is left alone). A role change waits
// for the mastership to settle. It returns how soon to look again: 0 when
// all is done, else after a failure or while a role change waits.
func (dp *Dataplane) ensureSync(have *[]syncd.Config) time.Duration {
	want, settle := dp.syncWant()
	if want == nil {
		if len(*have) == 0 || dp.sync == nil {
			return 0
		}
		for _, h := range *have {
			if err := dp.sync.Stop(h.Role); err != nil {
				dp.log.Error("ipvs: stopping the sync daemon, will retry", "role", h.Role.String(), "err", err)
				return drainPoll
			}
		}
		dp.log.Info("ipvs: sync daemon stopped (ipvs.sync removed)", "role", roles(*have))
		*have = nil
		return 0
	}
	if len(*have) > 0 && roles(want) != roles(*have) && settle > 0 {
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
	changed, err := dp.sync.Ensure(want...)
	same := slices.Equal(want, *have)
	switch {
	case err != nil:
		dp.log.Error("ipvs: sync daemon, will retry", "role", roles(want), "err", err)
		return drainPoll
	case changed && same:
		dp.log.Warn("ipvs: sync daemon had drifted, restarted", "role", roles(want), "iface", want[0].Interface, "sync_id", want[0].SyncID)
	case changed || !same:
		dp.log.Info("ipvs: sync daemon running", "role", roles(want), "iface", want[0].Interface, "sync_id", want[0].SyncID)
	}
	*have = slices.Clone(want)
	return 0
}

// signal is a timer's wake-up: a buffered channel, so a timer never blocks.
type signal chan struct{}

func (s signal) fire() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// Run programs the table at start, after every change of its inputs and
// every resync interval, until ctx ends.
func (dp *Dataplane) Run(ctx context.Context) {
	dp.mu.Lock()
	every := dp.cfg.IPVS.ResyncInterval.D()
	dp.mu.Unlock()
	resync, soon := make(signal, 1), make(signal, 1)
	resyncT := dp.clock.AfterFunc(every, resync.fire)
	var soonT checks.Timer
	defer func() {
		resyncT.Stop()
		if soonT != nil {
			soonT.Stop()
		}
	}()
	var have []syncd.Config
	var sysctls sysctlState
	// programmed is the table last given to the kernel; full asks for a
	// whole Apply rather than the weights-only fast path.
	var programmed []ipvs.Service
	full := true
	// draining is what the last pass that reached the kernel left
	// draining: a pass with nothing to write (a kick that changed nothing)
	// must not cancel the drain poll.
	draining := 0
	for {
		gen := dp.gen.Load()
		dp.mu.Lock()
		t := dp.desiredLocked()
		dp.table = t
		dp.mu.Unlock()
		res, took, wrote, err := dp.program(ctx, programmed, t.Services, full)
		programmed, full = t.Services, err != nil
		// After the first Apply: its first netlink call loads ip_vs, which
		// creates the sysctls.
		dp.mu.Lock()
		want := dp.cfg.IPVS.Sysctl
		if d := dp.cfg.IPVS.ResyncInterval.D(); d != every {
			every = d
			resyncT.Stop()
			resyncT = dp.clock.AfterFunc(every, resync.fire)
			dp.log.Info("ipvs: resync interval changed", "every", every)
		}
		dp.mu.Unlock()
		sysctls.ensure(dp.sysctlDir, want, dp.log)
		if wrote && dp.onPass != nil {
			dp.onPass(res, took, err)
		}
		if err != nil {
			dp.log.Error("ipvs: apply incomplete, will retry", "err", err, "result", res.String())
		} else if res.Changed() {
			dp.log.Info("ipvs: table updated", "result", res.String())
		}
		// Draining real servers are deleted as soon as their connections
		// end, so look again soon rather than at the next resync.
		if wrote {
			draining = res.Draining
		}
		var again time.Duration
		if draining > 0 || err != nil {
			again = drainPoll
		}
		// The sync daemon is checked against the kernel on every pass, not
		// only when the wanted role changes: a role switch that failed (a
		// master thread still stopping when the backup starts) or a daemon
		// stopped by hand is then repaired, and a failure is retried soon
		// rather than at the next resync.
		if d := dp.ensureSync(&have); d > 0 && (again == 0 || d < again) {
			again = d
		}
		if soonT != nil {
			soonT.Stop()
			soonT = nil
		}
		if again > 0 {
			soonT = dp.clock.AfterFunc(again, soon.fire)
		}
		dp.done.Store(gen)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case ch := <-dp.pings:
				close(ch) // answer the watchdog and keep waiting
			case <-dp.kick:
				waiting = false
			case <-resync:
				// Apply reads the kernel whole and repairs drift.
				dp.prog.Invalidate()
				resyncT = dp.clock.AfterFunc(every, resync.fire)
				waiting, full = false, true
			case <-soon:
				// Drains end and failures are retried only by Apply.
				waiting, full = false, true
			}
		}
	}
}

// program brings the kernel to next. When only weights of existing
// destinations differ from prev (the table last programmed) and no full
// pass is asked for, each changed weight is one SetWeight: one write,
// planned against the reconciler's view of that service alone. Anything
// else, and the first pass, is one Apply. wrote is false when nothing
// needed a kernel call.
func (dp *Dataplane) program(ctx context.Context, prev, next []ipvs.Service, full bool) (ipvs.Result, time.Duration, bool, error) {
	began := dp.clock.Now()
	if !full && prev != nil {
		if changes, ok := weightsOnly(prev, next); ok && len(changes) <= fastPathMax {
			if len(changes) == 0 {
				return ipvs.Result{}, 0, false, nil
			}
			var res ipvs.Result
			var errs []error
			for _, c := range changes {
				r, err := dp.prog.SetWeight(ctx, c.key, c.dst, c.weight)
				res = addResults(res, r)
				if err != nil {
					errs = append(errs, err)
				}
			}
			return res, dp.clock.Now().Sub(began), true, errors.Join(errs...)
		}
	}
	res, err := dp.prog.Apply(ctx, next)
	return res, dp.clock.Now().Sub(began), true, err
}

// addResults sums the counts of two passes; Draining is the later one's.
func addResults(a, b ipvs.Result) ipvs.Result {
	return ipvs.Result{
		Created: a.Created + b.Created, Updated: a.Updated + b.Updated, Deleted: a.Deleted + b.Deleted,
		Drained: a.Drained + b.Drained, Repaired: a.Repaired + b.Repaired, Errors: a.Errors + b.Errors,
		Draining: b.Draining,
	}
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
