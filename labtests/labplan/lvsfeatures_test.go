package labplan

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/internal/kaimport"
	"github.com/director-lb/director/ipvs"
)

func lvsParams(impl Impl) Params {
	p := DefaultParams(impl)
	p.IPVS = &IPVS{DNS: true, DNSOps: true, DNSUDPCheck: true, LVSFeatures: true,
		Checks: &Checks{Interval: Duration(time.Second), Timeout: Duration(time.Second), Retries: 1, RetryDelay: Duration(time.Second), RetryRefused: true}}
	return p
}

// The LVS parity plan's two configurations ask the kernel for the same
// table: keepalived.conf, converted by director's importer, gives the
// IPVS services director's own configuration gives (ops, the sip engine,
// every real server's encapsulation), and the UDP checks send the same
// DNS query.
func TestLVSFeatureConfigsAgree(t *testing.T) {
	dcfg, body := loadDirectorConfig(t, lvsParams(Director), LB1)
	kbody, err := KeepalivedConfig(lvsParams(Keepalived), LB1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(kbody), 0o644); err != nil {
		t.Fatal(err)
	}
	out, rep, err := kaimport.ConvertWith(path, kaimport.Options{Checks: true})
	if err != nil {
		t.Fatalf("import: %v\n%v\n%s", err, rep.Findings, kbody)
	}
	kcfg, err := config.Parse("imported.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	byKey := func(cfg *config.Config) map[ipvs.ServiceKey]ipvs.Service {
		m := map[ipvs.ServiceKey]ipvs.Service{}
		for _, s := range dataplane.Services(cfg) {
			m[s.Key] = s
		}
		return m
	}
	d, k := byKey(dcfg), byKey(kcfg)
	for _, port := range []uint16{DNSPort, SIPPort, TunnelPort} {
		proto := ipvs.UDP
		if port == TunnelPort {
			proto = ipvs.TCP
		}
		key := ipvs.ServiceKey{Family: 4, Protocol: proto, Addr: VIP4.Addr(), Port: port}
		if !reflect.DeepEqual(d[key], k[key]) {
			t.Errorf("%s:\ndirector   %+v\nkeepalived %+v", key, d[key], k[key])
		}
	}
	if tun := d[ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: VIP4.Addr(), Port: TunnelPort}]; len(tun.Destinations) != len(Tunnels()) ||
		tun.Destinations[2].Encap != (ipvs.Encap{Type: ipvs.TunnelGUE, Port: 6081, Checksum: ipvs.TunnelRemoteChecksum}) {
		t.Errorf("tunnel service %+v", tun)
	}
	var dns *config.Service
	for i := range dcfg.Services {
		if dcfg.Services[i].Port == DNSPort {
			dns = &dcfg.Services[i]
		}
	}
	if dns == nil || !dns.OPS || len(dns.Checks) != 1 || dns.Checks[0].UDP == nil || dns.Checks[0].UDP.SendHex != DNSQueryHex() || !dns.Checks[0].RetryRefused {
		t.Errorf("dns service %+v\n%s", dns, body)
	}
	if !strings.Contains(kbody, "payload "+DNSQueryHex()+"\n") {
		t.Errorf("keepalived's UDP_CHECK does not send the query:\n%s", kbody)
	}
}

// DNSQueryHex is an A query for DNSName, as a DNS server parses it.
func TestDNSQueryHex(t *testing.T) {
	b, err := hex.DecodeString(DNSQueryHex())
	if err != nil {
		t.Fatal(err)
	}
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || h.Response {
		t.Fatalf("header %+v, %v", h, err)
	}
	q, err := p.Question()
	if err != nil || q.Name.String() != DNSName+"." || q.Type != dnsmessage.TypeA || q.Class != dnsmessage.ClassINET {
		t.Fatalf("question %+v, %v", q, err)
	}
	if _, err := p.Question(); err != dnsmessage.ErrSectionDone {
		t.Errorf("more than one question: %v", err)
	}
}
