package labplan

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestNormalizeIPVS(t *testing.T) {
	// The same table as keepalived and director might list it: services
	// and destinations in another order, other counters, other spacing.
	a := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.100:53 rr
  -> 10.0.0.22:53                 Route   0      0          3
  -> 10.0.0.21:53                 Route   1      0          9
TCP  10.0.0.100:80 rr
  -> 10.0.0.10:80                 Route   1      2          0
  -> 10.0.0.9:80                  Route   1      0          40
TCP  10.0.0.100:7 rr
`
	b := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:7 rr
TCP  10.0.0.100:80 rr
  -> 10.0.0.9:80 Route 1 0 0
  -> 10.0.0.10:80 Route 1 0 0
UDP  10.0.0.100:53 rr
  -> 10.0.0.21:53                 Route   1      0          0
  -> 10.0.0.22:53                 Route   0      0          0
`
	want := "TCP 10.0.0.100:7 rr\nTCP 10.0.0.100:80 rr\n  -> 10.0.0.9:80 Route 1\n  -> 10.0.0.10:80 Route 1\n" +
		"UDP 10.0.0.100:53 rr\n  -> 10.0.0.21:53 Route 1\n  -> 10.0.0.22:53 Route 0\n"
	if got := NormalizeIPVS(a); got != want {
		t.Errorf("NormalizeIPVS(a) =\n%s\nwant\n%s", got, want)
	}
	if NormalizeIPVS(a) != NormalizeIPVS(b) {
		t.Errorf("same tables normalise differently:\n%s\n%s", NormalizeIPVS(a), NormalizeIPVS(b))
	}
	// A weight, a scheduler or a destination that differs still shows.
	for _, c := range []string{
		strings.Replace(b, "10.0.0.22:53                 Route   0", "10.0.0.22:53                 Route   1", 1),
		strings.Replace(b, "TCP  10.0.0.100:7 rr", "TCP  10.0.0.100:7 wlc", 1),
		strings.Replace(b, "  -> 10.0.0.9:80 Route 1 0 0\n", "", 1),
	} {
		if NormalizeIPVS(c) == NormalizeIPVS(a) {
			t.Errorf("a different table normalises the same:\n%s", c)
		}
	}
}

func TestImportKeepalivedConf(t *testing.T) {
	one, err := ImportKeepalivedConf(LB1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	two, err := ImportKeepalivedConf(LB2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"virtual_server_group web {\n    10.0.0.100 80\n    10.0.0.100 8080\n}", "virtual_server group web {",
		"HTTP_GET {", "TCP_CHECK {", "UDP_CHECK {", "PING_CHECK {", "MISC_CHECK {", `misc_path "/bin/sh /mnt/out/misc-check.sh rs2"`,
		"priority 150", "advert_int 1\n", "vrrp_version 3"} {
		if !strings.Contains(one, want) {
			t.Errorf("lb1's keepalived.conf lacks %q:\n%s", want, one)
		}
	}
	// The nodes differ in their priority only.
	if strings.Replace(strings.Replace(one, "priority 150", "priority 100", 1), "lb1", "lb2", -1) != two {
		t.Errorf("lb2's keepalived.conf is not lb1's with priority 100:\n%s", two)
	}
	if _, err := ImportKeepalivedConf(RS1, time.Second); err == nil {
		t.Error("a keepalived.conf for a real server")
	}
	if _, err := ImportKeepalivedConf(LB1, 5*time.Millisecond); err == nil {
		t.Error("an advert interval VRRPv3 cannot carry accepted")
	}
	if !strings.Contains(ImportFiles()[ImportMiscScript], "misc-ok-") || ImportFiles()[MiscOKFile(RS2)] == "" {
		t.Errorf("run-directory files = %v", ImportFiles())
	}
}

// The UDP_CHECK's payload is a DNS query for the lab's name, with the id
// the check requires in the reply.
func TestImportDNSQueryHex(t *testing.T) {
	b, err := hex.DecodeString(ImportDNSQueryHex())
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.Question()
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != importDNSID || h.Response || q.Name.String() != DNSName+"." || q.Type != dnsmessage.TypeA || q.Class != dnsmessage.ClassINET {
		t.Errorf("query = %+v %+v", h, q)
	}
}

func TestServerStepValidate(t *testing.T) {
	table := "TCP 10.0.0.100:80 rr\n  -> 10.0.0.21:80 Route 1\n"
	ok := Plan{Params: DefaultParams(Director), Steps: []Step{Server(RS2, ServerDNS, ServeDown), Server(RS1, ServerEcho, ServeUp),
		WaitIPVS(LB2, time.Second, table)}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Step{Server(LB1, ServerDNS, ServeDown), Server(RS1, "ssh", ServeDown), Server(RS1, ServerEcho, ServeSlow),
		WaitIPVS(RS1, time.Second, table), WaitIPVS(LB1, 0, table), WaitIPVS(LB1, time.Second, "TCP  10.0.0.100:80 rr\n")} {
		p := Plan{Params: DefaultParams(Director), Steps: []Step{s}}
		if err := p.Validate(); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
	p := Plan{Params: DefaultParams(Director), Configs: map[string]string{RS1: "x"}}
	if err := p.Validate(); err == nil {
		t.Error("a configuration for a real server accepted")
	}
}
