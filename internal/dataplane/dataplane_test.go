package dataplane

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/decisions"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/ipvs/syncd"
)

const dpConfig = `
instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
  - {name: api, interface: eth0, vrid: 52, vips: [10.0.0.101/24]}
ipvs:
  services_on_backup: %s
  resync_interval: 1h
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    scheduler: sh
    scheduler_flags: [sh-port]
    persistence: {timeout: 60s, netmask: 24}
    sorry_server: 10.0.0.30:8080
    real_servers:
      - {address: 10.0.0.21, weight: 3, upper_threshold: 50}
      - {address: 10.0.0.22, port: 8080, forwarding: tunnel}
  - name: dns
    vip: 10.0.0.101
    port: 53
    protocol: udp
    forwarding: nat
    real_servers: [{address: 10.0.0.21}]
`

func loadCfg(t *testing.T, onBackup string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("d.yaml", []byte(fmt.Sprintf(dpConfig, onBackup)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServices(t *testing.T) {
	got := Services(loadCfg(t, "true"))
	http := got[0]
	wantKey := ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	if http.Key != wantKey || http.Scheduler != "sh" || http.Flags != ipvs.FlagSchedPort {
		t.Errorf("http = %+v", http)
	}
	if !http.Persistent || http.Timeout != time.Minute || http.Netmask != 24 {
		t.Errorf("persistence = %v %v %v", http.Persistent, http.Timeout, http.Netmask)
	}
	d0, d1 := http.Destinations[0], http.Destinations[1]
	if d0.Forward != ipvs.Route || d0.Weight != 3 || d0.Port != 80 || d0.Upper != 50 {
		t.Errorf("rs1 = %+v (DSR is the default)", d0)
	}
	// Tunnelled and direct-routed packets keep the service's port, and
	// IPVS gets that port, as keepalived and ipvsadm give it; 8080 is
	// where rs2's and the sorry server's checks would go.
	if d1.Forward != ipvs.Tunnel || d1.Weight != 1 || d1.Port != 80 {
		t.Errorf("rs2 = %+v, want tunnel to port 80", d1)
	}
	if http.Sorry == nil || http.Sorry.AddrPort() != netip.MustParseAddrPort("10.0.0.30:80") {
		t.Errorf("sorry = %+v, want port 80", http.Sorry)
	}
	// NAT rewrites the port: the real server's own is kept.
	if dns := got[1]; dns.Key.Protocol != ipvs.UDP || dns.Destinations[0].Forward != ipvs.Masq || dns.Destinations[0].Port != 53 {
		t.Errorf("dns = %+v", dns)
	}
}

// ops, the persistence engine and tunnel encapsulations reach the model;
// a change of any of them is structural, never the weights-only path.
func TestServicesLVSFeatures(t *testing.T) {
	cfg, err := config.Parse("d.yaml", []byte(`
instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: sip
    vip: 10.0.0.100
    port: 5060
    protocol: udp
    ops: true
    persistence: {engine: sip}
    real_servers: [{address: 10.0.0.21}]
  - name: tunnels
    vip: 10.0.0.100
    port: 80
    forwarding: tunnel
    tunnel: {type: gue, port: 6080, checksum: csum}
    sorry_server: 10.0.0.30
    real_servers:
      - {address: 10.0.0.21}
      - {address: 10.0.0.22, tunnel: {type: gre}}
      - {address: 10.0.0.23, forwarding: dr}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := Services(cfg)
	sip, tun := got[0], got[1]
	if sip.Flags != ipvs.FlagOnePacket || !sip.Persistent || sip.PE != "sip" {
		t.Errorf("sip = %+v", sip)
	}
	gue := ipvs.Encap{Type: ipvs.TunnelGUE, Port: 6080, Checksum: ipvs.TunnelChecksumOn}
	for i, want := range []ipvs.Encap{gue, {Type: ipvs.TunnelGRE}, {}} {
		if e := tun.Destinations[i].Encap; e != want {
			t.Errorf("real server %d: %+v, want %+v", i, e, want)
		}
	}
	if tun.Sorry == nil || tun.Sorry.Forward != ipvs.Tunnel || tun.Sorry.Encap != gue {
		t.Errorf("sorry = %+v", tun.Sorry)
	}
	for _, mod := range []func(s []ipvs.Service){
		func(s []ipvs.Service) { s[0].PE = "" },
		func(s []ipvs.Service) { s[1].Destinations[1].Encap.Checksum = ipvs.TunnelChecksumOn },
	} {
		next := Services(cfg)
		mod(next)
		if ch, ok := weightsOnly(got, next); ok {
			t.Errorf("weights only: %v", ch)
		}
	}
}

// With services_on_backup: false, a service is in the kernel only while its
// instance is master here.
func TestDataplaneMasterOnly(t *testing.T) {
	cfg := loadCfg(t, "false")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	k := ipvs.NewFake()
	dp, err := New(cfg, Options{Kernel: k, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	runDataplane(t, dp)

	keys := func() []string {
		var out []string
		for _, s := range k.Snapshot() {
			out = append(out, s.Key.String())
		}
		return out
	}
	wait := func(want string) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, "kernel services "+want, func() bool { return fmt.Sprint(keys()) == want })
	}
	wait("[]")
	dp.SetMaster("web", true)
	wait("[TCP 10.0.0.100:80]")
	dp.SetMaster("api", true)
	wait("[TCP 10.0.0.100:80 UDP 10.0.0.101:53]")
	dp.SetMaster("web", false)
	wait("[UDP 10.0.0.101:53]")
	// State still shows every service, and says which are installed.
	var installed []bool
	for _, v := range dp.Table().Views {
		installed = append(installed, v.Installed)
	}
	if fmt.Sprint(installed) != "[false true]" {
		t.Errorf("installed = %v, want [false true]", installed)
	}
}

// A failing check drains its real server through the reconciler, and the
// sorry server takes over when no real server has weight.
func TestDataplaneHealth(t *testing.T) {
	var mu sync.Mutex
	code := map[string]int{}
	srv := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.WriteHeader(code[name])
		}))
		t.Cleanup(s.Close)
		mu.Lock()
		code[name] = 200
		mu.Unlock()
		return strings.TrimPrefix(s.URL, "http://")
	}
	set := func(name string, c int) { mu.Lock(); code[name] = c; mu.Unlock() }
	a1, a2 := netip.MustParseAddrPort(srv("a")), netip.MustParseAddrPort(srv("b"))
	y := fmt.Sprintf(`instances:
  - {name: web, interface: eth0, vrid: 51, vips: [127.0.0.100/32]}
ipvs: {resync_interval: 1h}
services:
  - name: http
    vip: 127.0.0.100
    port: 80
    # Two real servers on one address: only NAT keeps their ports apart.
    forwarding: nat
    sorry_server: 127.0.0.9:80
    checks: [{type: http, interval: 50ms, timeout: 40ms, rise: 1, fall: 1}]
    real_servers:
      - {address: 127.0.0.1, port: %d, weight: 5}
      - {address: 127.0.0.1, port: %d, weight: 7}
`, a1.Port(), a2.Port())
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	k := ipvs.NewFake()
	dp, err := New(cfg, Options{Kernel: k, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	runDataplane(t, dp)

	weights := func() string {
		var parts []string
		for _, s := range k.Snapshot() {
			for _, d := range s.Destinations {
				parts = append(parts, fmt.Sprintf("%d:%d", d.Port, d.Weight))
			}
		}
		return strings.Join(parts, " ")
	}
	wait := func(want string) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, "destinations "+want, func() bool { return weights() == want })
	}
	p1, p2 := a1.Port(), a2.Port()
	both := fmt.Sprintf("%d:5 %d:7", min(p1, p2), max(p1, p2))
	if p1 > p2 {
		both = fmt.Sprintf("%d:7 %d:5", p2, p1)
	}
	wait(both)
	set("a", 503)
	if p1 < p2 {
		wait(fmt.Sprintf("%d:0 %d:7", p1, p2))
	} else {
		wait(fmt.Sprintf("%d:7 %d:0", p2, p1))
	}
	// State reports each server's health and the reason.
	if got, why := dp.Status("http", a1); got != "down" || !strings.Contains(why, "503") {
		t.Errorf("status of the failed server = %q (%q), want down for its 503", got, why)
	}
	// Its check may not have run yet: unknown, but never down.
	if got, _ := dp.Status("http", a2); got != "up" && got != "unknown" {
		t.Errorf("status of the healthy server = %q, want up (or unknown before its first check)", got)
	}
	if got, _ := dp.Status("nope", a2); got != "" {
		t.Errorf("status in an unknown service = %q, want none", got)
	}
	set("b", 503)
	// Both down: weight 0 and the sorry server (port 80) in.
	testwait.Eventually(t, 5*time.Second, "the sorry server", func() bool { return strings.Contains(weights(), "80:1") })
	set("a", 200)
	set("b", 200)
	wait(both)
}

// Operator overrides change the table, persist, and come back after a restart.
func TestDataplaneOverrides(t *testing.T) {
	cfg := loadCfg(t, "true")
	dir := t.TempDir()
	cfg.IPVS.StateFile = filepath.Join(dir, "ipvs-owned.json")
	cfg.Decisions.File = filepath.Join(dir, "decisions.json")
	k := ipvs.NewFake()
	dp, err := New(cfg, Options{Kernel: k, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	dests := func(svc []ipvs.Service) string {
		var parts []string
		for _, d := range svc[0].Destinations {
			parts = append(parts, fmt.Sprintf("%s:%d", d.AddrPort(), d.Weight))
		}
		return strings.Join(parts, " ")
	}
	if got := dests(desiredNow(dp).Services); got != "10.0.0.21:80:3 10.0.0.22:80:1" {
		t.Fatalf("desired = %s", got)
	}
	for _, step := range []struct {
		target, action string
		weight         int
		want           string
	}{
		{"10.0.0.21:80", "drain", 0, "10.0.0.21:80:0 10.0.0.22:80:1"},
		{"http/10.0.0.22:8080", "disable", 0, "10.0.0.21:80:0"},
		{"10.0.0.21:80", "weight", 9, "10.0.0.21:80:9"},
		{"10.0.0.21:80", "enable", 0, "10.0.0.21:80:3"},
	} {
		if err := dp.SetOverride(step.target, step.action, step.weight); err != nil {
			t.Fatalf("%s %s: %v", step.action, step.target, err)
		}
		if got := dests(desiredNow(dp).Services); got != step.want {
			t.Errorf("after %s %s: %s, want %s", step.action, step.target, got, step.want)
		}
	}
	if err := dp.SetOverride("10.0.0.99:80", "drain", 0); err == nil {
		t.Error("override of an unknown real server accepted")
	}
	if err := dp.SetOverride("nonsense", "drain", 0); err == nil {
		t.Error("bad target accepted")
	}
	// The disable of rs2 is still in force after a restart.
	dp2, err := New(cfg, Options{Kernel: k, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp2.Close()
	if got := dests(desiredNow(dp2).Services); got != "10.0.0.21:80:3" {
		t.Errorf("after restart: %s, want rs2 still disabled", got)
	}
}

// The dataplane writes the configured IPVS sysctls on its first pass and
// again when a reload changes them.
func TestDataplaneSysctls(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	dir := t.TempDir()
	for _, n := range []string{"conn_reuse_mode", "expire_nodest_conn", "expire_quiescent_template"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dp, err := New(cfg, Options{Kernel: ipvs.NewFake(), SysctlDir: dir, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	runDataplane(t, dp)
	wait := func(name, want string) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, name+" = "+want, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return string(b) == want
		})
	}
	wait("conn_reuse_mode", "3")
	wait("expire_nodest_conn", "1")
	wait("expire_quiescent_template", "1")
	next := *cfg
	next.IPVS.Sysctl = map[string]int{"conn_reuse_mode": 1, "expire_nodest_conn": 1, "expire_quiescent_template": 1}
	if err := dp.SetConfig(&next); err != nil {
		t.Fatal(err)
	}
	wait("conn_reuse_mode", "1")
}

// fakeSync models the kernel's sync daemons: at most one per role, Ensure
// as the real client does it, and failures injected on demand.
type fakeSync struct {
	mu      sync.Mutex
	running map[syncd.Role]syncd.Config
	failN   int // the next failN calls fail, as a master still stopping would
	calls   int
	starts  []syncd.Role
}

func (f *fakeSync) Ensure(cs ...syncd.Config) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failN > 0 {
		f.failN--
		return false, errors.New("start IPVS sync daemon: file exists")
	}
	want := map[syncd.Role]syncd.Config{}
	for _, c := range cs {
		want[c.Role] = c
	}
	if maps.Equal(want, f.running) {
		return false, nil
	}
	for _, c := range cs {
		if f.running[c.Role] != c {
			f.starts = append(f.starts, c.Role)
		}
	}
	f.running = want
	return true, nil
}

func (f *fakeSync) Stop(r syncd.Role) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, r)
	return nil
}

// waitRoles waits until the running daemons' roles are want
// (comma-separated, sorted).
func (f *fakeSync) waitRoles(t *testing.T, want string) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, "sync daemons "+want, func() bool { return f.roles() == want })
}

func (f *fakeSync) roles() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for r := range f.running {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// The sync daemon's role follows mastership; a failed switch is retried
// without waiting for the resync (1h here), and a daemon stopped behind
// director's back is restarted on the next pass.
func TestDataplaneSyncDaemon(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	cfg.IPVS.Sync = &config.Sync{Interface: "eth0", SyncID: 7, Instance: "web"}
	fs := &fakeSync{}
	clock := newFakeClock()
	dp, err := New(cfg, Options{Kernel: ipvs.NewFake(), Sync: fs, Clock: clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	runDataplane(t, dp)
	wait := func(want string) { t.Helper(); fs.waitRoles(t, want) }
	wait("backup")
	// Master for a moment, as both nodes can be at start-up: the role
	// waits for the mastership to settle, so it never switches.
	dp.SetMaster("web", true)
	dp.SetMaster("web", false)
	clock.Advance(2 * syncSettle)
	dp.Poke()
	waitPass(t, dp)
	fs.mu.Lock()
	blip := slices.Contains(fs.starts, syncd.Master)
	fs.mu.Unlock()
	if blip {
		t.Fatal("a mastership of a moment started the master sync daemon")
	}
	dp.SetMaster("api", true) // not the instance sync follows
	dp.SetMaster("web", true)
	waitPass(t, dp)
	clock.Advance(syncSettle) // the mastership has lasted: the role follows
	wait("master")
	if got := fs.running[syncd.Master]; got.Interface != "eth0" || got.SyncID != 7 {
		t.Errorf("master daemon = %+v", got)
	}

	fs.mu.Lock()
	fs.failN = 2
	fs.mu.Unlock()
	dp.SetMaster("web", false)
	waitPass(t, dp)
	clock.Advance(syncSettle)
	// Only the retries get here: nothing else kicks the loop, and the
	// resync (1h) is far off.
	var waited time.Duration
	testwait.Eventually(t, 10*time.Second, "the failed switches retried", func() bool {
		if fs.roles() == "backup" {
			return true
		}
		clock.Advance(drainPoll) // the retry timer
		waited += drainPoll
		return false
	})
	if waited >= time.Hour {
		t.Errorf("the switch waited %v: the resync did it, not a retry", waited)
	}

	fs.mu.Lock()
	fs.running = nil // ipvsadm --stop-daemon backup
	fs.mu.Unlock()
	dp.Poke()
	wait("backup")
}

// A reload that shortens resync_interval re-times the drift repair: with
// the 1h of the first configuration a flushed table would stay empty.
func TestDataplaneReloadRetimesResync(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	k := ipvs.NewFake()
	clock := newFakeClock()
	dp, err := New(cfg, Options{Kernel: k, Clock: clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	runDataplane(t, dp)
	waitPass(t, dp)
	if n := len(k.Snapshot()); n != 2 {
		t.Fatalf("kernel has %d services, want 2", n)
	}
	next := *cfg
	next.IPVS.ResyncInterval = config.Duration(50 * time.Millisecond)
	if err := dp.SetConfig(&next); err != nil {
		t.Fatal(err)
	}
	waitPass(t, dp) // the kicked pass re-times the resync
	k.Flush()       // ipvsadm -C, behind director's back
	clock.Advance(50 * time.Millisecond)
	testwait.Eventually(t, 10*time.Second, "the flushed table repaired", func() bool { return len(k.Snapshot()) == 2 })
}

// A reload that adds ipvs.sync opens the sync daemon's socket and starts
// it; one that removes it stops the daemon director started.
func TestDataplaneSyncReload(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	fs := &fakeSync{}
	var dials atomic.Int32
	dial := func() (SyncDaemon, error) { dials.Add(1); return fs, nil }
	clock := newFakeClock()
	dp, err := New(cfg, Options{Kernel: ipvs.NewFake(), DialSync: dial, Clock: clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	runDataplane(t, dp)
	wait := func(want string) { t.Helper(); fs.waitRoles(t, want) }
	waitPass(t, dp)
	if n := dials.Load(); n != 0 {
		t.Fatalf("dialled the sync daemon %d times without ipvs.sync", n)
	}
	on := *cfg
	on.IPVS.Sync = &config.Sync{Interface: "eth0", SyncID: 3}
	if err := dp.SetConfig(&on); err != nil {
		t.Fatal(err)
	}
	wait("backup")
	dp.SetMaster("web", true) // the first instance, by default
	waitPass(t, dp)
	clock.Advance(syncSettle)
	wait("master")
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	wait("")
	if n := dials.Load(); n != 1 {
		t.Errorf("dialled %d times, want once", n)
	}
}

// In routed mode every director runs a master and a backup sync daemon at
// once, whatever VRRP says; a reload back to a pair keeps the one role.
func TestDataplaneSyncRouted(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	cfg.IPVS.Sync = &config.Sync{Interface: "eth0", SyncID: 9}
	routed := *cfg
	routed.Routing = &config.Routing{Mode: "table"}
	fs := &fakeSync{}
	clock := newFakeClock()
	dp, err := New(&routed, Options{Kernel: ipvs.NewFake(), Sync: fs, Clock: clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	runDataplane(t, dp)
	fs.waitRoles(t, "backup,master")
	fs.mu.Lock()
	m, b := fs.running[syncd.Master], fs.running[syncd.Backup]
	fs.mu.Unlock()
	if m.Interface != "eth0" || m.SyncID != 9 || b.Interface != "eth0" || b.SyncID != 9 {
		t.Errorf("daemons master %+v backup %+v", m, b)
	}
	dp.SetMaster("web", false) // VRRP has no say in routed mode
	waitPass(t, dp)
	if r := fs.roles(); r != "backup,master" {
		t.Errorf("roles %q after a VRRP change", r)
	}
	if err := dp.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	clock.Advance(syncSettle)
	dp.Poke()
	fs.waitRoles(t, "backup")
}

// The configuration's bounds are the store's: a max_entries the
// configuration accepts is one the store keeps.
func TestDecisionBoundsAgree(t *testing.T) {
	if config.MaxDecisionEntries != decisions.MaxEntriesLimit || config.DefaultDecisionEntries != decisions.DefaultMaxEntries {
		t.Errorf("config allows %d (default %d), the store %d (default %d)", config.MaxDecisionEntries, config.DefaultDecisionEntries,
			decisions.MaxEntriesLimit, decisions.DefaultMaxEntries)
	}
}

// An operator's decision that loses to a newer one (the peer's clock a
// little ahead) is not silently dropped: the command says what superseded
// it.
func TestOverrideSuperseded(t *testing.T) {
	cfg := loadCfg(t, "true")
	cfg.IPVS.StateFile = ""
	cfg.Decisions.File = ""
	dp, err := New(cfg, Options{Kernel: ipvs.NewFake(), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	newer := decisions.Decision{Kind: decisions.KindOverride, Target: "10.0.0.21:80", Action: decisions.ActionDisable, At: time.Now().Add(time.Minute), Node: "lb2"}
	if _, err := dp.Store().Merge([]decisions.Decision{newer}, nil); err != nil {
		t.Fatal(err)
	}
	err = dp.SetOverride("10.0.0.21:80", "enable", 0)
	if err == nil || !strings.Contains(err.Error(), "disable") || !strings.Contains(err.Error(), "lb2") {
		t.Errorf("enable under a newer disable: %v, want an error naming the disable and lb2", err)
	}
}
