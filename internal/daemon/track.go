package daemon

import (
	"github.com/director-lb/director/checks"
)

// retrack recomputes every instance's effective priority and fault from its
// tracks (keepalived's weight rules) and its interface's carrier, and tells
// the instances what changed. It is cheap and idempotent: it runs after any
// health or carrier change.
func (d *Daemon) retrack() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.running {
		var tracks []checks.Track
		for _, t := range r.cfg.Track {
			// Without services nothing is tracked down.
			up := d.dp == nil || d.dp.TrackUp(t.Service, t.RealServer)
			tracks = append(tracks, checks.Track{Weight: t.Weight, Up: up})
		}
		prio, fault := checks.TrackPriority(r.cfg.Priority, tracks)
		if prio != r.prio {
			d.log.Info("tracked priority changed", "instance", r.cfg.Name, "from", r.prio, "to", prio)
			r.prio = prio
			r.in.SetPriority(uint8(prio))
		}
		up := true
		if c, ok := d.carriers[r.cfg.Interface]; ok {
			up = c.up
		}
		link := up && !fault
		if fault != r.fault {
			d.log.Warn("tracked fault changed", "instance", r.cfg.Name, "fault", fault)
			r.fault = fault
		}
		if link != r.link {
			r.link = link
			r.in.SetLink(link)
		}
	}
}
