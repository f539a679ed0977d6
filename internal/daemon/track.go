package daemon

import (
	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/track"
)

// retrack recomputes every instance's effective priority and fault from its
// tracks (keepalived's weight rules) and its interface's carrier, and tells
// the instances what changed. It is cheap and idempotent: it runs after any
// health, carrier or tracked object's change.
func (d *Daemon) retrack() {
	defer d.kickRouting() // routed VIPs follow the same inputs
	defer d.pushTracks()  // and the VRRP process's instances, if any
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.running {
		tracks, _ := d.evalTracks(&r.cfg)
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
		if fault != r.fault {
			d.log.Warn("tracked fault changed", "instance", r.cfg.Name, "fault", fault)
			r.fault = fault
			r.in.SetFault(fault)
		}
		if up != r.link {
			r.link = up
			r.in.SetLink(up)
		}
	}
}

// evalTracks turns an instance's tracks into checks.Tracks and the
// control view of them. Called with d.mu held. Anything unknown (no
// dataplane, a tracker not started) counts as up, so that it never lowers
// a priority by mistake.
func (d *Daemon) evalTracks(ic *config.Instance) ([]checks.Track, []control.TrackState) {
	var out []checks.Track
	var views []control.TrackState
	for _, t := range ic.Tracks() {
		kind, name := t.Kind()
		ct := checks.Track{Up: true}
		v := control.TrackState{Kind: kind, Name: name}
		def := 0 // the weight when the track sets none
		var st track.State
		var have bool
		switch kind {
		case "service", "real_server":
			ct.Up = d.serviceTrackUp(&t)
			if !ct.Up {
				v.Result = "quorum lost"
				if kind == "real_server" {
					v.Result = "checks failing"
				}
			}
		case "script":
			for _, s := range d.cfg.Scripts {
				if s.Name == name {
					def, ct.Reverse = s.Weight, s.WeightReverse
				}
			}
			st, have = d.trackState(track.KindScript, name)
		case "file":
			for _, f := range d.cfg.TrackFiles {
				if f.Name == name && f.Weight != nil {
					def, ct.Reverse = *f.Weight, f.WeightReverse
				}
			}
			ct.Valued = true
			st, have = d.trackState(track.KindFile, name)
			ct.Value = st.Value
		case "process":
			for _, p := range d.cfg.TrackProcesses {
				if p.Name == name {
					def, ct.Reverse = p.Weight, p.WeightReverse
				}
			}
			st, have = d.trackState(track.KindProcess, name)
		case "interface":
			if c, ok := d.carriers[name]; ok {
				ct.Up = c.up
			}
			v.Result = "carrier up"
			if !ct.Up {
				v.Result = "carrier down"
			}
		}
		ct.Weight = def
		if t.Weight != nil {
			ct.Weight = *t.Weight
		}
		if t.WeightReverse != nil {
			ct.Reverse = *t.WeightReverse
		}
		v.Weight, v.Reverse = ct.Weight, ct.Reverse
		v.State = "up"
		if !ct.Up {
			v.State = "down"
		}
		if have {
			ct.Up = st.Up
			v.State, v.Result, v.Output = st.Status(), st.Result, st.Output
		}
		if have && !st.Known {
			// Not looked at yet: it counts for nothing, as in keepalived.
			views = append(views, v)
			continue
		}
		out = append(out, ct)
		// What this track alone does to a neutral priority.
		p, f := checks.TrackPriority(127, []checks.Track{ct})
		v.Applied, v.Fault = p-127, f
		if f {
			v.State = "fault"
		}
		views = append(views, v)
	}
	return out, views
}

// trackState is a tracker's state, if it runs.
func (d *Daemon) trackState(kind, name string) (track.State, bool) {
	return d.tracks.State(track.Key{Kind: kind, Name: name})
}
