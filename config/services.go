package config

import "net/netip"

// IPVS holds settings for the kernel IPVS table as a whole.
type IPVS struct {
	// ServicesOnBackup installs services on a backup too (default true), so
	// that a takeover only has to move the VIP.
	ServicesOnBackup *bool `yaml:"services_on_backup"`
	// DrainTimeout bounds how long a removed real server keeps its
	// connections at weight 0 before it is deleted.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// ResyncInterval is how often the kernel table is re-read and drift repaired.
	ResyncInterval Duration `yaml:"resync_interval"`
	// StateFile records which services director owns, across restarts.
	StateFile string `yaml:"state_file"`
	// Sync runs the kernel's connection-sync daemon between the pair.
	Sync *Sync `yaml:"sync"`
}

// Sync configures the IPVS connection synchronisation daemon.
type Sync struct {
	Interface string `yaml:"interface"`
	SyncID    int    `yaml:"sync_id"`
	// Instance is the VRRP instance whose mastership decides the daemon's
	// role (master sends, backup receives); by default the first instance.
	Instance string `yaml:"instance"`
}

// BackupServices reports the effective services_on_backup (default true).
func (i *IPVS) BackupServices() bool { return i.ServicesOnBackup == nil || *i.ServicesOnBackup }

// Service is one IPVS virtual service.
type Service struct {
	Name string `yaml:"name"`
	// VIP, Port and Protocol name the service, or FWMark does.
	VIP      string `yaml:"vip"`
	Port     int    `yaml:"port"`
	Protocol string `yaml:"protocol"`
	FWMark   int    `yaml:"fwmark"`
	// Family is 4 or 6 for a firewall-mark service (default 4).
	Family         int          `yaml:"family"`
	Scheduler      string       `yaml:"scheduler"`
	SchedulerFlags []string     `yaml:"scheduler_flags"`
	Forwarding     string       `yaml:"forwarding"`
	Persistence    *Persistence `yaml:"persistence"`
	SorryServer    string       `yaml:"sorry_server"`
	// Instance is the VRRP instance whose mastership the service follows when
	// services_on_backup is false; by default the one holding the VIP.
	Instance    string       `yaml:"instance"`
	RealServers []RealServer `yaml:"real_servers"`

	// Filled in by validation.
	Addr       netip.Addr     `yaml:"-"`
	Sorry      netip.AddrPort `yaml:"-"`
	AddrFamily int            `yaml:"-"`
}

// Persistence makes a client stick to one real server.
type Persistence struct {
	Timeout Duration `yaml:"timeout"`
	// Netmask groups clients: a prefix length (32 = per address) or, for
	// IPv4, a dotted mask as ipvsadm writes it.
	Netmask string `yaml:"netmask"`

	Bits int `yaml:"-"`
}

// RealServer is one destination of a service.
type RealServer struct {
	Address        string `yaml:"address"`
	Port           int    `yaml:"port"`
	Weight         *int   `yaml:"weight"`
	UpperThreshold int    `yaml:"upper_threshold"`
	LowerThreshold int    `yaml:"lower_threshold"`
	Forwarding     string `yaml:"forwarding"`

	Addr netip.Addr `yaml:"-"`
}

// EffectiveWeight is the configured weight, 1 by default as in ipvsadm.
func (r *RealServer) EffectiveWeight() int {
	if r.Weight == nil {
		return 1
	}
	return *r.Weight
}
