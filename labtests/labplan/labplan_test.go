package labplan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func sample(atMS int, ok bool, from string) Sample {
	s := Sample{At: ms(atMS), Took: Duration(2 * time.Millisecond), OK: ok, From: from}
	if !ok {
		s.Took, s.Err = Duration(100*time.Millisecond), "dial: i/o timeout"
	}
	return s
}

func TestStatsLongestOutage(t *testing.T) {
	run := ProbeRun{Start: ms(0), Stop: ms(1000), Samples: []Sample{
		sample(0, true, "lb1"),
		sample(10, false, ""), sample(110, true, "lb1"), // 100 ms outage
		sample(120, false, ""), sample(220, false, ""), sample(320, false, ""),
		sample(420, true, "lb2"), // 300 ms outage
		sample(430, true, "lb2"),
	}}
	st := run.Stats()
	if st.Total != 8 || st.Failed != 4 {
		t.Errorf("total/failed = %d/%d, want 8/4", st.Total, st.Failed)
	}
	if st.LongestOutage != 300*time.Millisecond || !st.OutageFrom.Equal(ms(120)) || !st.Recovered {
		t.Errorf("longest outage = %v from %v recovered %t, want 300ms from +120ms, recovered",
			st.LongestOutage, st.OutageFrom.Sub(t0), st.Recovered)
	}
	if want := map[string]int{"lb1": 2, "lb2": 2}; !reflect.DeepEqual(st.Responders, want) {
		t.Errorf("responders = %v, want %v", st.Responders, want)
	}
	if st.Responder() != "" {
		t.Errorf("Responder() = %q with two responders, want empty", st.Responder())
	}
}

func TestStatsUnrecoveredOutageRunsToItsLastRequest(t *testing.T) {
	run := ProbeRun{Start: ms(0), Stop: ms(1000), Samples: []Sample{
		sample(0, true, "lb1"), sample(500, false, ""), sample(600, false, ""),
	}}
	// The last request ended at +700ms; the stop came 300 ms later, with
	// nothing sent meanwhile.
	st := run.Stats()
	if st.LongestOutage != 200*time.Millisecond || st.Recovered {
		t.Errorf("outage = %v recovered %t, want 200ms not recovered", st.LongestOutage, st.Recovered)
	}
	if !strings.Contains(st.String(), "NOT recovered") {
		t.Errorf("String() = %q, want it to say the outage did not end", st)
	}
	// A window that ends while the last request is under way cuts the
	// outage there.
	if st := run.Between(ms(0), ms(650)).Stats(); st.LongestOutage != 150*time.Millisecond || st.Recovered {
		t.Errorf("cut at +650ms: outage = %v recovered %t, want 150ms not recovered", st.LongestOutage, st.Recovered)
	}
}

func TestBetween(t *testing.T) {
	run := ProbeRun{Start: ms(0), Stop: ms(100), Samples: []Sample{
		sample(0, true, "a"), sample(10, true, "b"), sample(20, true, "c"), sample(30, true, "d"),
	}}
	got := run.Between(ms(10), ms(30))
	if len(got.Samples) != 2 || got.Samples[0].From != "b" || got.Samples[1].From != "c" {
		t.Errorf("Between(10,30) = %+v, want samples b and c", got.Samples)
	}
	if open := run.Between(ms(20), time.Time{}); len(open.Samples) != 2 || !open.Stop.Equal(ms(100)) {
		t.Errorf("Between(20, zero) = %d samples stop %v, want 2 samples to the run's stop", len(open.Samples), open.Stop)
	}
}

func TestHoldersAt(t *testing.T) {
	v := VIP4Addr
	ev := []HolderEvent{
		{At: ms(0), Node: LB1, Addr: v}, {At: ms(0), Node: LB2, Addr: v},
		{At: ms(100), Node: LB1, Addr: v, Held: true},
		{At: ms(200), Node: LB2, Addr: v, Held: true},
		{At: ms(250), Node: LB2, Addr: "fd00::100", Held: true},
		{At: ms(300), Node: LB2, Addr: v, Held: false},
	}
	cases := []struct {
		at   int
		want []string
	}{{50, nil}, {100, []string{LB1}}, {200, []string{LB1, LB2}}, {300, []string{LB1}}}
	for _, c := range cases {
		if got := HoldersAt(ev, v, ms(c.at)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("HoldersAt(+%dms) = %v, want %v", c.at, got, c.want)
		}
	}
	r := &Results{VIP: ev, Finished: ms(400)}
	if got := r.FinalHolders(); !reflect.DeepEqual(got, []string{LB1}) {
		t.Errorf("FinalHolders = %v, want [lb1]", got)
	}
	if got := r.VIPChanges(ms(150), ms(400)); len(got) != 2 {
		t.Errorf("VIPChanges = %v, want the two IPv4 events after 150ms", got)
	}
}

func TestKeepalivedConfig(t *testing.T) {
	p := DefaultParams(Keepalived)
	p.Unicast = true
	got, err := KeepalivedConfig(p, LB2)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"vrrp_version 3", "state BACKUP", "interface eth0", "virtual_router_id 51",
		"priority 100", "advert_int 0.1", "unicast_src_ip 10.0.0.12",
		"unicast_peer {\n        10.0.0.11\n    }", "10.0.0.100/24 dev eth0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "nopreempt") {
		t.Errorf("nopreempt with preempt on:\n%s", got)
	}

	p = DefaultParams(Keepalived)
	p.Version, p.Advert, p.Preempt = 2, Duration(time.Second), false
	got, _ = KeepalivedConfig(p, LB1)
	for _, want := range []string{"advert_int 1\n", "nopreempt", "priority 150"} {
		if !strings.Contains(got, want) {
			t.Errorf("v2 keepalived.conf lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"vrrp_version", "unicast"} {
		if strings.Contains(got, bad) {
			t.Errorf("v2 multicast keepalived.conf has %q:\n%s", bad, got)
		}
	}
}

func TestDirectorConfig(t *testing.T) {
	p := DefaultParams(Director)
	p.Advert = Duration(20 * time.Millisecond)
	p.Unicast = true
	got, err := DirectorConfig(p, LB1)
	if err != nil {
		t.Fatal(err)
	}
	want := `log_level: debug
control_socket: /run/lb1/director.sock
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    version: 3
    advert_interval: 20ms
    preempt: true
    unicast:
      source: 10.0.0.11
      peers: [10.0.0.12]
    vips: [10.0.0.100/24]
`
	if got != want {
		t.Errorf("director.yaml:\n%s\nwant:\n%s", got, want)
	}
	if _, err := DirectorConfig(p, RS1); err == nil {
		t.Errorf("config for a real server: no error")
	}
}

func TestDaemonArgv(t *testing.T) {
	paths := Paths{Out: "/mnt/out", DirectorBin: "/x/director"}
	got, err := DaemonArgv(Node{Name: LB1, Impl: Director, Config: "lb1.director.yaml"}, paths)
	if err != nil || strings.Join(got, " ") != "/x/director run -c /mnt/out/lb1.director.yaml" {
		t.Errorf("director argv = %q, %v", got, err)
	}
	got, err = DaemonArgv(Node{Name: LB2, Impl: Keepalived, Config: "k.conf"}, paths)
	if err != nil || got[0] != "keepalived" || !strings.Contains(strings.Join(got, " "), "-f /mnt/out/k.conf -p /run/lb2/keepalived.pid") {
		t.Errorf("keepalived argv = %q, %v", got, err)
	}
	if _, err := DaemonArgv(Node{Name: LB1, Impl: Director}, Paths{}); err == nil {
		t.Errorf("director without a binary: no error")
	}
}

func TestParamsValidate(t *testing.T) {
	ok := DefaultParams(Director)
	if err := ok.Validate(); err != nil {
		t.Errorf("default params: %v", err)
	}
	bad := []func(*Params){
		func(p *Params) { p.Version = 2 },                                      // 100ms in v2
		func(p *Params) { p.Advert = Duration(15 * time.Millisecond) },         // not centiseconds
		func(p *Params) { p.Version = 4 },                                      // no such version
		func(p *Params) { p.Priority = map[string]int{LB1: 255, LB2: 100} },    // owner priority
		func(p *Params) { p.Impl = map[string]Impl{LB1: "bird", LB2: "bird"} }, // unknown impl
	}
	for i, f := range bad {
		p := DefaultParams(Director)
		p.Priority = map[string]int{LB1: 150, LB2: 100}
		f(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("case %d: invalid params accepted: %+v", i, p)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	p := Plan{Params: DefaultParams(Keepalived), Steps: []Step{
		Start(LB1), Signal(LB1, "USR1"), Cut("nobody"), Exec(""), {Kind: "dance"}, WaitVIP(RS1, time.Second),
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
	if strings.Contains(err.Error(), "step 0") {
		t.Errorf("valid step 0 reported: %v", err)
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	in := Plan{Name: "x", Params: DefaultParams(Director), Timeout: Duration(20 * time.Second),
		Steps: []Step{WaitVIP(LB1, 1500*time.Millisecond).As("elected"), Say("hi").Tolerant()}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"duration":"1.5s"`) {
		t.Errorf("durations not human readable: %s", b)
	}
	var out Plan
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestHoldingOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ev := func(s float64, node string, held bool) HolderEvent {
		return HolderEvent{At: at(s), Node: node, Addr: VIP4Addr, Held: held}
	}
	events := []HolderEvent{
		ev(0, LB1, true),
		ev(2, LB2, true), // both from 2 s
		ev(5, LB2, false),
		ev(6, LB1, false), // none from 6 s
		ev(7, LB2, true),
		ev(8, LB1, true), // both from 8 s to the end (10 s)
		{At: at(3), Node: LB1, Addr: "10.9.9.9", Held: false}, // another address: ignored
	}
	got := HoldingOf(events, VIP4Addr, at(1), at(10))
	want := Holding{None: time.Second, Many: 5 * time.Second, LongestMany: 3 * time.Second}
	if got != want {
		t.Errorf("HoldingOf = %+v, want %+v", got, want)
	}
	// A window inside one split: all of it, and events before it set the state.
	if got := HoldingOf(events, VIP4Addr, at(3), at(4)); got.Many != time.Second || got.LongestMany != time.Second {
		t.Errorf("window inside the split: %+v, want 1 s of it", got)
	}
}
