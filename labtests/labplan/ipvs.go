package labplan

import (
	"errors"
	"fmt"
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
	if v.ResyncInterval < 0 || v.DrainTimeout < 0 {
		errs = append(errs, errors.New("ipvs: negative interval"))
	}
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
	if v.Sync {
		fmt.Fprintf(b, "  sync: {interface: eth0, sync_id: %d}\n", SyncID)
	}
	b.WriteString("services:\n")
	for _, s := range Services() {
		fmt.Fprintf(b, "  - name: %s\n    vip: %s\n    port: %d\n    protocol: tcp\n", s.Name, VIP4.Addr(), s.Port)
		fmt.Fprintf(b, "    scheduler: %s\n    forwarding: dr\n    real_servers:\n", v.scheduler())
		for _, rs := range v.realServers() {
			h, _ := HostByName(rs)
			fmt.Fprintf(b, "      - {address: %s}\n", h.IPv4.Addr())
		}
	}
}

// keepalivedIPVS renders virtual_server blocks (no health checks: a real
// server without a checker counts as up) and, for Sync, the sync daemon.
func keepalivedIPVS(b *strings.Builder, v *IPVS) {
	for _, s := range Services() {
		fmt.Fprintf(b, "\nvirtual_server %s %d {\n", VIP4.Addr(), s.Port)
		fmt.Fprintf(b, "    lb_algo %s\n    lb_kind DR\n    protocol TCP\n", v.scheduler())
		for _, rs := range v.realServers() {
			h, _ := HostByName(rs)
			fmt.Fprintf(b, "    real_server %s %d {\n        weight 1\n    }\n", h.IPv4.Addr(), s.Port)
		}
		b.WriteString("}\n")
	}
}
