// Package config loads director.yaml: strict YAML decoding followed by
// semantic validation, with every problem reported as file:line: field: message.
package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of director.yaml.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level,omitempty"`
	// ControlSocket is the daemon's root-only control socket.
	ControlSocket string `yaml:"control_socket,omitempty"`
	// Instances are the VRRP instances this node takes part in.
	Instances []Instance `yaml:"instances,omitempty"`
	// SyncGroups are sets of instances that fail over together.
	SyncGroups []SyncGroup `yaml:"sync_groups,omitempty"`
	// Metrics, if Listen is set, serves Prometheus metrics there.
	Metrics Metrics `yaml:"metrics,omitempty"`
	// IPVS holds settings for the kernel load balancer as a whole.
	IPVS IPVS `yaml:"ipvs,omitempty"`
	// Services are the IPVS virtual services.
	Services []Service `yaml:"services,omitempty"`
	// Node names this director to its peer; the host name by default.
	Node string `yaml:"node,omitempty"`
	// API, if Listen is set, serves the peer sync and self-registration.
	API API `yaml:"api,omitempty"`
	// Decisions is where runtime decisions are kept, and how many.
	Decisions Decisions `yaml:"decisions,omitempty"`
	// NotifyFIFO, if set, is a FIFO that gets one line per state change
	// of an instance, group, service quorum or real server, in
	// keepalived's notify_fifo format.
	NotifyFIFO string `yaml:"notify_fifo,omitempty"`
	// Hooks tunes how notify commands run (timeout, queue).
	Hooks Hooks `yaml:"hooks,omitempty"`
	// RTPriority, 1-99, runs the daemon's threads (VRRP, VIP moves, the
	// dataplane) under the realtime round-robin policy at this priority
	// (keepalived's vrrp_rt_priority); 0 leaves them normal. Its children
	// (the check worker, hooks, scripts) stay normal.
	RTPriority int `yaml:"rt_priority,omitempty"`
	// Scripts are commands run periodically whose exit status instances
	// can track (keepalived's vrrp_script).
	Scripts []Script `yaml:"scripts,omitempty"`
	// TrackFiles are files holding a number instances can track
	// (keepalived's track_file).
	TrackFiles []TrackFile `yaml:"track_files,omitempty"`
	// TrackProcesses are process counts instances can track (keepalived's
	// vrrp_track_process).
	TrackProcesses []TrackProcess `yaml:"track_processes,omitempty"`
	// Routing, if present, puts the node in routed (active/active) mode:
	// its VIPs are announced by BGP, or installed in a kernel table for a
	// routing daemon, while it is fit to serve them.
	Routing *Routing `yaml:"routing,omitempty"`

	// File is where the configuration was read from; set by Load, not by YAML.
	File string `yaml:"-"`
	// Source is the text it was parsed from (Parse sets it): what the
	// VRRP process is given, so that both processes run the same file.
	Source []byte `yaml:"-"`
	// Warnings are what Parse found likely wrong in a valid configuration,
	// in file order: reported, never refused. Not part of the
	// configuration: Diff and PairHash ignore them.
	Warnings Problems `yaml:"-"`
}

// Metrics is the Prometheus endpoint; off unless Listen is set.
type Metrics struct {
	// Listen is host:port, e.g. 127.0.0.1:9105. Binding beyond loopback
	// is the operator's explicit choice.
	Listen string `yaml:"listen,omitempty"`
}

// Instance is one VRRP virtual router.
type Instance struct {
	Name           string   `yaml:"name,omitempty"`
	Interface      string   `yaml:"interface,omitempty"`
	VRID           int      `yaml:"vrid,omitempty"`
	Priority       int      `yaml:"priority,omitempty"`
	Version        int      `yaml:"version,omitempty"`
	AdvertInterval Duration `yaml:"advert_interval,omitempty"`
	// Preempt is a pointer so that "absent" can default to true.
	Preempt      *bool    `yaml:"preempt,omitempty"`
	PreemptDelay Duration `yaml:"preempt_delay,omitempty"`
	Unicast      *Unicast `yaml:"unicast,omitempty"`
	// AllowedSources, in multicast, are the only addresses whose adverts
	// count (the other node's); the rest are dropped in the kernel. In
	// unicast the peers are that list.
	AllowedSources []string     `yaml:"allowed_sources,omitempty"`
	SourceAddrs    []netip.Addr `yaml:"-"`
	// VIPs are the addresses the instance moves and advertises, each
	// "address[/len]" or, like keepalived, "address[/len] dev IFACE" for
	// one that lives on another interface than the VRRP one.
	VIPs []string `yaml:"vips,omitempty"`
	// VIPsExcluded move with mastership like VIPs but are left out of
	// adverts (keepalived's virtual_ipaddress_excluded): for more than
	// fit in an advert, or another address family. Same entry form.
	VIPsExcluded []string `yaml:"vips_excluded,omitempty"`
	// AuthPass is VRRPv2 simple-text authentication (keepalived's auth_type PASS).
	AuthPass string `yaml:"auth_pass,omitempty"`
	GARP     GARP   `yaml:"garp,omitempty"`
	// StateHooks are the notify commands (notify, notify_master, ...).
	StateHooks `yaml:",inline"`
	// Track lowers (or raises) the priority with the health of services and
	// real servers, with keepalived's track weights.
	Track []Track `yaml:"track,omitempty"`
	// GroupTrack are the tracks the instance takes from its sync group
	// (SyncGroup.Track, weight 0), filled in by Parse; use Tracks.
	GroupTrack []Track `yaml:"-"`
	// EC2, if set, moves the VIPs through the EC2 API too.
	EC2 *EC2 `yaml:"ec2,omitempty"`

	// Routes and Rules are added on becoming master and removed on
	// leaving it (keepalived's virtual_routes and virtual_rules).
	Routes []Route `yaml:"routes,omitempty"`
	Rules  []Rule  `yaml:"rules,omitempty"`

	// VMAC puts the VIPs on a macvlan with the VRRP virtual MAC
	// (keepalived's use_vmac), named VMACName (default vrrp.<VRID>), and
	// sends adverts from it unless VMACXmitBase.
	VMAC         bool   `yaml:"vmac,omitempty"`
	VMACName     string `yaml:"vmac_name,omitempty"`
	VMACXmitBase bool   `yaml:"vmac_xmit_base,omitempty"`

	// Addresses is VIPs parsed; filled in by validation. These, and only
	// these, are carried in adverts.
	Addresses []netip.Prefix `yaml:"-"`
	// Placed is every address the instance moves, with the interface it
	// goes on; filled in by validation.
	Placed []PlacedVIP `yaml:"-"`
}

// Route is a route that follows mastership.
type Route struct {
	// To is a prefix, a bare address (a host route) or "default".
	To  string `yaml:"to"`
	Via string `yaml:"via,omitempty"`
	// Dev is the interface; without Via it defaults to the instance's.
	Dev    string `yaml:"dev,omitempty"`
	Table  int    `yaml:"table,omitempty"` // 0: main
	Metric int    `yaml:"metric,omitempty"`
	Src    string `yaml:"src,omitempty"`

	// Parsed by validation.
	ToPrefix netip.Prefix `yaml:"-"`
	ViaAddr  netip.Addr   `yaml:"-"`
	SrcAddr  netip.Addr   `yaml:"-"`
}

// Rule is a policy routing rule that follows mastership.
type Rule struct {
	// From and To are prefixes or bare addresses; empty or "all" is any.
	From     string `yaml:"from,omitempty"`
	To       string `yaml:"to,omitempty"`
	Table    int    `yaml:"table"`
	Priority int    `yaml:"priority,omitempty"` // 0: the kernel picks

	// Parsed by validation.
	FromPrefix netip.Prefix `yaml:"-"`
	ToPrefix   netip.Prefix `yaml:"-"`
	Family     int          `yaml:"-"` // 4 or 6
}

// PlacedVIP is one address an instance moves and the interface it lives on.
type PlacedVIP struct {
	Prefix netip.Prefix
	Dev    string // never empty after validation
}

// AddressInterface is where VIPs without dev go: the VMAC interface if
// there is one, else the VRRP interface.
func (in *Instance) AddressInterface() string {
	if in.VMAC {
		return in.VMACName
	}
	return in.Interface
}

// OnlyOwnInterface reports whether every address the instance moves is
// one of its advertised VIPs on its own interface: the shape a reload can
// change live.
func (in *Instance) OnlyOwnInterface() bool {
	if len(in.Placed) != len(in.Addresses) {
		return false
	}
	for _, p := range in.Placed {
		if p.Dev != in.AddressInterface() {
			return false
		}
	}
	return true
}

// Track is one thing an instance's priority follows: exactly one of its
// kinds is set.
type Track struct {
	// Service is tracked by its quorum: down while quorum is lost.
	Service string `yaml:"service,omitempty"`
	// RealServer is "service/address:port", down while its checks fail.
	RealServer string `yaml:"real_server,omitempty"`
	// Script names one of scripts: down while it fails.
	Script string `yaml:"script,omitempty"`
	// File names one of track_files: its value times the weight is added.
	File string `yaml:"file,omitempty"`
	// Process names one of track_processes: down while out of quorum.
	Process string `yaml:"process,omitempty"`
	// Interface is any interface, down without carrier or admin up.
	Interface string `yaml:"interface,omitempty"`
	// Weight > 0 is added while up; < 0 is added while down; 0 puts the
	// instance in FAULT while down. Absent, a service or real server has
	// 0, an interface 0, and a script, file or process its own weight.
	// A pointer, so that absent and 0 differ.
	Weight *int `yaml:"weight,omitempty"`
	// WeightReverse, if set, overrides the script's, file's or process's
	// weight_reverse (keepalived's "weight N reverse" in a track list).
	WeightReverse *bool `yaml:"weight_reverse,omitempty"`
}

// Tracks returns everything the instance tracks: its own tracks, then
// its sync group's.
func (in *Instance) Tracks() []Track {
	if len(in.GroupTrack) == 0 {
		return in.Track
	}
	return append(slices.Clone(in.Track), in.GroupTrack...)
}

// Kind names what t tracks ("service", "real_server", "script", "file",
// "process" or "interface") and its name.
func (t *Track) Kind() (kind, name string) {
	switch {
	case t.Service != "":
		return "service", t.Service
	case t.RealServer != "":
		return "real_server", t.RealServer
	case t.Script != "":
		return "script", t.Script
	case t.File != "":
		return "file", t.File
	case t.Process != "":
		return "process", t.Process
	case t.Interface != "":
		return "interface", t.Interface
	}
	return "", ""
}

// Unicast switches an instance from multicast to unicast adverts.
type Unicast struct {
	Source string   `yaml:"source,omitempty"`
	Peers  []string `yaml:"peers,omitempty"`
	// Routed accepts adverts whatever their TTL: the peers are behind
	// routers. Otherwise, as RFC 5798 requires, only TTL 255 is.
	Routed bool `yaml:"routed,omitempty"`

	SourceAddr netip.Addr   `yaml:"-"`
	PeerAddrs  []netip.Addr `yaml:"-"`
}

// GARP controls the announcements a new master sends for its VIPs.
type GARP struct {
	// Count is the number of gratuitous ARPs / unsolicited NAs per burst.
	Count int `yaml:"count,omitempty"`
	// Interval is the spacing between announcements of one burst.
	Interval Duration `yaml:"interval,omitempty"`
	// Refresh, when set, repeats a burst this often while master.
	Refresh Duration `yaml:"refresh,omitempty"`
}

// PreemptEnabled reports the effective preempt setting (default true).
func (in *Instance) PreemptEnabled() bool { return in.Preempt == nil || *in.Preempt }

// Family is 4 or 6: that of the advertised VIPs; without any, that of the
// unicast addresses; without those, 4 (as keepalived assumes).
func (in *Instance) Family() int {
	if len(in.Addresses) > 0 {
		if in.Addresses[0].Addr().Is4() {
			return 4
		}
		return 6
	}
	if u := in.Unicast; u != nil {
		for _, s := range append([]string{u.Source}, u.Peers...) {
			if a, err := netip.ParseAddr(s); err == nil {
				if a.Is4() {
					return 4
				}
				return 6
			}
		}
	}
	return 4
}

// Duration is a time.Duration written in YAML as a Go duration string, like 100ms.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML insists on a unit: a bare number is ambiguous between the
// seconds keepalived uses and the nanoseconds Go would assume.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 100ms", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: write it with a unit, like 100ms or 1s", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %s is negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in a form UnmarshalYAML reads, as
// FormatDuration does.
func (d Duration) MarshalYAML() (any, error) { return FormatDuration(time.Duration(d)), nil }

// FormatDuration writes d as the examples do: whole seconds as 300s (not
// 5m0s), whole milliseconds as 100ms, anything else as Go writes it.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return d.String()
}
