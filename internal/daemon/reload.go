package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/director-lb/director/internal/config"
)

// ReloadFile re-reads the configuration file the daemon runs and applies the
// difference. An invalid file is refused, every problem logged, and the
// running configuration stays. With dryRun nothing is applied.
func (d *Daemon) ReloadFile(ctx context.Context, dryRun bool) ([]config.Change, error) {
	d.mu.Lock()
	path := d.cfg.File
	d.mu.Unlock()
	next, err := config.Load(path)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				d.log.Error("reload refused: invalid configuration", "problem", p.Error())
			}
		} else {
			d.log.Error("reload refused", "err", err)
		}
		return nil, fmt.Errorf("configuration not reloaded, the running one stays: %w", err)
	}
	logWarnings(d.log, next)
	return d.Apply(ctx, next, dryRun)
}

// logWarnings logs what the configuration loads with but is likely wrong.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, p := range cfg.Warnings {
		log.Warn("configuration warning", "problem", p.Error())
	}
}

// Apply moves the running daemon to next, changing only what differs:
// unchanged VRRP instances keep running in their state (a master stays
// master), a priority change is applied live, other changed or removed
// instances hand over and stop, the IPVS table is reconciled (removed real
// servers drain) and the log level follows. The sockets, carrier watches and
// movers of the instances to start are opened first: if one cannot be, the
// reload is refused and nothing changes.
func (d *Daemon) Apply(ctx context.Context, next *config.Config, dryRun bool) ([]config.Change, error) {
	d.mu.Lock()
	split := d.full != nil
	d.mu.Unlock()
	if split {
		return d.applySplit(ctx, next, dryRun)
	}
	return d.applyLocal(ctx, next, dryRun, d.quietReload)
}

// applyLocal is Apply for what this process runs. quiet leaves the
// reload's log lines to the caller (the daemon logs the VRRP process's
// part and its own as one reload).
func (d *Daemon) applyLocal(ctx context.Context, next *config.Config, dryRun, quiet bool) ([]config.Change, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.mu.Lock()
	prev := d.cfg
	running := append([]*runningInstance(nil), d.running...)
	started := d.runCtx != nil && d.runCtx.Err() == nil
	d.mu.Unlock()
	changes := config.Diff(prev, next)
	if dryRun {
		return changes, nil
	}
	if !started {
		return nil, errors.New("the daemon is not running")
	}
	if err := d.refuseEarly(next); err != nil {
		return nil, err
	}
	d.notify(sd.SdNotifyReloading)
	defer d.notify(sd.SdNotifyReady)
	if !quiet {
		logChanges(d.log, changes)
	}

	byName := map[string]*runningInstance{}
	for _, r := range running {
		byName[r.cfg.Name] = r
	}
	var start []config.Instance
	var stop []*runningInstance
	type liveChange struct {
		r *runningInstance
		n config.Instance
	}
	var live []liveChange
	for _, n := range d.ownInstances(next) {
		r, ok := byName[n.Name]
		if !ok {
			start = append(start, n)
			continue
		}
		delete(byName, n.Name)
		switch config.CompareInstance(&r.cfg, &n) {
		case config.InstanceLive:
			live = append(live, liveChange{r, n})
		case config.InstanceRestart:
			stop = append(stop, r)
			start = append(start, n)
		}
	}
	for _, r := range byName {
		stop = append(stop, r)
	}
	// Open what the new instances need before touching the running ones:
	// a socket, carrier or mover that cannot be had refuses the whole
	// reload, so the running configuration stays whole.
	var prepared []*runningInstance
	for _, n := range start {
		ri, err := d.prepareInstance(n)
		if err != nil {
			for _, p := range prepared {
				d.discard(p)
			}
			d.pruneCarriers()
			d.log.Error("reload refused", "err", err)
			return nil, fmt.Errorf("configuration not reloaded, the running one stays: %w", err)
		}
		prepared = append(prepared, ri)
	}

	var errs []error
	for _, c := range live {
		r, n := c.r, c.n
		if !slices.Equal(r.cfg.Addresses, n.Addresses) {
			// Addresses first, adverts second: a master never
			// advertises a VIP it does not hold.
			if err := r.local.SetAddresses(ctx, n.Addresses); err != nil {
				errs = append(errs, fmt.Errorf("instance %s: %w", n.Name, err))
			}
			addrs := make([]netip.Addr, len(n.Addresses))
			for i, p := range n.Addresses {
				addrs[i] = p.Addr()
			}
			r.in.SetAddresses(addrs)
		}
		d.mu.Lock()
		r.cfg = n
		r.prio = 0 // retrack below sets the new priority, tracks applied
		d.mu.Unlock()
		r.hooks.Store(&n.StateHooks)
	}
	// Groups first: an instance removed from its group (or with it) must
	// not move the group when it stops below.
	d.groups.configure(next)
	// Stop before start: a changed instance keeps its VRID on its socket.
	for _, r := range stop {
		if err := d.stopInstance(r); err != nil {
			errs = append(errs, err)
		}
	}
	d.mu.Lock()
	d.cfg = next
	d.mu.Unlock()
	for _, ri := range prepared {
		d.launch(ri)
	}
	d.pruneCarriers()
	if err := d.applyData(next); err != nil {
		errs = append(errs, err)
	}
	if err := d.reloadRouting(ctx, prev, next); err != nil {
		errs = append(errs, err)
	}
	if err := d.reloadHooks(next); err != nil {
		errs = append(errs, err)
	}
	if next.RTPriority != prev.RTPriority {
		d.applyRT(next.RTPriority)
	}
	d.mu.Lock()
	d.pairHash = config.PairHash(next)
	d.mu.Unlock()
	// Token files are re-read and the peer hears the new hash at once.
	if err := d.reloadAPI(next); err != nil {
		errs = append(errs, err)
	}
	// Unchanged scripts, files and processes keep their state and counters.
	d.tracks.Set(next)
	d.retrack()
	var lv slog.Level
	if lv.UnmarshalText([]byte(next.LogLevel)) == nil {
		d.level.Set(lv)
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error("reload applied with errors", "err", err)
		return changes, err
	}
	if !quiet {
		d.log.Info("reloaded", "changes", len(changes))
	}
	return changes, nil
}

// refuseEarly refuses a reload this process cannot apply at all, before
// anything changes.
func (d *Daemon) refuseEarly(next *config.Config) error {
	if len(next.Services) > 0 && d.dp == nil {
		return errors.New("services added to a daemon started without any: restart director to open IPVS")
	}
	// A password file the speaker could not read refuses the reload.
	if err := CheckRoutingSecrets(next); err != nil {
		d.log.Error("reload refused", "err", err)
		return fmt.Errorf("configuration not reloaded, the running one stays: %w", err)
	}
	return nil
}

// logChanges logs a reload's start and each of its changes.
func logChanges(log *slog.Logger, changes []config.Change) {
	log.Info("reloading", "changes", len(changes))
	for _, c := range changes {
		log.Info("reload", "what", c.What, "change", c.How)
	}
}
