package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/kaimport"
	lp "github.com/director-lb/director/labtests/labplan"
)

// The import proof: the lab's keepalived.conf (lp.ImportKeepalivedConf)
// runs under keepalived, and what director import-keepalived makes of it
// runs under director, through the same plan. The test compares lb1's
// ipvsadm -Ln at each labelled table step between the two runs.

// ImportedConfigs are the configuration files of both runs by
// implementation and node, and the importer's report on each node's file.
type ImportedConfigs struct {
	Files   map[lp.Impl]map[string]string
	Reports map[string]string
}

// ImportConfigs writes each node's keepalived.conf into dir and converts
// it with the importer, as `director import-keepalived` does. The lab's
// own paths (lp.ImportRuntime) are added to each result, which must then
// load. It fails on any finding above a note: the lab's keepalived.conf
// uses only what director carries over.
func ImportConfigs(dir string) (ImportedConfigs, error) {
	out := ImportedConfigs{Files: map[lp.Impl]map[string]string{lp.Keepalived: {}, lp.Director: {}}, Reports: map[string]string{}}
	for _, n := range []string{lp.LB1, lp.LB2} {
		conf, err := lp.ImportKeepalivedConf(n, ImportAdvert)
		if err != nil {
			return out, err
		}
		path := filepath.Join(dir, n+".keepalived.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return out, fmt.Errorf("write %s: %w", path, err)
		}
		data, rep, err := kaimport.ConvertWith(path, kaimport.Options{Checks: true, ConfigID: n})
		var b strings.Builder
		if werr := rep.Write(&b); werr != nil {
			return out, werr
		}
		out.Reports[n] = b.String()
		if err != nil {
			return out, fmt.Errorf("import %s: %w\n%s", n, err, b.String())
		}
		if w := rep.Count(kaimport.Warning); w > 0 {
			return out, fmt.Errorf("import %s: %d warnings: director would behave differently\n%s", n, w, b.String())
		}
		yaml := string(data) + lp.ImportRuntime(n)
		if _, err := config.Parse(n+".director.yaml", []byte(yaml)); err != nil {
			return out, fmt.Errorf("imported %s with the lab's paths does not load: %w", n, err)
		}
		out.Files[lp.Keepalived][n], out.Files[lp.Director][n] = conf, yaml
	}
	return out, nil
}

// importFailure is one way the import plan makes rs2 fail a kind of
// check, and the services whose table shows it.
type importFailure struct {
	Kind          string // the keepalived checker failed: HTTP_GET, ...
	Fail, Restore Step
	Dests         []importDest
}

// importDest is rs2's destination in one service: Removed (no
// inhibit_on_failure) or at weight 0 while it fails.
type importDest struct {
	Proto           string
	SvcPort, RSPort int
	Removed         bool
}

// ImportFailures are the failures the plan goes through, one kind of
// check at a time, all on rs2.
func ImportFailures() []importFailure {
	sysctl := func(v string) Step {
		return lp.Exec(lp.RS2, "sysctl", "-w", "net.ipv4.icmp_echo_ignore_all="+v)
	}
	okFile := guestFile(lp.MiscOKFile(lp.RS2))
	web := []importDest{{"TCP", lp.HTTPPort, lp.HTTPPort, false}, {"TCP", lp.ImportAltPort, lp.ImportAltPort, false}}
	echo := []importDest{{"TCP", lp.EchoPort, lp.EchoPort, true}}
	dns := []importDest{{"UDP", lp.DNSPort, lp.DNSPort, false}}
	return []importFailure{
		{"HTTP_GET", lp.Serve(lp.RS2, lp.ServeDown, 0), lp.Serve(lp.RS2, lp.ServeUp, 0), web},
		{"TCP_CHECK", lp.Server(lp.RS2, lp.ServerEcho, lp.ServeDown), lp.Server(lp.RS2, lp.ServerEcho, lp.ServeUp), echo},
		{"UDP_CHECK", lp.Server(lp.RS2, lp.ServerDNS, lp.ServeDown), lp.Server(lp.RS2, lp.ServerDNS, lp.ServeUp), dns},
		{"PING_CHECK", sysctl("1"), sysctl("0"), dns},
		{"MISC_CHECK", lp.Exec("", "rm", okFile), lp.Exec("", "touch", okFile), echo},
	}
}

// guestFile is name's path in the guest's view of the run directory.
func guestFile(name string) string { return guestOut + "/" + name }

// importDests are every destination of the import proof's services.
// Direct-routed destinations carry the virtual service's port in IPVS
// (keepalived programs them so): the group's real servers, port 80 in
// keepalived.conf, are rs:8080 under VIP:8080.
func importDests() []importDest {
	return []importDest{
		{"TCP", lp.HTTPPort, lp.HTTPPort, false}, {"TCP", lp.ImportAltPort, lp.ImportAltPort, false},
		{"TCP", lp.EchoPort, lp.EchoPort, true}, {"UDP", lp.DNSPort, lp.DNSPort, false},
	}
}

// ImportWant is the table, as lp.FormatIPVS writes it, that a node shows
// with rs2 failing in the services of failed: removed there, or at weight
// 0 (inhibit_on_failure). Every other destination is at weight 1.
func ImportWant(failed []importDest) string {
	var t lp.IPVSTable
	for _, d := range importDests() {
		svc := lp.IPVSService{Proto: d.Proto, Addr: lp.VIPService(d.SvcPort), Fields: []string{"rr"}}
		for _, rs := range []string{lp.RS1, lp.RS2} {
			w := "1"
			if rs == lp.RS2 && slices.Contains(failed, d) {
				if d.Removed {
					continue
				}
				w = "0"
			}
			svc.Dests = append(svc.Dests, lp.IPVSDest{Addr: lp.RSAddr(rs, d.RSPort), Fields: []string{"Route", w}})
		}
		t = append(t, svc)
	}
	return lp.FormatIPVS(t)
}

// Labels of the import plan. The labelled wait_ipvs steps' outputs are
// the tables the two runs must agree on (ImportTableLabels).
const (
	LabelDNSBefore = "dns-before"    // dns_query through lb1
	LabelDNSAfter  = "dns-after"     // dns_query through lb2 after the failover
	TableReady     = "lb1 ready"     // lb1 once every check passed
	TableLB2       = "lb2 ready"     // lb2 before the failover
	TableLB2Master = "lb2 as master" // lb2 after the failover
)

// importLabel labels a failure's steps: fail, out (lb1's table with rs2
// out), restore, in (lb1's table whole again).
func importLabel(kind, step string) string { return kind + " " + step }

// importWait bounds each wait for the kernel table: checks run every
// second or three with a one-second (three-second) timeout, but the guest
// is one CPU of a shared host.
const importWait = 30 * time.Second

// ImportAdvert is the import proof's VRRP advert interval: one second, so
// that a guest stalled for a few hundred milliseconds on a loaded host
// does not make lb2 take over (at 100 ms it did, many times: see
// TestKeepalivedImport).
const ImportAdvert = time.Second

// ImportPlan runs the pair on configs (one per node) with impl: both
// start, lb1 wins and its table fills; the client requests the VIP's
// HTTP service throughout and queries its DNS service; rs2 fails each
// kind of check in turn (ImportFailures), each time lb1's table shows it
// out and, once repaired, back; then lb1 is cut off and lb2 serves. Every
// table is waited for exactly (ImportWant), so both runs pass only with
// the same tables.
func ImportPlan(name string, impl lp.Impl, configs map[string]string) Plan {
	p := lp.DefaultParams(impl)
	p.Advert = lp.Duration(ImportAdvert)
	whole := ImportWant(nil)
	// Generous: a daemon takes seconds to start in a loaded guest.
	steps := []Step{
		lp.Start(lp.LB1), lp.Start(lp.LB2),
		lp.WaitVIP(lp.LB1, importWait).As(LabelElected),
		lp.WaitIPVS(lp.LB1, importWait, whole).As(TableReady),
		lp.ProbeStart(),
		lp.DNSQuery(20, 20*time.Millisecond).As(LabelDNSBefore),
		lp.Sleep(time.Second),
	}
	for _, f := range ImportFailures() {
		steps = append(steps,
			lp.Say("rs2 fails "+f.Kind),
			f.Fail.As(importLabel(f.Kind, "fail")),
			lp.WaitIPVS(lp.LB1, importWait, ImportWant(f.Dests)).As(importLabel(f.Kind, "out")),
			// rs2 stays out while it fails (the client's window for HTTP).
			lp.Sleep(time.Second),
			f.Restore.As(importLabel(f.Kind, "restore")),
			lp.WaitIPVS(lp.LB1, importWait, whole).As(importLabel(f.Kind, "in")),
		)
	}
	steps = append(steps,
		lp.WaitIPVS(lp.LB2, importWait, whole).As(TableLB2),
		lp.Say("lb1 cut off"),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, 15*time.Second).As(LabelTakeover),
		// One second to settle (the client's ARP entry), one judged.
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelProbe),
		lp.DNSQuery(20, 20*time.Millisecond).As(LabelDNSAfter),
		lp.WaitIPVS(lp.LB2, importWait, whole).As(TableLB2Master),
	)
	return Plan{
		Name: name, Params: p, Steps: steps, Files: lp.ImportFiles(), Configs: configs,
		// Params has no IPVS of the lab's own: the services are the
		// configuration's, so the plan loads IPVS itself.
		Modules: append(lp.DefaultModules(), lp.IPVSModules()...),
	}
}

// ImportTableLabels are the table steps both runs must agree on, in plan
// order.
func ImportTableLabels() []string {
	labels := []string{TableReady}
	for _, f := range ImportFailures() {
		labels = append(labels, importLabel(f.Kind, "out"), importLabel(f.Kind, "in"))
	}
	return append(labels, TableLB2, TableLB2Master)
}
