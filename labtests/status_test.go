//go:build lab

package labtests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// statusTable builds, in lb1's namespace and without any daemon, an IPVS
// table that uses every feature director status must print: TCP, UDP, SCTP,
// firewall marks (IPv4 and IPv6), an IPv6 service, many schedulers with
// their flags, persistence with masks, thresholds, and the three
// forwarding methods.
var statusTable = [][]string{
	{"-A", "-t", "10.0.0.100:80", "-s", "rr"},
	{"-a", "-t", "10.0.0.100:80", "-r", "10.0.0.21:80", "-g", "-w", "1"},
	{"-a", "-t", "10.0.0.100:80", "-r", "10.0.0.22:80", "-g", "-w", "0"},
	{"-A", "-t", "10.0.0.100:443", "-s", "wlc", "-p", "300", "-M", "255.255.255.0"},
	{"-a", "-t", "10.0.0.100:443", "-r", "10.0.0.21:443", "-m", "-x", "100", "-y", "10"},
	{"-a", "-t", "10.0.0.100:443", "-r", "10.0.0.22:8443", "-i", "-w", "65535"},
	{"-A", "-u", "10.0.0.100:53", "-s", "sh", "-b", "sh-fallback,sh-port"},
	{"-a", "-u", "10.0.0.100:53", "-r", "10.0.0.22:53", "-g", "-w", "5"},
	{"-A", "--sctp-service", "10.0.0.100:9000", "-s", "mh", "-b", "mh-port"},
	{"-a", "--sctp-service", "10.0.0.100:9000", "-r", "10.0.0.21:9000", "-g"},
	{"-A", "-f", "7", "-s", "lc"},
	{"-a", "-f", "7", "-r", "10.0.0.21:0", "-g", "-w", "3"},
	{"-A", "-f", "8", "-6", "-s", "sed", "-p", "60", "-M", "64"},
	{"-a", "-f", "8", "-6", "-r", "[fd00::21]:0", "-g"},
	{"-A", "-t", "[fd00::100]:80", "-s", "nq"},
	{"-a", "-t", "[fd00::100]:80", "-r", "[fd00::21]:80", "-g", "-w", "2"},
	{"-a", "-t", "[fd00::100]:80", "-r", "[fd00::22]:8080", "-m"},
	{"-A", "-t", "10.0.0.100:81", "-s", "lblc"},
	{"-A", "-t", "10.0.0.100:82", "-s", "lblcr"},
	{"-A", "-t", "10.0.0.100:83", "-s", "dh"},
	{"-A", "-t", "10.0.0.100:84", "-s", "fo"},
	{"-A", "-t", "10.0.0.100:85", "-s", "ovf"},
	{"-A", "-t", "10.0.0.100:86", "-s", "wrr", "-p"},
	{"-a", "-t", "10.0.0.100:86", "-r", "10.0.0.22:86", "-g", "-w", "4"},
}

// statusForms are the listings compared.
var statusForms = [][]string{
	{"-Ln"},
	{"-L", "-n"},
	{"-Ln", "--stats"},
	{"-Ln", "--rate"},
	{"-Ln", "--exact"},
	{"-Ln", "--stats", "--exact"},
	{"-Ln", "--thresholds"},
	{"-Ln", "--persistent-conn"},
	{"-Lnc"},
	{"-Ln", "--timeout"},
	{"-Ln", "-t", "10.0.0.100:443"},
	{"-Ln", "-u", "10.0.0.100:53"},
	{"-Ln", "--sctp-service", "10.0.0.100:9000"},
	{"-Ln", "-f", "7"},
	{"-Ln", "-t", "[fd00::100]:80"},
}

func statusPlan(name string) Plan {
	p := lp.DefaultParams(lp.Director)
	var steps []Step
	for i, args := range statusTable {
		steps = append(steps, ipvsadm(lp.LB1, args...).As(fmt.Sprintf("table-%d", i)))
	}
	for i, form := range statusForms {
		steps = append(steps,
			ipvsadm(lp.LB1, form...).As(fmt.Sprintf("ipvsadm-%d", i)),
			lp.Status(lp.LB1, form...).As(fmt.Sprintf("director-%d", i)))
	}
	mods := append(lp.DefaultModules(), "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc", "ip_vs_lc", "ip_vs_sh",
		"ip_vs_mh", "ip_vs_sed", "ip_vs_nq", "ip_vs_lblc", "ip_vs_lblcr", "ip_vs_dh", "ip_vs_fo", "ip_vs_ovf")
	// Every exec starts a process in UML, slow on a busy host: give the
	// many short steps room.
	return Plan{Name: name, Params: p, Steps: steps, Modules: mods, Timeout: lp.Duration(3 * time.Minute)}
}

// TestStatusMatchesIpvsadm diffs director status against the real ipvsadm
// 1.31 on the same live kernel table, form by form, byte for byte.
func TestStatusMatchesIpvsadm(t *testing.T) {
	res := Run(t, statusPlan(name(t)))
	for i := range statusTable {
		s, ok := res.Step(fmt.Sprintf("table-%d", i))
		if !ok || s.Exec == nil || s.Exec.ExitCode != 0 {
			t.Fatalf("building the table: ipvsadm %s failed: %+v\n%s", strings.Join(statusTable[i], " "), s.Exec, Diagnose(res))
		}
	}
	for i, form := range statusForms {
		want, ok1 := res.Step(fmt.Sprintf("ipvsadm-%d", i))
		got, ok2 := res.Step(fmt.Sprintf("director-%d", i))
		if !ok1 || !ok2 || want.Exec == nil || got.Exec == nil {
			t.Fatalf("form %v: no output\n%s", form, Diagnose(res))
		}
		if want.Exec.Stdout == "" {
			t.Errorf("form %v: ipvsadm printed nothing", form)
		}
		if got.Exec.Stdout != want.Exec.Stdout || got.Exec.ExitCode != want.Exec.ExitCode {
			t.Errorf("director status %s differs from ipvsadm (exit %d vs %d):\n--- ipvsadm\n%s--- director\n%s",
				strings.Join(form, " "), got.Exec.ExitCode, want.Exec.ExitCode, want.Exec.Stdout, got.Exec.Stdout)
		}
	}
}
