package daemon

import (
	"net/netip"
	"strings"

	"github.com/director-lb/director/checks"
)

// retrack recomputes every instance's effective priority and fault from its
// tracks (keepalived's weight rules) and its interface's carrier, and tells
// the instances what changed. It is cheap and idempotent: it runs after any
// health or carrier change.
func (d *Daemon) retrack() {
	var ws map[string]checks.ServiceWeights
	if d.dp != nil {
		ws = d.dp.currentWeights()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.running {
		var tracks []checks.Track
		for _, t := range r.cfg.Track {
			tracks = append(tracks, checks.Track{Weight: t.Weight, Up: d.trackUp(t.Service, t.RealServer, ws)})
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

// trackUp says whether a tracked service (by its quorum) or real server
// (by its checks) is up. d.mu is held.
func (d *Daemon) trackUp(service, realServer string, ws map[string]checks.ServiceWeights) bool {
	if service != "" {
		w, ok := ws[service]
		return !ok || !w.QuorumLost
	}
	svc, addr, ok := strings.Cut(realServer, "/")
	if !ok || d.dp == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return true
	}
	h, _ := d.dp.health.status(svc, ap)
	return h != checks.Down.String()
}
