package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
		conf, err := lp.ImportKeepalivedConf(n)
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
	web := []importDest{{"TCP", lp.HTTPPort, lp.HTTPPort, false}, {"TCP", lp.ImportAltPort, lp.HTTPPort, false}}
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
func importDests() []importDest {
	return []importDest{
		{"TCP", lp.HTTPPort, lp.HTTPPort, false}, {"TCP", lp.ImportAltPort, lp.HTTPPort, false},
		{"TCP", lp.EchoPort, lp.EchoPort, true}, {"UDP", lp.DNSPort, lp.DNSPort, false},
	}
}

// svcDestRE matches rs's line under the service proto VIP:port in
// ipvsadm -Ln output, at weight (any weight when weight < 0).
func svcDestRE(proto string, port int, rs string, rsPort, weight int) string {
	w := `\d+`
	if weight >= 0 {
		w = fmt.Sprint(weight)
	}
	return fmt.Sprintf(`(?m)^%s[ \t]+%s[ \t][^\n]*\n(?:[ \t]+->[^\n]*\n)*?[ \t]+-> %s[ \t]+Route[ \t]+%s[ \t]`,
		proto, regexp.QuoteMeta(lp.VIPService(port)), regexp.QuoteMeta(lp.RSAddr(rs, rsPort)), w)
}

// Labels of the import plan. Table steps (ipvsadm -Ln) are labelled
// importTable(...); the failures' steps importLabel(kind, ...).
const (
	LabelImportReady = "import-ready"  // the last wait for lb1's full table
	LabelDNSBefore   = "dns-before"    // dns_query through lb1
	LabelDNSAfter    = "dns-after"     // dns_query through lb2 after the failover
	LabelLB2Ready    = "lb2-ready"     // the last wait for lb2's full table
	tablePrefix      = "table:"        // ipvsadm -Ln steps
	TableReady       = "lb1 ready"     // lb1 once every check passed
	TableEnd         = "lb1 end"       // lb1 after every failure was repaired
	TableLB2         = "lb2 ready"     // lb2 before the failover
	TableLB2Master   = "lb2 as master" // lb2 after the failover
)

// importTable is the label of a table step.
func importTable(what string) string { return tablePrefix + what }

// importLabel labels a failure's steps: fail, out, restore, in.
func importLabel(kind, step string) string { return kind + " " + step }

// TableOut is the table label while kind's failure has rs2 out.
func TableOut(kind string) string { return "lb1 " + kind + " failed" }

// importWaitTable waits until node's table holds every destination at weight 1.
func importWaitTable(node string, d time.Duration) []Step {
	var steps []Step
	for _, dst := range importDests() {
		for _, rs := range []string{lp.RS1, lp.RS2} {
			steps = append(steps, lp.WaitExec(node, d, svcDestRE(dst.Proto, dst.SvcPort, rs, dst.RSPort, 1), "ipvsadm", "-Ln"))
		}
	}
	return steps
}

// importWait bounds each wait for the kernel table: checks run every
// second with a one-second timeout, but the guest is one shared CPU.
const importWait = 20 * time.Second

// ImportPlan runs the pair on configs (one per node) with impl: both
// start, lb1 wins and its table fills; the client requests the VIP's
// HTTP service throughout and queries its DNS service; rs2 fails each
// kind of check in turn (ImportFailures), each time lb1's table shows it
// out and, once repaired, back; then lb1 is cut off and lb2 serves.
func ImportPlan(name string, impl lp.Impl, configs map[string]string) Plan {
	p := lp.DefaultParams(impl)
	steps := startPair(p)
	ready := importWaitTable(lp.LB1, importWait)
	ready[len(ready)-1] = ready[len(ready)-1].As(LabelImportReady)
	steps = append(steps, ready...)
	steps = append(steps,
		ipvsadm(lp.LB1, "-Ln").As(importTable(TableReady)),
		lp.ProbeStart(),
		lp.DNSQuery(20, 20*time.Millisecond).As(LabelDNSBefore),
		lp.Sleep(time.Second),
	)
	for _, f := range ImportFailures() {
		var out, in []Step
		for _, d := range f.Dests {
			if d.Removed {
				out = append(out, lp.WaitExecAbsent(lp.LB1, importWait, svcDestRE(d.Proto, d.SvcPort, lp.RS2, d.RSPort, -1), "ipvsadm", "-Ln"))
			} else {
				out = append(out, lp.WaitExec(lp.LB1, importWait, svcDestRE(d.Proto, d.SvcPort, lp.RS2, d.RSPort, 0), "ipvsadm", "-Ln"))
			}
			in = append(in, lp.WaitExec(lp.LB1, importWait, svcDestRE(d.Proto, d.SvcPort, lp.RS2, d.RSPort, 1), "ipvsadm", "-Ln"))
		}
		out[len(out)-1] = out[len(out)-1].As(importLabel(f.Kind, "out"))
		in[len(in)-1] = in[len(in)-1].As(importLabel(f.Kind, "in"))
		steps = append(steps, lp.Say("rs2 fails "+f.Kind), f.Fail.As(importLabel(f.Kind, "fail")))
		steps = append(steps, out...)
		steps = append(steps,
			ipvsadm(lp.LB1, "-Ln").As(importTable(TableOut(f.Kind))),
			// rs2 stays out while it fails (the client's window for HTTP).
			lp.Sleep(time.Second),
			f.Restore.As(importLabel(f.Kind, "restore")),
		)
		steps = append(steps, in...)
	}
	// The whole table back, on both nodes, before the failover.
	steps = append(steps, importWaitTable(lp.LB1, importWait)...)
	steps = append(steps, ipvsadm(lp.LB1, "-Ln").As(importTable(TableEnd)))
	lb2 := importWaitTable(lp.LB2, importWait)
	lb2[len(lb2)-1] = lb2[len(lb2)-1].As(LabelLB2Ready)
	steps = append(steps, lb2...)
	steps = append(steps,
		ipvsadm(lp.LB2, "-Ln").As(importTable(TableLB2)),
		lp.Say("lb1 cut off"),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		// One second to settle (the client's ARP entry), one judged.
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelProbe),
		lp.DNSQuery(20, 20*time.Millisecond).As(LabelDNSAfter),
		ipvsadm(lp.LB2, "-Ln").As(importTable(TableLB2Master)),
	)
	files := lp.ImportFiles()
	return Plan{
		Name: name, Params: p, Steps: steps, Files: files, Configs: configs,
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
		labels = append(labels, TableOut(f.Kind))
	}
	return append(labels, TableEnd, TableLB2, TableLB2Master)
}
