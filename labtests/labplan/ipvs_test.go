package labplan

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

// TestDirectorIPVSConfigLoads renders a config with every IPVS setting and
// has director's own parser read it back, so the lab never boots a guest
// with a config the daemon rejects.
func TestDirectorIPVSConfigLoads(t *testing.T) {
	p := DefaultParams(Director)
	p.IPVS = &IPVS{ResyncInterval: Duration(time.Second), DrainTimeout: Duration(30 * time.Second), Sync: true}
	cfg, _ := loadDirectorConfig(t, p, LB2)
	ip := cfg.IPVS
	if ip.StateFile != "/run/lb2/ipvs-owned.json" || ip.ResyncInterval.D() != time.Second ||
		ip.DrainTimeout.D() != 30*time.Second || ip.Sync == nil || ip.Sync.Interface != "eth0" || ip.Sync.SyncID != SyncID {
		t.Errorf("ipvs settings = %+v (sync %+v)", ip, ip.Sync)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services, want http and echo", len(cfg.Services))
	}
	for i, want := range Services() {
		s := cfg.Services[i]
		var rs []string
		for _, r := range s.RealServers {
			rs = append(rs, netip.AddrPortFrom(r.Addr, uint16(r.Port)).String())
		}
		if s.Name != want.Name || s.Port != want.Port || s.Scheduler != "rr" || s.Forwarding != "dr" ||
			s.Addr != VIP4.Addr() || !slices.Equal(rs, []string{RSAddr(RS1, want.Port), RSAddr(RS2, want.Port)}) {
			t.Errorf("service %d = %+v (real servers %v)", i, s, rs)
		}
	}

	// Defaults are left to the daemon; one real server only.
	p.IPVS = &IPVS{RealServers: []string{RS1}}
	cfg, body := loadDirectorConfig(t, p, LB1)
	if cfg.IPVS.Sync != nil || cfg.IPVS.ResyncInterval.D() != config.DefaultResyncInterval || len(cfg.Services[0].RealServers) != 1 {
		t.Errorf("defaults: %+v, %d real servers", cfg.IPVS, len(cfg.Services[0].RealServers))
	}
	if strings.Contains(body, "resync_interval") {
		t.Errorf("zero resync interval rendered:\n%s", body)
	}
}

func TestKeepalivedIPVSConfig(t *testing.T) {
	p := DefaultParams(Keepalived)
	p.IPVS = &IPVS{Sync: true}
	got, err := KeepalivedConfig(p, LB1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"lvs_sync_daemon eth0 web id 1",
		"virtual_server 10.0.0.100 80 {", "virtual_server 10.0.0.100 7 {",
		"lb_algo rr", "lb_kind DR", "real_server 10.0.0.21 80 {", "real_server 10.0.0.22 7 {",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, got)
		}
	}
	if i, j := strings.Index(got, "lvs_sync_daemon"), strings.Index(got, "}"); i > j {
		t.Errorf("lvs_sync_daemon outside global_defs:\n%s", got)
	}
	p.IPVS = nil
	if got, _ := KeepalivedConfig(p, LB1); strings.Contains(got, "virtual_server") {
		t.Errorf("virtual_server without IPVS params:\n%s", got)
	}
}

func TestIPVSValidate(t *testing.T) {
	p := DefaultParams(Director)
	p.IPVS = &IPVS{RealServers: []string{RS1, LB2}}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `"lb2" is not a real server`) {
		t.Errorf("lb2 as a real server: %v", err)
	}
}

func TestModuleList(t *testing.T) {
	p := Plan{Params: DefaultParams(Director)}
	if got := p.ModuleList(); !slices.Equal(got, DefaultModules()) {
		t.Errorf("without IPVS: %v", got)
	}
	p.Params.IPVS = &IPVS{}
	p.Modules = []string{"veth"}
	if got := p.ModuleList(); !slices.Equal(got, []string{"veth", "ip_vs", "ip_vs_rr"}) {
		t.Errorf("with IPVS: %v", got)
	}
	if !slices.Equal(p.Modules, []string{"veth"}) {
		t.Errorf("ModuleList changed the plan's list: %v", p.Modules)
	}
}

func TestPlanValidateIPVSSteps(t *testing.T) {
	base := DefaultParams(Director)
	other := DefaultParams(Director)
	other.IPVS = &IPVS{}
	p := Plan{Params: base, Variants: map[string]Params{"v": other}, Steps: []Step{
		UseConfig(LB1, "v"),                                                        // ok
		UseConfig(LB1, "nope"),                                                     // unknown variant
		WaitExec(LB1, time.Second, "(", "true"),                                    // bad regexp
		WaitExec(LB1, 0, "x", "true"),                                              // no timeout
		ConnsOpen(0, 0),                                                            // no connections
		Status("nobody"),                                                           // unknown host
		WaitExecAbsent(LB1, time.Second, "x", "true"),                              // ok
		ConnsOpen(3, 10*time.Millisecond), ConnsCheck(), ConnsClose(), Status(LB2), // ok
	}}
	err := p.Validate()
	if err == nil {
		t.Fatal("bad plan accepted")
	}
	for _, want := range []string{"step 1", "step 2", "step 3", "step 4", "step 5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, ok := range []string{"step 0", "step 6", "step 7", "step 8", "step 9", "step 10"} {
		if strings.Contains(err.Error(), ok+" ") {
			t.Errorf("valid %s reported: %v", ok, err)
		}
	}
	keepalived := DefaultParams(Keepalived)
	bad := Plan{Params: base, Variants: map[string]Params{"k": keepalived}}
	if err := bad.Validate(); err == nil {
		t.Errorf("a variant switching implementation was accepted")
	}
}

func TestIPVSStepsJSONRoundTrip(t *testing.T) {
	p := DefaultParams(Director)
	p.IPVS = &IPVS{Sync: true, ResyncInterval: Duration(time.Second)}
	in := Plan{Name: "x", Params: p, Variants: map[string]Params{"v": p}, Steps: []Step{
		WaitExecAbsent(LB1, time.Second, "a|b", "ipvsadm", "-Ln").As("gone"),
		ConnsOpen(20, 20*time.Millisecond), UseConfig(LB2, "v"), Status(LB1, "-Ln"),
	}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Plan
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

const listing = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:7 rr
  -> 10.0.0.21:7                  Route   1      1          0
  -> 10.0.0.22:7                  Route   0      1          0
TCP  10.0.0.100:80 rr
  -> 10.0.0.21:80                 Route   1      0          128
`

const statsListing = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                     178      890        0    57311        0
  -> 10.0.0.21:80                       89      445        0    28655        0
  -> 10.0.0.22:80                       89      445        0    28656        0
`

func TestParseIPVSTable(t *testing.T) {
	tab := ParseIPVSTable(listing)
	if len(tab) != 2 {
		t.Fatalf("%d services, want 2: %+v", len(tab), tab)
	}
	echo, ok := tab.Service("TCP", VIPService(EchoPort))
	if !ok || len(echo.Dests) != 2 || echo.Fields[0] != "rr" {
		t.Fatalf("echo service = %+v, %t", echo, ok)
	}
	d, ok := echo.Dest(RSAddr(RS2, EchoPort))
	w, _ := Int(d.Fields, ColWeight)
	a, _ := Int(d.Fields, ColActiveConn)
	if !ok || d.Fields[ColForward] != "Route" || w != 0 || a != 1 {
		t.Errorf("rs2 = %+v: weight %d active %d", d, w, a)
	}
	if _, ok := tab.Service("UDP", VIPService(EchoPort)); ok {
		t.Errorf("found a UDP service that is not there")
	}
	if _, err := Int(d.Fields, 9); err == nil {
		t.Errorf("missing column: no error")
	}

	st, _ := ParseIPVSTable(statsListing).Service("TCP", VIPService(HTTPPort))
	conns, _ := Int(st.Fields, ColConns)
	out, _ := Int(st.Fields, ColOutPkts)
	in, _ := Int(st.Fields, ColInPkts)
	if conns != 178 || in != 890 || out != 0 || len(st.Dests) != 2 {
		t.Errorf("stats: conns %d in %d out %d dests %d", conns, in, out, len(st.Dests))
	}
}

func TestConnSetStats(t *testing.T) {
	cs := ConnSet{Conns: []Conn{
		{Server: "rs1", Echoed: 10, SlowestEcho: Duration(5 * time.Millisecond)},
		{Server: "rs2", Echoed: 3, Died: ms(100), Err: "read: connection reset by peer"},
		{Server: "rs2", Echoed: 7, Died: ms(300), Err: "read: connection reset by peer", SlowestEcho: Duration(400 * time.Millisecond)},
	}}
	st := cs.Stats()
	if st.Total != 3 || st.Died != 2 || st.Echoed != 20 || st.SlowestEcho != 400*time.Millisecond ||
		st.Servers["rs2"] != 2 || st.Errors["read: connection reset by peer"] != 2 {
		t.Errorf("stats = %+v", st)
	}
	if got := cs.StatsBetween(ms(200), time.Time{}).Died; got != 1 {
		t.Errorf("deaths from +200ms = %d, want 1", got)
	}
	if got := cs.StatsBetween(time.Time{}, ms(100)).Died; got != 0 {
		t.Errorf("deaths before +100ms = %d, want 0 (the end is exclusive)", got)
	}
	if s := st.String(); !strings.Contains(s, "3 connections (rs1=1 rs2=2), 2 died") {
		t.Errorf("String() = %q", s)
	}
}
