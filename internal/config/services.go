package config

import "net/netip"

// IPVS holds settings for the kernel IPVS table as a whole.
type IPVS struct {
	// ServicesOnBackup installs services on a backup too (default true), so
	// that a takeover only has to move the VIP.
	ServicesOnBackup *bool `yaml:"services_on_backup,omitempty"`
	// DrainTimeout bounds how long a removed real server keeps its
	// connections at weight 0 before it is deleted.
	DrainTimeout Duration `yaml:"drain_timeout,omitempty"`
	// ResyncInterval is how often the kernel table is re-read and drift repaired.
	ResyncInterval Duration `yaml:"resync_interval,omitempty"`
	// StateFile records which services director owns, across restarts.
	StateFile string `yaml:"state_file,omitempty"`
	// Sync runs the kernel's connection-sync daemon between the pair.
	Sync *Sync `yaml:"sync,omitempty"`
	// Sysctl sets net.ipv4.vs.* at start and reload, over director's
	// defaults (ipvs.DefaultSysctls), which keep new connections off
	// drained and failed real servers.
	Sysctl map[string]int `yaml:"sysctl,omitempty"`
}

// Sync configures the IPVS connection synchronisation daemon.
type Sync struct {
	Interface string `yaml:"interface,omitempty"`
	SyncID    int    `yaml:"sync_id,omitempty"`
	// Instance is the VRRP instance whose mastership decides the daemon's
	// role (master sends, backup receives); by default the first instance.
	Instance string `yaml:"instance,omitempty"`
}

// BackupServices reports the effective services_on_backup (default true).
func (i *IPVS) BackupServices() bool { return i.ServicesOnBackup == nil || *i.ServicesOnBackup }

// Service is one IPVS virtual service.
type Service struct {
	Name string `yaml:"name,omitempty"`
	// VIP, Port and Protocol name the service, or FWMark does.
	VIP      string `yaml:"vip,omitempty"`
	Port     int    `yaml:"port,omitempty"`
	Protocol string `yaml:"protocol,omitempty"`
	FWMark   int    `yaml:"fwmark,omitempty"`
	// Family is 4 or 6 for a firewall-mark service, or a group of marks
	// only (default 4).
	Family int `yaml:"family,omitempty"`
	// Members make the service a group (keepalived's virtual_server_group):
	// this one definition, with its real servers, weights and checks, for
	// every VIP:port, address range and firewall mark listed. Instead of
	// vip, port and fwmark. Left out of JSON when empty, so that the pair
	// hash of a configuration without groups did not change.
	Members        []Member `yaml:"members,omitempty" json:",omitempty"`
	Scheduler      string   `yaml:"scheduler,omitempty"`
	SchedulerFlags []string `yaml:"scheduler_flags,omitempty"`
	// OPS is one-packet scheduling (ipvsadm -o): each UDP datagram is
	// scheduled on its own. UDP and firewall-mark services only. The
	// LVS additions below are left out of JSON when unset, so that the
	// pair hash of a configuration without them did not change.
	OPS         bool         `yaml:"ops,omitempty" json:",omitempty"`
	Forwarding  string       `yaml:"forwarding,omitempty"`
	Persistence *Persistence `yaml:"persistence,omitempty"`
	// Tunnel is the encapsulation of the real servers (and the sorry
	// server) that tunnel, unless they give their own; forwarding must
	// be tunnel.
	Tunnel      *Tunnel `yaml:"tunnel,omitempty" json:",omitempty"`
	SorryServer string  `yaml:"sorry_server,omitempty"`
	// Instance is the VRRP instance whose mastership the service follows when
	// services_on_backup is false; by default the one holding the VIP.
	Instance    string       `yaml:"instance,omitempty"`
	RealServers []RealServer `yaml:"real_servers,omitempty"`
	// Checks apply to every real server that has none of its own.
	Checks []Check `yaml:"checks,omitempty"`
	// OnFailure is drain (weight 0, the default) or remove.
	OnFailure string `yaml:"on_failure,omitempty"`
	// Registration, if set, lets real servers add themselves through the API.
	Registration *Registration `yaml:"registration,omitempty"`
	// SlowStart ramps a recovered real server up to its weight over this long.
	SlowStart Duration `yaml:"slow_start,omitempty"`
	// Quorum is the live weight below which the service fails over to its
	// sorry server; it comes back at Quorum+Hysteresis.
	Quorum     int `yaml:"quorum,omitempty"`
	Hysteresis int `yaml:"hysteresis,omitempty"`
	// QuorumUp and QuorumDown run when the quorum is regained or lost,
	// with the arguments <service> UP|DOWN. Hooks are per node: left out
	// of JSON, so PairHash neither compares them nor changed when they
	// were added.
	QuorumUp   Command `yaml:"quorum_up,omitempty" json:"-"`
	QuorumDown Command `yaml:"quorum_down,omitempty" json:"-"`

	// Filled in by validation. Addr is the VIP (for a group, its first
	// address member's, which decides the instance it follows).
	Addr       netip.Addr     `yaml:"-"`
	Sorry      netip.AddrPort `yaml:"-"`
	AddrFamily int            `yaml:"-"`
	// Endpoints is every virtual service the definition stands for: one
	// for a plain service, one per address (ranges expanded) and mark of
	// a group. Derived from the fields above, so left out of the hash.
	Endpoints []Endpoint `yaml:"-" json:"-"`
}

// Member is one entry of a service group: vip and port, or fwmark.
type Member struct {
	// VIP is an address, or a range in keepalived's forms: 10.0.0.1-10
	// (the last byte; for IPv6 the last group, in hex), 10.0.0.250-10.0.1.5,
	// or a prefix 10.0.0.8/29 (every address in it).
	VIP    string `yaml:"vip,omitempty"`
	Port   int    `yaml:"port,omitempty"`
	FWMark int    `yaml:"fwmark,omitempty"`
}

// Endpoint is one virtual service: an address and port (of the service's
// protocol), or a firewall mark.
type Endpoint struct {
	Addr   netip.Addr
	Port   int
	FWMark int
}

// IsGroup reports whether s is a service group (has members).
func (s *Service) IsGroup() bool { return len(s.Members) > 0 }

// Persistence makes a client stick to one real server.
type Persistence struct {
	Timeout Duration `yaml:"timeout,omitempty"`
	// Netmask groups clients: a prefix length (32 = per address) or, for
	// IPv4, a dotted mask as ipvsadm writes it.
	Netmask string `yaml:"netmask,omitempty"`
	// Engine is a persistence engine (ipvsadm --pe): sip keeps a SIP
	// call on one real server by its Call-ID. UDP and firewall-mark
	// services only; the kernel needs ip_vs_pe_sip.
	Engine string `yaml:"engine,omitempty" json:",omitempty"`

	Bits int `yaml:"-"`
}

// RealServer is one destination of a service.
type RealServer struct {
	Address        string `yaml:"address,omitempty"`
	Port           int    `yaml:"port,omitempty"`
	Weight         *int   `yaml:"weight,omitempty"`
	UpperThreshold int    `yaml:"upper_threshold,omitempty"`
	LowerThreshold int    `yaml:"lower_threshold,omitempty"`
	Forwarding     string `yaml:"forwarding,omitempty"`
	// Tunnel is this server's encapsulation when it tunnels, instead of
	// the service's.
	Tunnel *Tunnel `yaml:"tunnel,omitempty" json:",omitempty"`
	// Checks replace the service's checks for this server; [] means none.
	Checks *[]Check `yaml:"checks,omitempty"`
	// NotifyUp and NotifyDown run when the server's checks pass or fail,
	// with the arguments <service> <address:port> UP|DOWN.
	NotifyUp   Command `yaml:"notify_up,omitempty" json:"-"`
	NotifyDown Command `yaml:"notify_down,omitempty" json:"-"`

	Addr netip.Addr `yaml:"-"`
	// Registered marks a real server added by self-registration rather
	// than read from the file; set by the daemon, never by YAML.
	Registered bool `yaml:"-"`
}

// Tunnel is how a tunnel real server encapsulates (ipvsadm --tun-type,
// --tun-port and --tun-nocsum/--tun-csum/--tun-remcsum; kernel 5.3 on,
// GRE 5.4). The zero value is ipip.
type Tunnel struct {
	// Type is ipip (the default), gue or gre.
	Type string `yaml:"type,omitempty"`
	// Port is the real server's GUE UDP port: required with gue, and
	// only there.
	Port int `yaml:"port,omitempty" json:",omitempty"`
	// Checksum is nocsum (the default), csum or remcsum (remote checksum
	// offload, gue only); ipip has none.
	Checksum string `yaml:"checksum,omitempty" json:",omitempty"`
}

// EffectiveTunnel is the encapsulation of r in s: its own, or the
// service's; nil for plain ipip.
func (s *Service) EffectiveTunnel(r *RealServer) *Tunnel {
	if r != nil && r.Tunnel != nil {
		return r.Tunnel
	}
	return s.Tunnel
}

// EffectiveWeight is the configured weight, 1 by default as in ipvsadm.
func (r *RealServer) EffectiveWeight() int {
	if r.Weight == nil {
		return 1
	}
	return *r.Weight
}
