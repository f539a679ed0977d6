package labplan

import (
	"fmt"
	"strings"

	"github.com/director-lb/director/labtests/uml"
)

// Track gives both nodes' VRRP instance keepalived's kind of tracking: a
// script, run every Interval, that fails while the node's HAProxy is gone,
// and a maintenance file that puts the node in FAULT while it holds a
// non-zero number. Both implementations get the same settings.
type Track struct {
	Interval Duration `json:"interval"`
	Fall     int      `json:"fall"`
	Rise     int      `json:"rise"`
	// Weight is added to the priority while the script fails (negative).
	Weight int `json:"weight"`
	// Maintenance adds the file track (weight 0: FAULT while non-zero).
	Maintenance bool `json:"maintenance,omitempty"`
}

// HAProxyPIDFile is where node's HAProxy keeps its pid (the guest's /run
// is one tmpfs for every namespace).
func HAProxyPIDFile(node string) string { return "/run/haproxy-" + node + ".pid" }

// MaintenanceFile is node's maintenance file.
func MaintenanceFile(node string) string { return "/run/maintenance-" + node }

// CheckScriptFile is the name, in the run directory, of node's check script.
func CheckScriptFile(node string) string { return "chk-haproxy-" + node + ".sh" }

// CheckScript is node's check: it fails when HAProxy's pid file is missing
// or names no live process. (killall -0 haproxy would see the other
// node's HAProxy too: the guest's namespaces share one process table.)
func CheckScript(node string) string {
	return fmt.Sprintf("#!/bin/sh\nkill -0 \"$(cat %s 2>/dev/null)\" 2>/dev/null\n", HAProxyPIDFile(node))
}

// checkArgv runs the check script through sh (plan files are not
// executable), from the run directory as the guest mounts it.
func checkArgv(node string) []string {
	return []string{"/bin/sh", uml.GuestOut + "/" + CheckScriptFile(node)}
}

func keepalivedTrack(b *strings.Builder, t *Track, node string) {
	fmt.Fprintf(b, "vrrp_script chk_haproxy {\n    script \"%s\"\n    interval %g\n    fall %d\n    rise %d\n    weight %d\n}\n\n",
		strings.Join(checkArgv(node), " "), t.Interval.D().Seconds(), t.Fall, t.Rise, t.Weight)
	if t.Maintenance {
		fmt.Fprintf(b, "track_file maintenance {\n    file \"%s\"\n    weight 0\n}\n\n", MaintenanceFile(node))
	}
}

func keepalivedTrackRefs(b *strings.Builder, t *Track) {
	b.WriteString("    track_script {\n        chk_haproxy\n    }\n")
	if t.Maintenance {
		b.WriteString("    track_file {\n        maintenance\n    }\n")
	}
}

func directorTrackRefs(b *strings.Builder, t *Track) {
	b.WriteString("    track:\n      - {script: chk_haproxy}\n")
	if t.Maintenance {
		b.WriteString("      - {file: maintenance}\n")
	}
}

func directorTrack(b *strings.Builder, t *Track, node string) {
	argv := checkArgv(node)
	fmt.Fprintf(b, "scripts:\n  - name: chk_haproxy\n    command: [%s]\n    interval: %s\n    fall: %d\n    rise: %d\n    weight: %d\n",
		strings.Join(argv, ", "), t.Interval.D(), t.Fall, t.Rise, t.Weight)
	if t.Maintenance {
		fmt.Fprintf(b, "track_files:\n  - name: maintenance\n    path: %s\n    weight: 0\n", MaintenanceFile(node))
	}
}

// HAProxyConfig is the HAProxy both load balancers run in front of rs1
// and rs2: it listens on every address of its namespace, port 80, so the
// master answers on the VIP.
func HAProxyConfig() string {
	rs1, _ := HostByName(RS1)
	rs2, _ := HostByName(RS2)
	return fmt.Sprintf(`global
    maxconn 1000
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind :80
    default_backend rs
backend rs
    balance roundrobin
    server rs1 %s:80
    server rs2 %s:80
`, rs1.IPv4.Addr(), rs2.IPv4.Addr())
}
