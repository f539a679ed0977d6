package kaimport

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/director-lb/director/internal/config"
)

// fmtDuration writes d the way director.yaml examples do: 1s, 300s, 100ms.
func fmtDuration(d time.Duration) string { return config.FormatDuration(d) }

// The output types mirror config's, with omitempty and in the order a
// person would write them; config's own types would print every zero value.
type outConfig struct {
	NotifyFIFO     string            `yaml:"notify_fifo,omitempty"`
	Instances      []outInstance     `yaml:"instances,omitempty"`
	SyncGroups     []outSyncGroup    `yaml:"sync_groups,omitempty"`
	IPVS           *outIPVS          `yaml:"ipvs,omitempty"`
	Services       []outService      `yaml:"services,omitempty"`
	Scripts        []outScript       `yaml:"scripts,omitempty"`
	TrackFiles     []outTrackFile    `yaml:"track_files,omitempty"`
	TrackProcesses []outTrackProcess `yaml:"track_processes,omitempty"`
}

type outInstance struct {
	Name           string      `yaml:"name"`
	Interface      string      `yaml:"interface,omitempty"`
	VRID           int         `yaml:"vrid,omitempty"`
	Priority       int         `yaml:"priority"`
	Version        int         `yaml:"version"`
	AdvertInterval string      `yaml:"advert_interval"`
	Preempt        *bool       `yaml:"preempt,omitempty"`
	PreemptDelay   string      `yaml:"preempt_delay,omitempty"`
	Unicast        *outUnicast `yaml:"unicast,omitempty"`
	VIPs           []string    `yaml:"vips"`
	VIPsExcluded   []string    `yaml:"vips_excluded,omitempty"`
	Routes         []outRoute  `yaml:"routes,omitempty"`
	Rules          []outRule   `yaml:"rules,omitempty"`
	VMAC           bool        `yaml:"vmac,omitempty"`
	VMACName       string      `yaml:"vmac_name,omitempty"`
	VMACXmitBase   bool        `yaml:"vmac_xmit_base,omitempty"`
	AuthPass       string      `yaml:"auth_pass,omitempty"`
	GARP           *outGARP    `yaml:"garp,omitempty"`
	outStateHooks  `yaml:",inline"`
	Track          []outTrack `yaml:"track,omitempty"`
}

// outStateHooks are an instance's or a sync group's notify commands.
type outStateHooks struct {
	Notify       string   `yaml:"notify,omitempty"`
	NotifyMaster []string `yaml:"notify_master,omitempty,flow"`
	NotifyBackup []string `yaml:"notify_backup,omitempty,flow"`
	NotifyFault  []string `yaml:"notify_fault,omitempty,flow"`
	NotifyStop   []string `yaml:"notify_stop,omitempty,flow"`
}

type outRoute struct {
	To     string `yaml:"to"`
	Via    string `yaml:"via,omitempty"`
	Dev    string `yaml:"dev,omitempty"`
	Table  int    `yaml:"table,omitempty"`
	Metric int    `yaml:"metric,omitempty"`
	Src    string `yaml:"src,omitempty"`
}

type outRule struct {
	From     string `yaml:"from,omitempty"`
	To       string `yaml:"to,omitempty"`
	Table    int    `yaml:"table"`
	Priority int    `yaml:"priority,omitempty"`
}

type outUnicast struct {
	Source string   `yaml:"source,omitempty"`
	Peers  []string `yaml:"peers"`
	Routed bool     `yaml:"routed,omitempty"`
}

type outGARP struct {
	Count    *int   `yaml:"count,omitempty"`
	Interval string `yaml:"interval,omitempty"`
	Refresh  string `yaml:"refresh,omitempty"`
}

type outIPVS struct {
	Sync *outSync `yaml:"sync,omitempty"`
}

type outSync struct {
	Interface string `yaml:"interface"`
	SyncID    int    `yaml:"sync_id"`
	Instance  string `yaml:"instance,omitempty"`
}

type outService struct {
	Name           string          `yaml:"name"`
	VIP            string          `yaml:"vip,omitempty"`
	Port           int             `yaml:"port,omitempty"`
	Protocol       string          `yaml:"protocol,omitempty"`
	FWMark         int             `yaml:"fwmark,omitempty"`
	Family         int             `yaml:"family,omitempty"`
	Members        []outMember     `yaml:"members,omitempty"`
	Scheduler      string          `yaml:"scheduler"`
	SchedulerFlags []string        `yaml:"scheduler_flags,omitempty"`
	OPS            bool            `yaml:"ops,omitempty"`
	Forwarding     string          `yaml:"forwarding"`
	Tunnel         *outTunnel      `yaml:"tunnel,omitempty,flow"`
	Persistence    *outPersistence `yaml:"persistence,omitempty"`
	SorryServer    string          `yaml:"sorry_server,omitempty"`
	QuorumUp       []string        `yaml:"quorum_up,omitempty,flow"`
	QuorumDown     []string        `yaml:"quorum_down,omitempty,flow"`
	Quorum         int             `yaml:"quorum,omitempty"`
	Hysteresis     int             `yaml:"hysteresis,omitempty"`
	OnFailure      string          `yaml:"on_failure,omitempty"`
	// Checks are config's own type, so that the output can only name
	// fields the loader knows.
	Checks      []config.Check  `yaml:"checks,omitempty"`
	RealServers []outRealServer `yaml:"real_servers"`

	checks []config.Check // the service-wide checks, if every real server shares them
}

// outMember is one member of a service group, written {vip: ..., port: ...}
// on one line.
type outMember struct {
	VIP    string `yaml:"vip,omitempty"`
	Port   int    `yaml:"port,omitempty"`
	FWMark int    `yaml:"fwmark,omitempty"`
}

func (m outMember) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add := func(k, v, tag string) {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v, Tag: tag})
	}
	if m.FWMark != 0 {
		add("fwmark", strconv.Itoa(m.FWMark), "!!int")
		return n, nil
	}
	add("vip", m.VIP, "!!str")
	add("port", strconv.Itoa(m.Port), "!!int")
	return n, nil
}

type outPersistence struct {
	Timeout string `yaml:"timeout"`
	Netmask string `yaml:"netmask,omitempty"`
	Engine  string `yaml:"engine,omitempty"`
}

// outTunnel is a tunnel's encapsulation, written on one line.
type outTunnel struct {
	Type     string `yaml:"type"`
	Port     int    `yaml:"port,omitempty"`
	Checksum string `yaml:"checksum,omitempty"`
}

type outRealServer struct {
	Address        string     `yaml:"address"`
	Port           int        `yaml:"port,omitempty"`
	Weight         *int       `yaml:"weight,omitempty"`
	UpperThreshold int        `yaml:"upper_threshold,omitempty"`
	LowerThreshold int        `yaml:"lower_threshold,omitempty"`
	Forwarding     string     `yaml:"forwarding,omitempty"`
	Tunnel         *outTunnel `yaml:"tunnel,omitempty,flow"`
	NotifyUp       []string   `yaml:"notify_up,omitempty,flow"`
	NotifyDown     []string   `yaml:"notify_down,omitempty,flow"`
	// Checks replace the service's; nil for none of its own.
	Checks *[]config.Check `yaml:"checks,omitempty"`

	checks []config.Check
}

// render writes out as YAML, with or without the health checks.
func render(out *outConfig, checks bool, source string) ([]byte, error) {
	doc := *out
	doc.Services = make([]outService, len(out.Services))
	for i, s := range out.Services {
		s.RealServers = slices.Clone(s.RealServers)
		if checks {
			s.Checks = s.checks
		}
		for j := range s.RealServers {
			if r := &s.RealServers[j]; checks && r.checks != nil {
				r.Checks = &r.checks
			}
		}
		doc.Services[i] = s
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# director.yaml converted from %s by director import-keepalived.\n", source)
	b.WriteString("# Read the import report before using it: it lists what was not carried over.\n\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode director.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode director.yaml: %w", err)
	}
	return b.Bytes(), nil
}
