package labtests

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the LVS parity plan: each listing form, printed by ipvsadm
// and by director status, at lb1 before the failure.
const (
	LabelIpvsadmPrefix = "ipvsadm " // + the form's arguments
	LabelStatusPrefix  = "status "
)

// ListForms are the listings the LVS parity plan takes of lb1's table.
var ListForms = [][]string{{"-Ln"}, {"-Ln", "--tun-info"}, {"-Sn"}}

// OpsDNSPlan is the UDP DNS service with one-packet scheduling and UDP
// checks (director's udp, keepalived's UDP_CHECK, both sending a DNS
// query), plus the LVSFeatures services (tunnel encapsulations, the sip
// engine), on whichever implementation p runs. Once lb1's table is
// complete it is listed with ipvsadm and director status; then the
// client's DNS prober (one UDP socket) runs while rs2's DNS server stops
// until lb1 takes rs2 out of the DNS service, and starts again until it
// is back.
func OpsDNSPlan(name string, p Params) Plan {
	v := *p.IPVS
	v.DNS, v.DNSOps, v.DNSUDPCheck, v.LVSFeatures = true, true, true, true
	p.IPVS = &v
	steps := ipvsStart(p)
	for _, re := range opsTableREs() {
		steps = append(steps, lb1Table(10*time.Second, re, false))
	}
	for _, form := range ListForms {
		steps = append(steps,
			ipvsadm(lp.LB1, form...).As(LabelIpvsadmPrefix+strings.Join(form, " ")),
			lp.Exec(lp.LB1, append([]string{"director", "status"}, form...)...).As(LabelStatusPrefix+strings.Join(form, " ")),
		)
	}
	up := destRE(lp.RS2, lp.DNSPort, 1, -1)
	steps = append(steps,
		lp.DNSProbeStart(),
		lp.Sleep(time.Second),
		lp.Server(lp.RS2, lp.ServerDNS, lp.ServeDown).As(LabelFail),
		lb1Table(10*time.Second, up, true).As(LabelOut),
	)
	steps = append(steps, state(p)...)
	steps = append(steps,
		lp.Sleep(time.Second),
		lp.Server(lp.RS2, lp.ServerDNS, lp.ServeUp).As(LabelRecover),
		lb1Table(10*time.Second, up, false).As(LabelIn),
		lp.Sleep(2*time.Second),
		lp.ProbeStop().As(LabelProbe),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// opsTableREs match lb1's ipvsadm -Ln once the DNS service (with ops) and
// the LVSFeatures services are complete.
func opsTableREs() []string {
	res := []string{
		`(?m)^UDP\s+` + regexp.QuoteMeta(lp.VIPService(lp.DNSPort)) + ` rr ops$`,
		destRE(lp.RS1, lp.DNSPort, 1, -1),
		destRE(lp.RS2, lp.DNSPort, 1, -1),
		`(?m)^UDP\s+` + regexp.QuoteMeta(lp.VIPService(lp.SIPPort)) + ` rr persistent 60 pe sip ops$`,
		destRE(lp.RS2, lp.SIPPort, 1, -1),
	}
	tunnels := lp.Tunnels()
	last := tunnels[len(tunnels)-1]
	return append(res, `(?m)^\s+-> `+regexp.QuoteMeta(fmt.Sprintf("%s:%d", last.Addr, lp.TunnelPort))+`\s+Tunnel\s+1\s`)
}
