package config

import (
	"fmt"
	"reflect"
)

// Change is one difference between two configurations, in words.
type Change struct {
	What string // "instance web", "service http", "log_level", ...
	How  string // "added", "removed", "priority 100 -> 120", ...
}

func (c Change) String() string { return c.What + ": " + c.How }

// InstanceChange says how a reload must treat a VRRP instance.
type InstanceChange int

const (
	InstanceSame    InstanceChange = iota // keeps running untouched, in its state
	InstanceLive                          // only priority and VIPs changed: applied live, state kept
	InstanceRestart                       // anything else: stop (handing over), start anew
)

// CompareInstance decides how a reload applies new to a running old.
// Priority and VIPs change live, so a reload that adds a VIP does not make
// the master hand over; a change of address family, or an instance whose
// VIPs move through EC2, still restarts.
func CompareInstance(old, new *Instance) InstanceChange {
	if reflect.DeepEqual(old, new) {
		return InstanceSame
	}
	o := *old
	o.Priority = new.Priority
	// Hooks are looked up when a change happens, so new ones need no restart.
	o.StateHooks = new.StateHooks
	// Only VIPs on the instance's own interface change live; the others
	// (dev, excluded) restart the instance, which moves them all anew.
	if new.EC2 == nil && old.Family() == new.Family() && old.OnlyOwnInterface() && new.OnlyOwnInterface() {
		o.VIPs, o.Addresses, o.Placed = new.VIPs, new.Addresses, new.Placed
	}
	if reflect.DeepEqual(&o, new) {
		return InstanceLive
	}
	return InstanceRestart
}

// Diff lists what changes from old to new, as a reload would apply it.
func Diff(old, new *Config) []Change {
	var out []Change
	add := func(what, format string, args ...any) {
		out = append(out, Change{What: what, How: fmt.Sprintf(format, args...)})
	}
	if old.RTPriority != new.RTPriority {
		add("rt_priority", "%d -> %d", old.RTPriority, new.RTPriority)
	}
	if old.LogLevel != new.LogLevel {
		add("log_level", "%s -> %s", old.LogLevel, new.LogLevel)
	}
	if old.ControlSocket != new.ControlSocket {
		add("control_socket", "%s -> %s (takes effect at restart)", old.ControlSocket, new.ControlSocket)
	}
	if old.Decisions.File != new.Decisions.File {
		add("decisions.file", "%s -> %s (takes effect at restart)", old.Decisions.File, new.Decisions.File)
	}
	if old.Decisions.MaxEntries != new.Decisions.MaxEntries {
		add("decisions.max_entries", "%d -> %d", old.Decisions.MaxEntries, new.Decisions.MaxEntries)
	}
	out = append(out, diffAPI(old.API, new.API)...)
	oldIn := map[string]*Instance{}
	for i := range old.Instances {
		oldIn[old.Instances[i].Name] = &old.Instances[i]
	}
	newIn := map[string]bool{}
	for i := range new.Instances {
		n := &new.Instances[i]
		newIn[n.Name] = true
		o, ok := oldIn[n.Name]
		what := "instance " + n.Name
		switch {
		case !ok:
			add(what, "added")
		case CompareInstance(o, n) == InstanceLive:
			if o.Priority != n.Priority {
				add(what, "priority %d -> %d", o.Priority, n.Priority)
			}
			if !reflect.DeepEqual(o.VIPs, n.VIPs) {
				add(what, "vips %v -> %v (applied live: a master stays master)", o.VIPs, n.VIPs)
			}
			if !reflect.DeepEqual(o.StateHooks, n.StateHooks) {
				add(what, "notify hooks changed (applied live)")
			}
		case CompareInstance(o, n) == InstanceRestart:
			add(what, "changed: restarted (a master hands over first)")
		}
	}
	for _, o := range old.Instances {
		if !newIn[o.Name] {
			add("instance "+o.Name, "removed (a master hands over first)")
		}
	}
	out = append(out, diffSyncGroups(old, new)...)
	if !reflect.DeepEqual(old.IPVS, new.IPVS) {
		add("ipvs", "settings changed")
	}
	oldSvc := map[string]*Service{}
	for i := range old.Services {
		oldSvc[old.Services[i].Name] = &old.Services[i]
	}
	newSvc := map[string]bool{}
	for i := range new.Services {
		n := &new.Services[i]
		newSvc[n.Name] = true
		o, ok := oldSvc[n.Name]
		what := "service " + n.Name
		if !ok {
			add(what, "added")
			continue
		}
		if reflect.DeepEqual(o, n) {
			continue
		}
		oc, nc := *o, *n
		oc.RealServers, nc.RealServers = nil, nil
		if !reflect.DeepEqual(oc, nc) {
			add(what, "service settings changed")
		}
		oldRS := map[string]RealServer{}
		for _, r := range o.RealServers {
			oldRS[fmt.Sprintf("%s:%d", r.Addr, r.Port)] = r
		}
		seen := map[string]bool{}
		for _, r := range n.RealServers {
			k := fmt.Sprintf("%s:%d", r.Addr, r.Port)
			seen[k] = true
			or, ok := oldRS[k]
			switch {
			case !ok:
				add(what, "real server %s added", k)
			case or.EffectiveWeight() != r.EffectiveWeight():
				add(what, "real server %s weight %d -> %d", k, or.EffectiveWeight(), r.EffectiveWeight())
			case !reflect.DeepEqual(or, r):
				add(what, "real server %s changed", k)
			}
		}
		for _, r := range o.RealServers {
			if k := fmt.Sprintf("%s:%d", r.Addr, r.Port); !seen[k] {
				add(what, "real server %s removed (drained)", k)
			}
		}
	}
	for _, o := range old.Services {
		if !newSvc[o.Name] {
			add("service "+o.Name, "removed (drained)")
		}
	}
	out = append(out, diffTrackObjects(old, new)...)
	out = append(out, diffRouting(old, new)...)
	return out
}

// diffAPI names the api fields a reload changes. The reload builds the new
// listener and swaps it in only once it works; file paths are named, their
// contents (tokens, keys) never.
func diffAPI(o, n API) []Change {
	var out []Change
	field := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, Change{What: "api." + name, How: fmt.Sprintf("%v -> %v", a, b)})
		}
	}
	field("listen", o.Listen, n.Listen)
	field("peer", o.Peer, n.Peer)
	field("peer_token_file", o.PeerTokenFile, n.PeerTokenFile)
	field("sync_interval", o.SyncInterval, n.SyncInterval)
	field("registration_token_file", o.RegistrationTokenFile, n.RegistrationTokenFile)
	field("insecure", o.Insecure, n.Insecure)
	var ot, nt APITLS
	if o.TLS != nil {
		ot = *o.TLS
	}
	if n.TLS != nil {
		nt = *n.TLS
	}
	field("tls.cert_file", ot.CertFile, nt.CertFile)
	field("tls.key_file", ot.KeyFile, nt.KeyFile)
	field("tls.ca_file", ot.CAFile, nt.CAFile)
	field("tls.peer_sha256", ot.PeerSHA256, nt.PeerSHA256)
	return out
}
