package dataplane

import (
	"net/netip"
	"slices"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/ipvs"
)

// Input is everything the desired table depends on. Desired only reads it.
type Input struct {
	Config *config.Config
	// Health is the health-decided weights per service name, as the health
	// snapshot holds them; nil without health checking (configured weights).
	Health map[string]checks.ServiceWeights
	// Overrides are the operator's runtime overrides; nil for none.
	Overrides OverrideSet
	// Masters says which VRRP instances this node is master of; it matters
	// only for services installed on the master alone.
	Masters map[string]bool
}

// Table is the desired state: what to program, and what state and metrics
// show for it.
type Table struct {
	// Services is the IPVS table to program.
	Services []ipvs.Service
	// Views has every configured service, installed here or not, in
	// configuration order.
	Views []ServiceView
}

// ServiceView is one configured service as state shows it.
type ServiceView struct {
	Name string
	// Key is the service's virtual service; for a group, its first.
	Key ipvs.ServiceKey
	// Keys are every virtual service of a group, which all have the same
	// real servers and weights; nil for a plain service.
	Keys []ipvs.ServiceKey
	// Installed says the service is in Services (false on a backup when
	// services run on the master only).
	Installed bool
	// QuorumLost and Sorry are the health decision (see checks.ServiceWeights).
	QuorumLost, Sorry bool
	RealServers       []RealServerView
}

// RealServerView is one real server as state shows it.
type RealServerView struct {
	Addr       netip.AddrPort
	Configured int // the configured (or registered) weight
	// Weight is the weight programmed: 0 for a server left out of the table.
	Weight int
	// Present says the server is a destination in the table.
	Present    bool
	Registered bool
	// Override describes the operator's override ("drain", "weight 5"), if any.
	Override string
	// Reason says why Weight is what it is, in a few words.
	Reason string
}

// Desired computes the table from its inputs. It is pure: the same input
// gives the same table, and nothing is written anywhere. The kernel is
// programmed with its Services and state shows its Views, so the two never
// disagree.
func Desired(in Input) Table {
	cfg := in.Config
	t := Table{Views: make([]ServiceView, 0, len(cfg.Services))}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		svc := service(s)
		sw := in.Health[s.Name]
		v := ServiceView{Name: s.Name, Key: svc.Key, QuorumLost: sw.QuorumLost, Sorry: sw.Sorry, RealServers: make([]RealServerView, 0, len(svc.Destinations))}
		// Filtered in place: svc is this call's own.
		dests := svc.Destinations[:0]
		for j, d := range svc.Destinations {
			r := &s.RealServers[j]
			rv := RealServerView{Addr: d.AddrPort(), Configured: int(d.Weight), Weight: int(d.Weight), Present: true, Registered: r.Registered, Reason: "configured"}
			if x, ok := serverWeight(sw.Servers, j, rv.Addr); ok {
				rv.Present, rv.Weight = x.Present, x.Weight
				if !x.Present {
					rv.Weight = 0
				}
				rv.Reason = healthReason(rv, sw)
			}
			if len(in.Overrides) > 0 {
				if o, ok := in.Overrides.lookup(s.Name, rv.Addr); ok {
					w, keep := overrideWeight(o, rv.Weight)
					rv.Override = describeOverride(o)
					rv.Weight, rv.Present = w, rv.Present && keep
					if !rv.Present {
						rv.Weight = 0
					}
					rv.Reason = "override: " + rv.Override
				}
			}
			if rv.Present {
				d.Weight = int32(rv.Weight)
				dests = append(dests, d)
			}
			v.RealServers = append(v.RealServers, rv)
		}
		svc.Destinations = dests
		v.Installed = cfg.IPVS.BackupServices() || in.Masters[followedInstance(cfg, s)]
		members := expand(s, svc)
		if s.IsGroup() {
			v.Keys = make([]ipvs.ServiceKey, len(members))
			for k := range members {
				v.Keys[k] = members[k].Key
			}
		}
		if v.Installed {
			t.Services = append(t.Services, members...)
		}
		t.Views = append(t.Views, v)
	}
	return t
}

// serverWeight finds ap's health decision: at index j when the snapshot
// was made from the same configuration (the usual case, no search).
func serverWeight(ws []checks.ServerWeight, j int, ap netip.AddrPort) (checks.ServerWeight, bool) {
	if j < len(ws) && ws[j].Server == ap {
		return ws[j], true
	}
	for _, w := range ws {
		if w.Server == ap {
			return w, true
		}
	}
	return checks.ServerWeight{}, false
}

// healthReason says why health checks gave rv its weight.
func healthReason(rv RealServerView, sw checks.ServiceWeights) string {
	switch {
	case rv.Weight == rv.Configured && rv.Present:
		return "configured"
	case sw.Sorry:
		return "quorum lost: sorry server"
	case !rv.Present:
		return "failed: removed"
	case rv.Weight == 0:
		return "failed"
	}
	return "health checks" // slow start or a dynamic weight
}

// Services turns the configuration's services into the IPVS model at their
// configured weights, with no health or overrides applied: one per
// virtual service, so a group gives one per member.
func Services(cfg *config.Config) []ipvs.Service {
	out := make([]ipvs.Service, 0, len(cfg.Services))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		out = append(out, expand(s, service(s))...)
	}
	return out
}

// expand gives svc, a service as the model has it, once per virtual
// service of s: itself for a plain service, a copy per member of a group,
// each with the same destinations (health and overrides already applied)
// under its own key.
func expand(s *config.Service, svc ipvs.Service) []ipvs.Service {
	if len(s.Endpoints) <= 1 {
		routedPorts(&svc)
		return []ipvs.Service{svc}
	}
	out := make([]ipvs.Service, len(s.Endpoints))
	for i, e := range s.Endpoints {
		c := svc
		c.Key = endpointKey(s, e)
		// Each its own: the reconciler may keep and compare them.
		c.Destinations = slices.Clone(svc.Destinations)
		if svc.Sorry != nil {
			sorry := *svc.Sorry
			c.Sorry = &sorry
		}
		routedPorts(&c)
		out[i] = c
	}
	return out
}

// routedPorts gives svc's direct-routed and tunnelled destinations (and
// sorry server) the virtual service's port, 0 for a firewall mark: their
// packets keep the port the client used, so the real server's own port
// only says where its checks go. keepalived programs them so, as ipvsadm
// does (but for marks), and a table converted from keepalived is the same
// table.
func routedPorts(svc *ipvs.Service) {
	for i := range svc.Destinations {
		if d := &svc.Destinations[i]; d.Forward != ipvs.Masq {
			d.Port = svc.Key.Port
		}
	}
	if d := svc.Sorry; d != nil && d.Forward != ipvs.Masq {
		d.Port = svc.Key.Port
	}
}

// endpointKey is the IPVS key of one virtual service of s.
func endpointKey(s *config.Service, e config.Endpoint) ipvs.ServiceKey {
	k := ipvs.ServiceKey{Family: s.AddrFamily, FWMark: uint32(e.FWMark)}
	if e.FWMark == 0 {
		k.Protocol = protocols[s.Protocol]
		k.Addr = e.Addr
		k.Port = uint16(e.Port)
	}
	return k
}

var forwards = map[string]ipvs.Forward{"dr": ipvs.Route, "nat": ipvs.Masq, "tunnel": ipvs.Tunnel}

var protocols = map[string]ipvs.Protocol{"tcp": ipvs.TCP, "udp": ipvs.UDP, "sctp": ipvs.SCTP}

// service is s in the IPVS model, one destination per real server in
// order; a group's under the key of its first member.
func service(s *config.Service) ipvs.Service {
	e := config.Endpoint{Addr: s.Addr, Port: s.Port, FWMark: s.FWMark}
	if len(s.Endpoints) > 0 {
		e = s.Endpoints[0]
	}
	svc := ipvs.Service{Key: endpointKey(s, e), Scheduler: s.Scheduler}
	for _, f := range s.SchedulerFlags {
		switch f {
		case "sh-fallback", "mh-fallback":
			svc.Flags |= ipvs.FlagSchedFallback
		case "sh-port", "mh-port":
			svc.Flags |= ipvs.FlagSchedPort
		}
	}
	if s.OPS {
		svc.Flags |= ipvs.FlagOnePacket
	}
	if p := s.Persistence; p != nil {
		svc.Persistent = true
		svc.Timeout = p.Timeout.D()
		svc.Netmask = p.Bits
		svc.PE = p.Engine
	}
	svc.Destinations = make([]ipvs.Destination, 0, len(s.RealServers))
	for i := range s.RealServers {
		r := &s.RealServers[i]
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
			Encap:   encap(fwd, s.EffectiveTunnel(r)),
		})
	}
	if s.Sorry.IsValid() {
		fwd := forwards[s.Forwarding]
		svc.Sorry = &ipvs.Destination{Addr: s.Sorry.Addr(), Port: s.Sorry.Port(), Weight: 1, Forward: fwd, Encap: encap(fwd, s.Tunnel)}
	}
	return svc
}

var (
	tunnelTypes     = map[string]ipvs.TunnelType{"ipip": ipvs.TunnelIPIP, "gue": ipvs.TunnelGUE, "gre": ipvs.TunnelGRE}
	tunnelChecksums = map[string]ipvs.TunnelChecksum{"nocsum": ipvs.TunnelNoChecksum, "csum": ipvs.TunnelChecksumOn, "remcsum": ipvs.TunnelRemoteChecksum}
)

// encap is a destination's encapsulation: t's when it tunnels (a real
// server that tunnels while the service does not still gets the
// service's none), none otherwise.
func encap(fwd ipvs.Forward, t *config.Tunnel) ipvs.Encap {
	if fwd != ipvs.Tunnel || t == nil {
		return ipvs.Encap{}
	}
	return ipvs.Encap{Type: tunnelTypes[t.Type], Port: uint16(t.Port), Checksum: tunnelChecksums[t.Checksum]}
}

// followedInstance is the VRRP instance a service follows when services are
// installed on the master only: the configured one, or the one whose VIPs
// hold the service address, or the only instance there is.
func followedInstance(cfg *config.Config, s *config.Service) string {
	if s.Instance != "" {
		return s.Instance
	}
	for _, in := range cfg.Instances {
		for _, p := range in.Placed { // excluded VIPs too
			if p.Prefix.Addr() == s.Addr {
				return in.Name
			}
		}
	}
	if len(cfg.Instances) == 1 {
		return cfg.Instances[0].Name
	}
	return ""
}

// weightChange is one destination whose weight alone differs.
type weightChange struct {
	key    ipvs.ServiceKey
	dst    netip.AddrPort
	weight int32
}

// weightsOnly compares the table last programmed with the next one: if the
// only differences are weights of existing destinations, it returns them
// and true (the fast path); anything structural returns false.
func weightsOnly(prev, next []ipvs.Service) ([]weightChange, bool) {
	if len(prev) != len(next) {
		return nil, false
	}
	var out []weightChange
	for i := range next {
		p, n := &prev[i], &next[i]
		if p.Key != n.Key || p.Scheduler != n.Scheduler || p.Flags != n.Flags || p.Persistent != n.Persistent || p.PE != n.PE ||
			p.Timeout != n.Timeout || p.Netmask != n.Netmask || (p.Sorry == nil) != (n.Sorry == nil) ||
			(p.Sorry != nil && *p.Sorry != *n.Sorry) || len(p.Destinations) != len(n.Destinations) {
			return nil, false
		}
		for j := range n.Destinations {
			pd, nd := p.Destinations[j], n.Destinations[j]
			if pd.Weight == nd.Weight {
				if pd != nd {
					return nil, false
				}
				continue
			}
			pd.Weight = nd.Weight
			if pd != nd {
				return nil, false
			}
			out = append(out, weightChange{key: n.Key, dst: nd.AddrPort(), weight: nd.Weight})
		}
	}
	return out, true
}
