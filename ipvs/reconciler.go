package ipvs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	// CacheFor lets Apply plan against the reconciler's own view of the
	// kernel (its last full read, kept up to date with its own writes) for
	// this long after that read, instead of re-reading the whole table on
	// every pass, which takes seconds for thousands of destinations.
	// Services whose state matters beyond the view are still read, one by
	// one: those losing destinations (the drain needs connection counts)
	// and those a failed write left in doubt. Zero re-reads the whole
	// table on every Apply. Resync always re-reads it, so drift is
	// repaired at the latest on the next Resync, or Apply after CacheFor.
	CacheFor time.Duration
	// Now is the clock used for draining and CacheFor; nil means time.Now.
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

	// raw is the last desired state as given, indexed by normalized key
	// in rawIdx: SetWeight re-normalizes one service from it, because the
	// sorry-server rule needs to know which destination is the sorry one.
	raw    []Service
	rawIdx map[ServiceKey]int

	cacheFor time.Duration
	// view is the kernel's table as last read in full, updated with every
	// write since (and single-service re-reads); nil until a full read.
	view   map[ServiceKey]*Service
	viewAt time.Time // when the full read happened
	// doubt holds services whose view a failed or unanswered write may
	// have made wrong; they are re-read before their next use.
	doubt map[ServiceKey]bool
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
		cacheFor:     cfg.CacheFor,
		doubt:        map[ServiceKey]bool{},
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
	r.keepRaw(desired)
	return r.apply(ctx, want, false)
}

// Resync re-reads the whole kernel table and re-applies the last desired
// state, repairing drift. Before the first Apply it does nothing: an
// unknown desired state must not be read as an empty one, which would
// remove every owned service.
func (r *Reconciler) Resync(ctx context.Context) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.applied {
		return Result{}, nil
	}
	return r.apply(ctx, r.desired, true)
}

// keepRaw remembers desired (already validated) for SetWeight.
func (r *Reconciler) keepRaw(desired []Service) {
	r.raw = make([]Service, len(desired))
	r.rawIdx = make(map[ServiceKey]int, len(desired))
	for i, s := range desired {
		r.raw[i] = cloneService(s)
		k := s.Key
		if k.Family == 4 {
			k.Addr = k.Addr.Unmap() // as normalize does
		}
		r.rawIdx[k] = i
	}
}

func (r *Reconciler) apply(ctx context.Context, want []Service, full bool) (Result, error) {
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

	now := r.now()
	wantIdx := make(map[ServiceKey]*Service, len(want))
	for i := range want {
		wantIdx[want[i].Key] = &want[i]
	}
	if full || !r.viewFresh(now) || r.refresh(wantIdx) != nil {
		if err := r.readAll(now); err != nil {
			fail(fmt.Errorf("ipvs: read kernel table: %w", err))
			return res, errors.Join(errs...)
		}
	}
	cur := r.view
	r.pruneDrains(cur, wantIdx)

	d := r.differ(now)
	var todo []svcPlan
	for _, p := range d.plan(cur, want) {
		if p.forget {
			delete(r.owned, p.key)
			r.ownedDirty = true
			continue
		}
		todo = append(todo, p)
	}
	r.execute(ctx, d, todo, &res, fail)

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

// SetTimings changes the drain timeout (0: the default) and the view's
// lifetime, as a configuration reload does. Drains under way keep their
// start and are judged against the new timeout on the next pass.
func (r *Reconciler) SetTimings(drainTimeout, cacheFor time.Duration) {
	if drainTimeout == 0 {
		drainTimeout = DefaultDrainTimeout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drainTimeout, r.cacheFor = drainTimeout, cacheFor
}

// Invalidate drops the view, so that the next Apply reads the kernel whole
// and repairs whatever changed behind the reconciler's back: the caller's
// resync, on the caller's own timer. CacheFor stays an upper bound on the
// view's age.
func (r *Reconciler) Invalidate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.view = nil
}

// viewFresh reports whether Apply may plan against the view.
func (r *Reconciler) viewFresh(now time.Time) bool {
	return r.view != nil && r.cacheFor > 0 && now.Sub(r.viewAt) < r.cacheFor
}

// readAll replaces the view with a full read of the kernel table.
func (r *Reconciler) readAll(now time.Time) error {
	list, err := r.k.Services()
	if err != nil {
		r.view = nil
		return err
	}
	view := make(map[ServiceKey]*Service, len(list))
	for i := range list {
		sortDests(&list[i])
		view[list[i].Key] = &list[i]
	}
	r.view, r.viewAt = view, now
	clear(r.doubt)
	return nil
}

// refresh re-reads, one by one, the services whose view is not enough to
// plan them: those in doubt, and those that lose destinations, whose
// connection counts decide between draining and deleting.
func (r *Reconciler) refresh(want map[ServiceKey]*Service) error {
	var keys []ServiceKey
	for k, c := range r.view {
		w := want[k]
		if r.doubt[k] || (w == nil && r.owned[k]) || (w != nil && losesDests(c, w)) {
			keys = append(keys, k)
		}
	}
	for k := range r.doubt {
		if r.view[k] == nil {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if _, err := r.reread(k); err != nil {
			return err
		}
	}
	return nil
}

// reread reads one service from the kernel and puts it in the view (when
// there is one), no longer in doubt. It returns the service, nil when the
// kernel has none; the view keeps a copy of its own, since plans executed
// from the result change the view as they go.
func (r *Reconciler) reread(key ServiceKey) (*Service, error) {
	s, err := r.k.Service(key)
	var cur *Service
	switch {
	case err == nil:
		sortDests(&s)
		cur = &s
	case !svcGone(err):
		return nil, fmt.Errorf("re-read service %s: %w", key, err)
	}
	if r.view != nil {
		if cur != nil {
			c := cloneService(*cur)
			r.view[key] = &c
		} else {
			delete(r.view, key)
		}
		delete(r.doubt, key)
	}
	return cur, nil
}

// losesDests reports whether cur holds a destination want does not.
// Both are sorted.
func losesDests(cur, want *Service) bool {
	ws := want.Destinations
	j := 0
	for i := range cur.Destinations {
		ap := cur.Destinations[i].AddrPort()
		for j < len(ws) && ws[j].AddrPort().Compare(ap) < 0 {
			j++
		}
		if j == len(ws) || ws[j].AddrPort() != ap {
			return true
		}
	}
	return false
}

// SetWeight changes the weight of one real server in the last desired
// state and brings the kernel to it. It is the fast path for health
// checks: it never reads the whole table, and plans that one service
// against the reconciler's view of the kernel (kept from the last full
// read whatever Config.CacheFor says), so a weight change costs one
// UPDATE_DEST whatever the size of the table, and an unchanged weight
// costs nothing. It reads that one service first only when the view
// cannot be trusted for it: there is no view (the last full read failed),
// the service is in doubt after a failed write, or the kernel holds a
// destination there that is not desired, whose connections decide between
// draining and deleting it. The sorry-server rule applies as in Apply, so
// the last real server losing its weight also adds the sorry server, and
// the first regaining it drains the sorry server. Drift elsewhere in that
// service is left to the next Resync.
//
// dst is the real server as given to Apply (a zero port means the
// service's); the sorry server itself cannot be set.
func (r *Reconciler) SetWeight(ctx context.Context, key ServiceKey, dst netip.AddrPort, weight int32) (Result, error) {
	if key.Family == 4 {
		key.Addr = key.Addr.Unmap()
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), cmp.Or(dst.Port(), key.Port))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.applied {
		return Result{Errors: 1}, errors.New("ipvs: SetWeight before the first Apply")
	}
	i, ok := r.rawIdx[key]
	if !ok {
		return Result{Errors: 1}, fmt.Errorf("ipvs: service %s is not in the desired state", key)
	}
	raw := cloneService(r.raw[i])
	j := slices.IndexFunc(raw.Destinations, func(d Destination) bool { return destID(&key, &d) == dst })
	if j < 0 {
		return Result{Errors: 1}, fmt.Errorf("ipvs: %s is not a real server of %s", dst, key)
	}
	raw.Destinations[j].Weight = weight
	n, err := normalize(raw)
	if err != nil {
		return Result{Errors: 1}, fmt.Errorf("ipvs: invalid weight for %s in %s: %w", dst, key, err)
	}
	w, _ := slices.BinarySearchFunc(r.desired, key, func(s Service, k ServiceKey) int { return s.Key.Compare(k) })
	// This write is a change, not a repair: plan against the service as
	// it was desired before.
	prev := map[ServiceKey]*Service{}
	if p := r.prev[key]; p != nil {
		old := cloneService(*p)
		prev[key] = &old
	}
	r.raw[i] = raw
	// In place: r.prev points into r.desired, so later passes measure
	// repairs against the new weight.
	r.desired[w] = n
	return r.applyOne(ctx, &r.desired[w], prev)
}

// applyOne brings one desired service to the kernel, planned against the
// view (read alone when the view will not do). prev holds its previous
// desired state, for repair accounting.
func (r *Reconciler) applyOne(ctx context.Context, want *Service, prev map[ServiceKey]*Service) (Result, error) {
	var res Result
	var errs []error
	fail := func(err error) {
		res.Errors++
		errs = append(errs, err)
	}
	key := want.Key
	now := r.now()
	cur, ok := r.view[key]
	if r.view == nil || r.doubt[key] || (ok && losesDests(cur, want)) {
		var err error
		if cur, err = r.reread(key); err != nil {
			fail(fmt.Errorf("ipvs: %w", err))
			return res, errors.Join(errs...)
		}
	}
	for id := range r.drains {
		if id.svc == key && (cur == nil || !hasDest(cur, id.dst) || hasDest(want, id.dst)) {
			delete(r.drains, id)
		}
	}
	d := r.differ(now)
	d.prev = prev
	if ops := d.service(key, cur, want); len(ops) > 0 {
		r.execute(ctx, d, []svcPlan{{key: key, want: want, ops: ops}}, &res, fail)
	}
	res.Draining = len(r.drains)
	return res, errors.Join(errs...)
}

func (r *Reconciler) differ(now time.Time) *differ {
	return &differ{prev: r.prev, drains: r.drains, owned: r.owned, drainTimeout: r.drainTimeout, now: now}
}

// reconcilerBatch is how many writes go to a Batcher per call: the unit
// between checks of ctx, and after which the writes of a service whose
// create failed are no longer sent.
const reconcilerBatch = 2048

// planRun is the progress of one plan.
type planRun struct {
	stopped bool // send nothing more of it
	stale   bool // re-read and re-plan it
}

// execute carries out plans, batched when the Kernel is a Batcher, and
// then re-plans, once, the services found changed under us.
func (r *Reconciler) execute(ctx context.Context, d *differ, plans []svcPlan, res *Result, fail func(error)) {
	stale := r.runPlans(ctx, d, plans, res, fail, true)
	if len(stale) == 0 || ctx.Err() != nil {
		return
	}
	again := make([]svcPlan, 0, len(stale))
	for _, p := range stale {
		cur, err := r.reread(p.key)
		if err != nil {
			fail(err)
			continue
		}
		if cur == nil && p.want == nil { // an undesired service vanished by itself
			delete(r.owned, p.key)
			r.ownedDirty = true
			continue
		}
		p.ops = d.service(p.key, cur, p.want)
		again = append(again, p)
	}
	r.runPlans(ctx, d, again, res, fail, false)
}

// runPlans sends the plans' writes in order, in chunks of reconcilerBatch
// for a Batcher (one at a time otherwise), and settles each answer. A
// plan stops at a failed service create or, when retry is set, at a
// write showing the kernel changed under us; it returns the latter.
func (r *Reconciler) runPlans(ctx context.Context, d *differ, plans []svcPlan, res *Result, fail func(error), retry bool) []svcPlan {
	b, batching := r.k.(Batcher)
	size := 1
	if batching {
		size = reconcilerBatch
	}
	type ref struct{ p, o int }
	var queue []ref
	for pi := range plans {
		for oi, o := range plans[pi].ops {
			if o.kind == opMarkDrain { // bookkeeping only
				r.done(o, d.now)
				continue
			}
			queue = append(queue, ref{pi, oi})
		}
	}
	st := make([]planRun, len(plans))
	chunk := make([]ref, 0, min(size, len(queue)))
	ws := make([]Write, 0, cap(chunk))
	for next := 0; next < len(queue); {
		if err := ctx.Err(); err != nil {
			fail(err)
			break
		}
		chunk, ws = chunk[:0], ws[:0]
		for ; next < len(queue) && len(chunk) < size; next++ {
			q := queue[next]
			if st[q.p].stopped {
				continue
			}
			chunk = append(chunk, q)
			ws = append(ws, plans[q.p].ops[q.o].write())
		}
		if len(chunk) == 0 {
			break
		}
		var errs []error
		if batching {
			errs = b.Batch(ws)
		} else {
			errs = []error{call(r.k, ws[0])}
		}
		for i, q := range chunk {
			err := ErrOutcomeUnknown // a Batcher that answered short
			if i < len(errs) {
				err = errs[i]
			}
			r.settle(&st[q.p], plans[q.p].ops[q.o], err, d.now, res, fail, retry)
		}
	}
	var stale []svcPlan
	for pi := range plans {
		if st[pi].stale {
			stale = append(stale, plans[pi])
		}
	}
	return stale
}

// settle books the answer to one write. Deleting something already gone
// is success. A failure puts the service's view in doubt.
func (r *Reconciler) settle(st *planRun, o op, err error, now time.Time, res *Result, fail func(error), retry bool) {
	if (o.kind == opDeleteService && svcGone(err)) || (o.kind == opDeleteDest && destGone(err)) {
		err = nil
	}
	if err == nil {
		r.done(o, now)
		r.count(o, res)
		return
	}
	r.doubt[o.key] = true
	if st.stopped {
		// Batched behind the failure that stopped its plan, which is
		// reported already (a destination of a service not created).
		r.log.Debug("ipvs: write after a failed one of its service failed too", "op", o.describe(), "err", err)
		return
	}
	if retry && ((isCreate(o.kind) && isExist(err)) || (isUpdate(o.kind) && gone(o.kind, err))) {
		r.log.Info("ipvs: kernel changed under us, re-reading service", "service", o.key.String(), "op", o.describe(), "err", err)
		st.stopped, st.stale = true, true
		return
	}
	r.log.Error("ipvs: kernel write failed", "op", o.describe(), "err", err)
	if o.svc != nil && errors.Is(err, syscall.ENOENT) {
		err = fmt.Errorf("%w (is kernel module ip_vs_%s available?)", err, o.svc.Scheduler)
	}
	fail(fmt.Errorf("%s: %w", o.describe(), err))
	if o.kind == opCreateService {
		st.stopped = true // its destinations would only fail too
	}
}

// done updates the bookkeeping and the view after a write succeeded.
func (r *Reconciler) done(o op, now time.Time) {
	id := drainID{o.key, o.dest.AddrPort()}
	switch o.kind {
	case opDeleteService:
		delete(r.owned, o.key)
		r.ownedDirty = true
		for id := range r.drains {
			if id.svc == o.key {
				delete(r.drains, id)
			}
		}
	case opCreateDest, opUpdateDest, opDeleteDest:
		delete(r.drains, id)
	case opDrainDest:
		if _, ok := r.drains[id]; !ok {
			r.drains[id] = now
		}
	case opMarkDrain:
		r.drains[id] = now
	}
	if r.view != nil && !viewApply(r.view, o) {
		r.doubt[o.key] = true
	}
}

// write is the kernel write that performs o.
func (o op) write() Write {
	w := Write{Service: Service{Key: o.key}, Dest: o.dest}
	switch o.kind {
	case opCreateService:
		w.Kind, w.Service = OpCreateService, *o.svc
	case opUpdateService:
		w.Kind, w.Service = OpUpdateService, *o.svc
	case opDeleteService:
		w.Kind = OpDeleteService
	case opCreateDest:
		w.Kind = OpCreateDestination
	case opUpdateDest:
		w.Kind = OpUpdateDestination
	case opDrainDest:
		w.Kind = OpUpdateDestination
		w.Dest.Weight = 0
	case opDeleteDest:
		w.Kind = OpDeleteDestination
	}
	return w
}

// call performs w with the Kernel's single-write methods.
func call(k Kernel, w Write) error {
	switch w.Kind {
	case OpCreateService:
		return k.CreateService(w.Service)
	case OpUpdateService:
		return k.UpdateService(w.Service)
	case OpDeleteService:
		return k.DeleteService(w.Service.Key)
	case OpCreateDestination:
		return k.CreateDestination(w.Service.Key, w.Dest)
	case OpUpdateDestination:
		return k.UpdateDestination(w.Service.Key, w.Dest)
	case OpDeleteDestination:
		return k.DeleteDestination(w.Service.Key, w.Dest)
	}
	return fmt.Errorf("ipvs: %q is not a write", w.Kind)
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
	if done == "created" {
		// Programming a large table creates thousands of entries; the
		// caller logs the pass's totals. Changes to a live table stay visible.
		r.log.Debug("ipvs: "+done, attrs...)
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
