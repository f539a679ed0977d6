package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"
)

// DefaultDrainTimeout bounds how long a removed destination may keep its
// active connections before it is deleted anyway.
const DefaultDrainTimeout = 5 * time.Minute

// Config configures a Reconciler.
type Config struct {
	Kernel Kernel // required
	// StatePath is the file that remembers which services the director
	// owns (see DefaultStatePath). Empty keeps ownership in memory only, so
	// a restart forgets it. Two reconcilers must not share a file.
	StatePath string
	// DrainTimeout: 0 means DefaultDrainTimeout; a negative value deletes
	// removed destinations at once, without draining.
	DrainTimeout time.Duration
	// Now is the clock used for draining; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil means slog.Default()
}

// Result counts what one pass did. Each kernel write counts once.
type Result struct {
	Created  int // services and destinations created
	Updated  int // services and destinations changed in place
	Deleted  int // services and destinations deleted
	Drained  int // destinations set to weight 0 to drain
	Repaired int // writes (among the above) that undid drift in the kernel
	Errors   int // failed kernel calls and state-file writes
	Draining int // destinations still draining after the pass
}

// Changed reports whether the pass wrote to the kernel.
func (r Result) Changed() bool { return r.Created+r.Updated+r.Deleted+r.Drained > 0 }

func (r Result) String() string {
	return fmt.Sprintf("created=%d updated=%d deleted=%d drained=%d repaired=%d errors=%d draining=%d",
		r.Created, r.Updated, r.Deleted, r.Drained, r.Repaired, r.Errors, r.Draining)
}

// Reconciler brings a Kernel to a desired state, writing only the
// difference. It is safe for concurrent use; passes run one at a time.
type Reconciler struct {
	k            Kernel
	statePath    string
	drainTimeout time.Duration
	now          func() time.Time
	log          *slog.Logger

	mu         sync.Mutex
	owned      map[ServiceKey]bool
	ownedDirty bool // owned differs from the state file
	drains     map[drainID]time.Time
	desired    []Service // last desired state, normalized; nil before the first Apply
	applied    bool
	prev       map[ServiceKey]*Service // desired state of the previous pass, for repair accounting
}

// New returns a Reconciler and loads the ownership state file. An
// unreadable or corrupt file is logged and treated as empty (it is rewritten
// on the next Apply): losing track of old services is better than not
// programming the load balancer at all.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Kernel == nil {
		return nil, errors.New("ipvs: Config.Kernel is nil")
	}
	r := &Reconciler{
		k:            cfg.Kernel,
		statePath:    cfg.StatePath,
		drainTimeout: cfg.DrainTimeout,
		now:          cfg.Now,
		log:          cfg.Logger,
		owned:        map[ServiceKey]bool{},
		drains:       map[drainID]time.Time{},
	}
	if r.drainTimeout == 0 {
		r.drainTimeout = DefaultDrainTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.statePath != "" {
		owned, err := loadOwned(r.statePath)
		if err != nil {
			r.log.Warn("ipvs: ignoring ownership state; services dropped while the daemon was down will not be removed", "err", err)
			r.ownedDirty = true
		}
		r.owned = owned
	}
	return r, nil
}

// Owned returns the keys of the services the reconciler owns, sorted.
func (r *Reconciler) Owned() []ServiceKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]ServiceKey, 0, len(r.owned))
	for k := range r.owned {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ServiceKey.Compare)
	return keys
}

// Apply makes the kernel match desired and remembers desired for Resync and
// Run. An invalid desired state is refused as a whole, before any write.
// Kernel failures do not stop the pass: every failure is counted, logged and
// returned (joined), and the next pass retries what is still different.
func (r *Reconciler) Apply(ctx context.Context, desired []Service) (Result, error) {
	want, err := normalizeAll(desired)
	if err != nil {
		return Result{Errors: 1}, fmt.Errorf("ipvs: invalid desired state: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired, r.applied = want, true
	return r.apply(ctx, want)
}

// Resync re-applies the last desired state, repairing drift. Before the
// first Apply it does nothing: an unknown desired state must not be read as
// an empty one, which would remove every owned service.
func (r *Reconciler) Resync(ctx context.Context) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.applied {
		return Result{}, nil
	}
	return r.apply(ctx, r.desired)
}

// Run calls Resync every interval until ctx ends, logging failures, and
// returns ctx's error.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("ipvs: resync interval must be positive, got %s", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if res, err := r.Resync(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("ipvs: resync incomplete", "err", err, "result", res.String())
		}
	}
}

func (r *Reconciler) apply(ctx context.Context, want []Service) (Result, error) {
	var res Result
	var errs []error
	fail := func(err error) {
		res.Errors++
		errs = append(errs, err)
	}

	// Claim every desired key before creating anything: a crash between
	// the create and the state write must not leave an unowned orphan.
	for i := range want {
		if !r.owned[want[i].Key] {
			r.owned[want[i].Key] = true
			r.ownedDirty = true
		}
	}
	if err := r.saveOwned(); err != nil {
		fail(err)
	}

	list, err := r.k.Services()
	if err != nil {
		fail(fmt.Errorf("ipvs: read kernel table: %w", err))
		return res, errors.Join(errs...)
	}
	cur := make(map[ServiceKey]*Service, len(list))
	for i := range list {
		sortDests(&list[i])
		cur[list[i].Key] = &list[i]
	}
	wantIdx := make(map[ServiceKey]*Service, len(want))
	for i := range want {
		wantIdx[want[i].Key] = &want[i]
	}
	r.pruneDrains(cur, wantIdx)

	now := r.now()
	d := r.differ(now)
	for _, p := range d.plan(cur, want) {
		if err := ctx.Err(); err != nil {
			fail(err)
			break
		}
		if p.forget {
			delete(r.owned, p.key)
			r.ownedDirty = true
			continue
		}
		if !r.run(ctx, d, p, &res, fail, true) {
			break
		}
	}

	r.prev = wantIdx
	if err := r.saveOwned(); err != nil {
		fail(err)
	}
	res.Draining = len(r.drains)
	if res.Changed() || res.Errors > 0 {
		r.log.Info("ipvs: pass done", "result", res.String())
	}
	return res, errors.Join(errs...)
}

func (r *Reconciler) differ(now time.Time) *differ {
	return &differ{prev: r.prev, drains: r.drains, owned: r.owned, drainTimeout: r.drainTimeout, now: now}
}

// run executes one service's plan. A create that meets EEXIST, or an update
// that meets ESRCH/ENOENT, means the kernel changed since it was read: the
// service is re-read and planned once more (retry). It returns false when
// ctx ended.
func (r *Reconciler) run(ctx context.Context, d *differ, p svcPlan, res *Result, fail func(error), retry bool) bool {
	stale := false
	for _, o := range p.ops {
		if err := ctx.Err(); err != nil {
			fail(err)
			return false
		}
		err := r.exec(o, d.now)
		if err == nil {
			r.count(o, res)
			continue
		}
		if retry && ((isCreate(o.kind) && isExist(err)) || (isUpdate(o.kind) && gone(o.kind, err))) {
			r.log.Info("ipvs: kernel changed under us, re-reading service", "service", p.key.String(), "op", o.describe(), "err", err)
			stale = true
			break
		}
		r.log.Error("ipvs: kernel write failed", "op", o.describe(), "err", err)
		if o.svc != nil && errors.Is(err, syscall.ENOENT) {
			err = fmt.Errorf("%w (is kernel module ip_vs_%s available?)", err, o.svc.Scheduler)
		}
		fail(fmt.Errorf("%s: %w", o.describe(), err))
		if o.kind == opCreateService {
			break // its destinations would only fail too
		}
	}
	if !stale {
		return true
	}
	fresh, err := r.k.Service(p.key)
	var cur *Service
	switch {
	case err == nil:
		sortDests(&fresh)
		cur = &fresh
	case svcGone(err):
		if p.want == nil { // an undesired service vanished by itself
			delete(r.owned, p.key)
			r.ownedDirty = true
			return true
		}
	default:
		fail(fmt.Errorf("re-read service %s: %w", p.key, err))
		return true
	}
	p.ops = d.service(p.key, cur, p.want)
	return r.run(ctx, d, p, res, fail, false)
}

// exec performs one op and updates the bookkeeping. Deleting something
// already gone is success.
func (r *Reconciler) exec(o op, now time.Time) error {
	id := drainID{o.key, o.dest.AddrPort()}
	var err error
	switch o.kind {
	case opCreateService:
		err = r.k.CreateService(*o.svc)
	case opUpdateService:
		err = r.k.UpdateService(*o.svc)
	case opDeleteService:
		if err = r.k.DeleteService(o.key); err == nil || svcGone(err) {
			err = nil
			delete(r.owned, o.key)
			r.ownedDirty = true
			for id := range r.drains {
				if id.svc == o.key {
					delete(r.drains, id)
				}
			}
		}
	case opCreateDest:
		if err = r.k.CreateDestination(o.key, o.dest); err == nil {
			delete(r.drains, id)
		}
	case opUpdateDest:
		if err = r.k.UpdateDestination(o.key, o.dest); err == nil {
			delete(r.drains, id)
		}
	case opDrainDest:
		d := o.dest
		d.Weight = 0
		if err = r.k.UpdateDestination(o.key, d); err == nil {
			if _, ok := r.drains[id]; !ok {
				r.drains[id] = now
			}
		}
	case opDeleteDest:
		if err = r.k.DeleteDestination(o.key, o.dest); err == nil || destGone(err) {
			err = nil
			delete(r.drains, id)
		}
	case opMarkDrain:
		r.drains[id] = now
	}
	return err
}

func isCreate(k opKind) bool { return k == opCreateService || k == opCreateDest }
func isUpdate(k opKind) bool { return k == opUpdateService || k == opUpdateDest || k == opDrainDest }

// gone reports an error meaning the object of an op is not in the kernel.
func gone(k opKind, err error) bool {
	if k == opCreateService || k == opUpdateService || k == opDeleteService {
		return svcGone(err)
	}
	return destGone(err)
}

// count tallies and logs a successful op.
func (r *Reconciler) count(o op, res *Result) {
	var done string
	switch o.kind {
	case opCreateService, opCreateDest:
		res.Created++
		done = "created"
	case opUpdateService, opUpdateDest:
		res.Updated++
		done = "updated"
	case opDrainDest:
		res.Drained++
		done = "draining"
	case opDeleteService, opDeleteDest:
		res.Deleted++
		done = "deleted"
	default:
		return
	}
	attrs := []any{"op", o.describe(), "service", o.key.String()}
	if o.kind >= opCreateDest {
		w := o.dest.Weight
		if o.kind == opDrainDest {
			w = 0
		}
		attrs = append(attrs, "destination", o.dest.AddrPort().String(), "weight", w)
	}
	if o.repair {
		res.Repaired++
		r.log.Warn("ipvs: repaired drift, "+done, attrs...)
		return
	}
	r.log.Info("ipvs: "+done, attrs...)
}

// pruneDrains forgets drains of destinations that are desired again or no
// longer in the kernel.
func (r *Reconciler) pruneDrains(cur, want map[ServiceKey]*Service) {
	for id := range r.drains {
		c := cur[id.svc]
		if c == nil || !hasDest(c, id.dst) {
			delete(r.drains, id)
			continue
		}
		if w := want[id.svc]; w != nil && hasDest(w, id.dst) {
			delete(r.drains, id)
		}
	}
}

func (r *Reconciler) saveOwned() error {
	if r.statePath == "" {
		r.ownedDirty = false
		return nil
	}
	if !r.ownedDirty {
		return nil
	}
	if err := saveOwned(r.statePath, r.owned); err != nil {
		r.log.Error("ipvs: cannot save ownership state", "err", err)
		return err
	}
	r.ownedDirty = false
	return nil
}
