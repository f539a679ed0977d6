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
	// Family is 4 or 6 for a firewall-mark service (default 4).
	Family         int          `yaml:"family,omitempty"`
	Scheduler      string       `yaml:"scheduler,omitempty"`
	SchedulerFlags []string     `yaml:"scheduler_flags,omitempty"`
	Forwarding     string       `yaml:"forwarding,omitempty"`
	Persistence    *Persistence `yaml:"persistence,omitempty"`
	SorryServer    string       `yaml:"sorry_server,omitempty"`
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

	// Filled in by validation.
	Addr       netip.Addr     `yaml:"-"`
	Sorry      netip.AddrPort `yaml:"-"`
	AddrFamily int            `yaml:"-"`
}

// Persistence makes a client stick to one real server.
type Persistence struct {
	Timeout Duration `yaml:"timeout,omitempty"`
	// Netmask groups clients: a prefix length (32 = per address) or, for
	// IPv4, a dotted mask as ipvsadm writes it.
	Netmask string `yaml:"netmask,omitempty"`

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

// EffectiveWeight is the configured weight, 1 by default as in ipvsadm.
func (r *RealServer) EffectiveWeight() int {
	if r.Weight == nil {
		return 1
	}
	return *r.Weight
}
