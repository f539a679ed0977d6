package labplan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Ports of the lab's two IPVS services on the VIP. Every real server runs
// the lab's HTTP server on HTTPPort and an echo server on EchoPort, which
// first sends its host name and a newline, then echoes whatever it reads.
const (
	HTTPPort = 80
	EchoPort = 7
)

// IPVS are the load-balancing settings of a scenario. Both load balancers
// get the same two services (HTTP and echo on the IPv4 VIP, direct routing)
// over the same real servers.
type IPVS struct {
	// Scheduler is the IPVS scheduler; empty means rr, so that a handful
	// of requests shows both real servers.
	Scheduler string `json:"scheduler,omitempty"`
	// RealServers are host names; empty means rs1 and rs2.
	RealServers []string `json:"real_servers,omitempty"`
	// ResyncInterval and DrainTimeout are left to the daemon when zero.
	ResyncInterval Duration `json:"resync_interval,omitempty"`
	DrainTimeout   Duration `json:"drain_timeout,omitempty"`
	// Sync runs the kernel's connection sync daemon on eth0, its role
	// following VRRP mastership.
	Sync bool `json:"sync,omitempty"`
	// Checks, when set, health-check the HTTP service's real servers
	// (and the DNS service's).
	Checks *Checks `json:"checks,omitempty"`
	// SorryServer gives the HTTP service the Sorry host as its sorry
	// server, used while the live weight is below Quorum (0 = default).
	SorryServer bool `json:"sorry_server,omitempty"`
	Quorum      int  `json:"quorum,omitempty"`
	// DNS adds a UDP service on VIP:DNSPort over the same real servers.
	DNS bool `json:"dns,omitempty"`
	// DNSOps gives the DNS service one-packet scheduling (ops).
	DNSOps bool `json:"dns_ops,omitempty"`
	// DNSUDPCheck checks the DNS service with a plain UDP check sending
	// a DNS query (director's udp, keepalived's UDP_CHECK) instead of a
	// DNS check (director's dns, keepalived's DNS_CHECK).
	DNSUDPCheck bool `json:"dns_udp_check,omitempty"`
	// LVSFeatures adds two services that show IPVS features in the
	// kernel table, unchecked: TunnelPort, tunnelling to the real servers
	// and two addresses nobody holds with every encapsulation, and
	// SIPPort, UDP with ops and the sip persistence engine.
	LVSFeatures bool `json:"lvs_features,omitempty"`
	// Weights are real servers' weights by host name (1 when absent).
	Weights map[string]int `json:"weights,omitempty"`
	// Pair gives the directors the pair API (peer sync, registrations
	// into the HTTP service from the segment).
	Pair bool `json:"pair,omitempty"`
	// ExtraVIPs are further IPv4 addresses of the VRRP instance, each
	// with an HTTP service over the same real servers (reload plans add one).
	ExtraVIPs []string `json:"extra_vips,omitempty"`
	// SchedulerFlags are the services' scheduler_flags (mh-port, ...).
	SchedulerFlags []string `json:"scheduler_flags,omitempty"`
	// Sloppy, when set, writes net.ipv4.vs.sloppy_tcp through
	// ipvs.sysctl: 1 lets a director take up a TCP flow in mid-stream
	// (routed plans), 0 puts the kernel's default back.
	Sloppy *bool `json:"sloppy,omitempty"`
	// HandSync leaves the sync daemons out of director's configuration
	// even with Sync: the plan starts them by hand (routed plans with the
	// FRR stand-in run master and backup on every director, which a
	// director without routed mode would not).
	HandSync bool `json:"hand_sync,omitempty"`
}

// SyncID is the sync daemon id of the lab's pair.
const SyncID = 1

// Service is one of the lab's IPVS services as rendered into the configs.
type Service struct {
	Name string
	Port int
}

// Services are the lab's IPVS services, HTTP first.
func Services() []Service {
	return []Service{{"http", HTTPPort}, {"echo", EchoPort}}
}

func (v *IPVS) scheduler() string {
	if v.Scheduler == "" {
		return "rr"
	}
	return v.Scheduler
}

func (v *IPVS) realServers() []string {
	if len(v.RealServers) == 0 {
		return []string{RS1, RS2}
	}
	return v.RealServers
}

// Validate checks that the settings name real servers that exist.
func (v *IPVS) Validate() error {
	var errs []error
	for _, n := range v.realServers() {
		if h, ok := HostByName(n); !ok || !h.RealServer {
			errs = append(errs, fmt.Errorf("ipvs: %q is not a real server", n))
		}
	}
	if c := v.Checks; c != nil && (c.Interval <= 0 || c.Timeout <= 0 || c.Timeout > c.Interval) {
		errs = append(errs, errors.New("ipvs: checks want 0 < timeout <= interval"))
	}
	if v.ResyncInterval < 0 || v.DrainTimeout < 0 {
		errs = append(errs, errors.New("ipvs: negative interval"))
	}
	errs = append(errs, v.validateReload()...)
	return errors.Join(errs...)
}

// StateFile is node's IPVS ownership file inside the guest. /run is one
// tmpfs for every namespace, so each node needs its own path.
func StateFile(node string) string { return "/run/" + node + "/ipvs-owned.json" }

// directorIPVS renders the ipvs: and services: sections of director.yaml.
func directorIPVS(b *strings.Builder, v *IPVS, node string) {
	b.WriteString("ipvs:\n")
	fmt.Fprintf(b, "  state_file: %s\n", StateFile(node))
	if v.ResyncInterval != 0 {
		fmt.Fprintf(b, "  resync_interval: %s\n", v.ResyncInterval)
	}
	if v.DrainTimeout != 0 {
		fmt.Fprintf(b, "  drain_timeout: %s\n", v.DrainTimeout)
	}
	if v.Sync && !v.HandSync {
		fmt.Fprintf(b, "  sync: {interface: eth0, sync_id: %d}\n", SyncID)
	}
	if v.Sloppy != nil {
		on := 0
		if *v.Sloppy {
			on = 1
		}
		fmt.Fprintf(b, "  sysctl: {sloppy_tcp: %d}\n", on)
	}
	fmt.Fprintf(b, "decisions: {file: %s}\n", DecisionsFile(node))
	b.WriteString("services:\n")
	for _, s := range Services() {
		fmt.Fprintf(b, "  - name: %s\n    vip: %s\n    port: %d\n    protocol: tcp\n", s.Name, VIP4.Addr(), s.Port)
		fmt.Fprintf(b, "    scheduler: %s\n    forwarding: dr\n", v.scheduler())
		if len(v.SchedulerFlags) > 0 {
			fmt.Fprintf(b, "    scheduler_flags: [%s]\n", strings.Join(v.SchedulerFlags, ", "))
		}
		if s.Port == HTTPPort {
			if v.SorryServer {
				h, _ := HostByName(Sorry)
				fmt.Fprintf(b, "    sorry_server: %s:%d\n", h.IPv4.Addr(), HTTPPort)
			}
			if v.Quorum > 0 {
				fmt.Fprintf(b, "    quorum: %d\n", v.Quorum)
			}
			if v.Checks != nil {
				v.Checks.director(b, "http", "        http: {path: /, status: [\"200\"]}\n")
			}
			if v.Pair {
				h, _ := HostByName(LB1)
				fmt.Fprintf(b, "    registration: {allowed: [%s]}\n", h.IPv4.Masked())
			}
		}
		v.directorRealServers(b)
	}
	if v.DNS {
		fmt.Fprintf(b, "  - name: dns\n    vip: %s\n    port: %d\n    protocol: udp\n", VIP4.Addr(), DNSPort)
		fmt.Fprintf(b, "    scheduler: %s\n    forwarding: dr\n", v.scheduler())
		if v.DNSOps {
			b.WriteString("    ops: true\n")
		}
		switch {
		case v.Checks != nil && v.DNSUDPCheck:
			v.Checks.director(b, "udp", fmt.Sprintf("        udp: {send_hex: %q}\n", DNSQueryHex()))
		case v.Checks != nil:
			v.Checks.director(b, "dns", "        dns: {protocol: udp, type: A, name: "+DNSName+"}\n")
		}
		v.directorRealServers(b)
	}
	if v.LVSFeatures {
		directorFeatures(b)
	}
	for i, vip := range v.ExtraVIPs {
		fmt.Fprintf(b, "  - name: %s\n    vip: %s\n    port: %d\n    protocol: tcp\n", ExtraServiceName(i), vip, HTTPPort)
		fmt.Fprintf(b, "    scheduler: %s\n    forwarding: dr\n", v.scheduler())
		v.directorRealServers(b)
	}
	if v.Pair {
		directorPair(b, node)
	}
}

// DNSName is the name the lab's DNS servers are asked for; they answer
// any A question with their own address.
const DNSName = "lab.test"

func (v *IPVS) directorRealServers(b *strings.Builder) {
	b.WriteString("    real_servers:\n")
	for _, rs := range v.realServers() {
		h, _ := HostByName(rs)
		if w, ok := v.Weights[rs]; ok {
			fmt.Fprintf(b, "      - {address: %s, weight: %d}\n", h.IPv4.Addr(), w)
			continue
		}
		fmt.Fprintf(b, "      - {address: %s}\n", h.IPv4.Addr())
	}
}

// keepalivedIPVS renders virtual_server blocks and, for Sync, the sync
// daemon. The HTTP service gets HTTP_GET checkers and the DNS service
// DNS_CHECK or UDP_CHECK ones (with Checks); a real server without a
// checker counts as up. Sorry servers are director-only in the lab.
func keepalivedIPVS(b *strings.Builder, v *IPVS) {
	for _, s := range Services() {
		fmt.Fprintf(b, "\nvirtual_server %s %d {\n", VIP4.Addr(), s.Port)
		fmt.Fprintf(b, "    lb_algo %s\n    lb_kind DR\n    protocol TCP\n", v.scheduler())
		checked := v.Checks != nil && s.Port == HTTPPort
		if checked {
			fmt.Fprintf(b, "    delay_loop %s\n", strconv.FormatFloat(v.Checks.Interval.D().Seconds(), 'f', -1, 64))
		}
		for _, rs := range v.realServers() {
			h, _ := HostByName(rs)
			fmt.Fprintf(b, "    real_server %s %d {\n        weight %d\n", h.IPv4.Addr(), s.Port, v.weight(rs))
			if checked {
				v.Checks.keepalived(b)
			}
			b.WriteString("    }\n")
		}
		b.WriteString("}\n")
	}
	if v.DNS {
		v.keepalivedDNS(b)
	}
	if v.LVSFeatures {
		keepalivedFeatures(b)
	}
	v.keepalivedExtraVIPs(b)
}

// DNSPort is the UDP service of IPVS.DNS.
const DNSPort = 53

// Checks are the health-check settings given to the lab's services (HTTP
// checks of GET / on the HTTP service; DNS checks on the DNS service),
// rendered for director and, as HTTP_GET, for keepalived.
type Checks struct {
	Interval   Duration `json:"interval"`
	Timeout    Duration `json:"timeout"`
	Retries    int      `json:"retries,omitempty"`
	RetryDelay Duration `json:"retry_delay,omitempty"`
	Rise       int      `json:"rise,omitempty"`
	Fall       int      `json:"fall,omitempty"`
	// RetryRefused retries a refused connection (for UDP an ICMP port
	// unreachable) like any failure, as keepalived does; director's
	// default ends the round at once. Director only: keepalived always
	// retries.
	RetryRefused bool `json:"retry_refused,omitempty"`
}

// director renders a service's checks: one check of typ, with body
// (its type-specific settings) appended.
func (c *Checks) director(b *strings.Builder, typ, body string) {
	fmt.Fprintf(b, "    checks:\n      - type: %s\n        interval: %s\n        timeout: %s\n", typ, c.Interval, c.Timeout)
	if c.Retries > 0 {
		fmt.Fprintf(b, "        retries: %d\n", c.Retries)
	}
	if c.RetryDelay > 0 {
		fmt.Fprintf(b, "        retry_delay: %s\n", c.RetryDelay)
	}
	if c.Rise > 0 {
		fmt.Fprintf(b, "        rise: %d\n", c.Rise)
	}
	if c.Fall > 0 {
		fmt.Fprintf(b, "        fall: %d\n", c.Fall)
	}
	if c.RetryRefused {
		b.WriteString("        retry_refused: true\n")
	}
	b.WriteString(body)
}

// keepalivedTimers renders a checker's timers (keepalived has no rise/fall;
// its timers are whole or fractional seconds).
func (c *Checks) keepalivedTimers(b *strings.Builder) {
	secs := func(d Duration) string { return strconv.FormatFloat(d.D().Seconds(), 'f', -1, 64) }
	fmt.Fprintf(b, "            connect_timeout %s\n            retry %d\n", secs(c.Timeout), c.Retries)
	if c.RetryDelay > 0 {
		fmt.Fprintf(b, "            delay_before_retry %s\n", secs(c.RetryDelay))
	}
}

// keepalived renders the HTTP_GET checker of one real_server. keepalived
// has no rise/fall; its timers are whole or fractional seconds.
func (c *Checks) keepalived(b *strings.Builder) {
	b.WriteString("        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n")
	c.keepalivedTimers(b)
	b.WriteString("        }\n")
}
