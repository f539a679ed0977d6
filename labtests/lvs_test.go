//go:build lab

package labtests

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestLVSParityOpsDNS: the same plan (OpsDNSPlan) and the same check
// timers for keepalived and for director, in one run. The DNS service
// has ops, so one client socket spreads over both real servers; rs2's DNS
// server stops, and the failed client queries until lb1 takes it out are
// reported side by side. keepalived's UDP_CHECK retries a refused
// datagram (ICMP port unreachable) after delay_before_retry; director's
// udp check ends the round at once unless retry_refused is set, so
// director runs twice: with its default, and with retry_refused as
// keepalived behaves. The same boots show the tunnel encapsulations and
// the sip engine in ipvsadm's listings, director status printing them
// byte for byte as ipvsadm does, and keepalived's table equal to
// director's.
func TestLVSParityOpsDNS(t *testing.T) {
	type outcome struct {
		failed, total int
		out           time.Duration
		rules         string
	}
	runs := []struct {
		name  string
		impl  lp.Impl
		retry bool
	}{
		{"keepalived", lp.Keepalived, false},
		{"director", lp.Director, false},
		{"director-retry-refused", lp.Director, true},
	}
	got := map[string]outcome{}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			c := KeepalivedLikeChecks()
			c.RetryRefused = r.retry
			res := Run(t, OpsDNSPlan(name(t), CheckParams(r.impl, c)))
			checkListings(t, res)
			run := probeRun(t, res)
			failAt, _ := stepTimes(t, res, LabelFail)
			_, outAt := stepTimes(t, res, LabelOut)
			recAt, _ := stepTimes(t, res, LabelRecover)
			_, inAt := stepTimes(t, res, LabelIn)
			// One socket, both real servers: ops is on.
			checkBalanced(t, "before (one client socket)", run.Between(time.Time{}, failAt).Stats(), 50)
			during := run.Between(failAt, outAt).Stats()
			t.Logf("until rs2 was out of the DNS service (%v): %s", outAt.Sub(failAt).Round(time.Millisecond), during)
			if during.Responders[lp.RS1] == 0 {
				t.Errorf("until rs2 was out: %s, want rs1 answering", during)
			}
			checkOnly(t, "rs2 out", run.Between(outAt.Add(100*time.Millisecond), recAt).Stats(), lp.RS1, 30)
			checkBalanced(t, "after", run.Between(inAt.Add(time.Second), time.Time{}).Stats(), 30)
			got[r.name] = outcome{failed: during.Failed, total: during.Total, out: outAt.Sub(failAt), rules: execOut(t, res, LabelIpvsadmPrefix+"-Sn")}
		})
	}
	k, d := got["keepalived"], got["director"]
	if k.rules != "" && d.rules != "" && k.rules != d.rules {
		t.Errorf("ipvsadm -Sn differs between the implementations' tables:\n--- keepalived\n%s--- director\n%s", k.rules, d.rules)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nDNS over UDP with ops, rs2's DNS server stopped, one query every %v from one socket, checks every 1s, timeout 1s, 1 retry after 1s:\n", RanOn(t), lp.ProbeInterval)
	for _, r := range runs {
		o := got[r.name]
		fmt.Fprintf(&b, "  %-24s %3d of %3d queries failed, rs2 out after %v\n", r.name+":", o.failed, o.total, o.out.Round(time.Millisecond))
	}
	t.Log(b.String())
}

// checkListings: lb1's table shows the ops DNS service, the sip engine
// and every tunnel encapsulation as ipvsadm prints them, and director
// status prints each form byte for byte as ipvsadm did.
func checkListings(t *testing.T, res *Results) {
	t.Helper()
	for _, form := range ListForms {
		f := strings.Join(form, " ")
		ours, theirs := execOut(t, res, LabelStatusPrefix+f), execOut(t, res, LabelIpvsadmPrefix+f)
		if ours != theirs {
			t.Errorf("director status %s differs from ipvsadm's:\n--- director\n%s--- ipvsadm\n%s", f, ours, theirs)
		}
	}
	ln, tun, rules := execOut(t, res, LabelIpvsadmPrefix+"-Ln"), execOut(t, res, LabelIpvsadmPrefix+"-Ln --tun-info"), execOut(t, res, LabelIpvsadmPrefix+"-Sn")
	t.Logf("lb1 ipvsadm -Ln --tun-info:\n%s", tun)
	for _, re := range opsTableREs() {
		if !regexp.MustCompile(re).MatchString(ln) {
			t.Errorf("ipvsadm -Ln lacks %s:\n%s", re, ln)
		}
	}
	for _, tu := range lp.Tunnels() {
		re := `(?m)^\s+-> ` + regexp.QuoteMeta(fmt.Sprintf("%s:%d", tu.Addr, lp.TunnelPort)) + `\s+Tunnel\s+` + regexp.QuoteMeta(tu.TunInfo) + `\s`
		if !regexp.MustCompile(re).MatchString(tun) {
			t.Errorf("ipvsadm -Ln --tun-info: no %s %s", tu.Addr, tu.TunInfo)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("-A -u %s -s rr -p 60 --pe sip -o", lp.VIPService(lp.SIPPort)),
		fmt.Sprintf("-A -u %s -s rr -o", lp.VIPService(lp.DNSPort)),
		fmt.Sprintf("-a -t %s -r 10.0.0.23:%d -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum", lp.VIPService(lp.TunnelPort), lp.TunnelPort),
	} {
		if !strings.Contains(rules, want+"\n") {
			t.Errorf("ipvsadm -Sn lacks %q:\n%s", want, rules)
		}
	}
}
