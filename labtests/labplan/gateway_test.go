package labplan

import (
	"strings"
	"testing"
	"time"
)

func TestSplitOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	a, b := VIP4Addr, InsideVIP4Addr
	ev := func(ms int, node, addr string, held bool) HolderEvent {
		return HolderEvent{At: at(ms), Node: node, Addr: addr, Held: held}
	}
	cases := []struct {
		name    string
		events  []HolderEvent
		end     int
		crossed time.Duration
		partial time.Duration
	}{
		{"together", []HolderEvent{
			ev(0, LB1, a, true), ev(1, LB1, b, true),
			ev(500, LB1, b, false), ev(501, LB1, a, false),
			ev(900, LB2, a, true), ev(903, LB2, b, true),
		}, 2000, 0, 3 * time.Millisecond},
		{"group did not follow", []HolderEvent{
			ev(0, LB1, a, true), ev(0, LB1, b, true),
			ev(500, LB1, b, false), ev(900, LB2, b, true),
		}, 2000, 1100 * time.Millisecond, 1500 * time.Millisecond},
		{"unsorted, open at the end", []HolderEvent{
			ev(100, LB2, a, true), ev(0, LB2, b, false),
		}, 400, 0, 300 * time.Millisecond},
		{"window", []HolderEvent{
			ev(0, LB1, a, true), ev(0, LB1, b, true),
			ev(500, LB1, b, false), ev(900, LB2, b, true), ev(1500, LB1, a, false),
		}, 2000, 0, 0},
		{"other addresses ignored", []HolderEvent{ev(0, LB1, VIP6.Addr().String(), true)}, 100, 0, 0},
	}
	for _, c := range cases {
		from := t0
		if c.name == "window" {
			// From 1200 ms to 1400 ms: crossed all along, partial since 500.
			from, c.end, c.crossed, c.partial = at(1200), 1400, 200*time.Millisecond, 200*time.Millisecond
		}
		got := SplitOf(c.events, a, b, from, at(c.end))
		if got.Crossed != c.crossed || got.Partial != c.partial {
			t.Errorf("%s: %+v, want crossed %v partial %v", c.name, got, c.crossed, c.partial)
		}
	}
}

func TestGatewayConfigs(t *testing.T) {
	for _, impl := range []Impl{Director, Keepalived} {
		p := DefaultParams(impl)
		p.Gateway = true
		p.Unicast = true
		_, body, err := ConfigFile(p, LB2)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"eth1", "10.1.0.1/24", "10.1.0.12", "10.1.0.11", SyncGroupName} {
			if !strings.Contains(body, want) {
				t.Errorf("%s config for lb2 lacks %q:\n%s", impl, want, body)
			}
		}
	}
	p := DefaultParams(Director)
	p.Gateway, p.EC2, p.Unicast = true, true, true
	if err := p.Validate(); err == nil {
		t.Error("a gateway pair with EC2 validated")
	}
}

// The gateway and VMAC configurations are ones director loads: two
// instances in one group, each on its interface; the VIPs on the macvlan.
func TestGatewayAndVMACConfigsLoad(t *testing.T) {
	p := DefaultParams(Director)
	p.Gateway = true
	cfg, _ := loadDirectorConfig(t, p, LB1)
	if len(cfg.Instances) != 2 || len(cfg.SyncGroups) != 1 || len(cfg.SyncGroups[0].Instances) != 2 {
		t.Errorf("gateway: %d instances, groups %+v", len(cfg.Instances), cfg.SyncGroups)
	}
	p = DefaultParams(Director)
	p.VMAC = true
	cfg, _ = loadDirectorConfig(t, p, LB2)
	if !cfg.Instances[0].VMAC {
		t.Error("vmac: instance without vmac")
	}
}

func TestAllowedSourcesConfigLoads(t *testing.T) {
	p := DefaultParams(Director)
	p.AllowedSources = true
	cfg, _ := loadDirectorConfig(t, p, LB1)
	if got := cfg.Instances[0].SourceAddrs; len(got) != 1 || got[0].String() != "10.0.0.12" {
		t.Errorf("lb1 allowed sources %v, want [10.0.0.12]", got)
	}
}
