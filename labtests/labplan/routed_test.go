package labplan

import (
	"strings"
	"testing"
	"time"
)

func routedParams(announcer string) Params {
	p := DefaultParams(Director)
	p.Impl[LB3], p.Priority[LB3] = Director, 50
	on := true
	p.IPVS = &IPVS{Scheduler: "mh", SchedulerFlags: []string{"mh-port"}, Sloppy: &on, Sync: true,
		HandSync: announcer == AnnounceFRR,
		Checks:   &Checks{Interval: Duration(time.Second), Timeout: Duration(900 * time.Millisecond), Fall: 2}}
	p.Routed = &Routed{Announcer: announcer, BFD: true}
	return p
}

// TestRoutedDirectorConfig: director's parser reads each director's
// routed configuration, with its own BGP and with the FRR stand-in.
func TestRoutedDirectorConfig(t *testing.T) {
	for _, a := range []string{AnnounceDirector, AnnounceFRR} {
		p := routedParams(a)
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		for i, n := range p.LBs() {
			cfg, body := loadDirectorConfig(t, p, n)
			if len(cfg.Services) != 2 || cfg.Services[0].Scheduler != "mh" {
				t.Errorf("%s %s: services %+v\n%s", a, n, cfg.Services, body)
			}
			switch a {
			case AnnounceDirector:
				r := cfg.Routing
				if r == nil || r.ASN != uint32(65011+i) || len(r.Peers) != 1 || r.Peers[0].ASN != RouterASN ||
					r.Peers[0].BFD == nil || !r.Peers[0].BFD.Enabled || len(cfg.Instances) != 0 {
					t.Errorf("%s: routing %+v, %d instances\n%s", n, r, len(cfg.Instances), body)
				}
				if cfg.IPVS.Sync == nil {
					t.Errorf("%s: no ipvs.sync\n%s", n, body)
				}
			case AnnounceFRR:
				if cfg.Routing != nil || len(cfg.Instances) != 1 || cfg.Instances[0].Interface != VIPDevice || cfg.IPVS.Sync != nil {
					t.Errorf("%s: stand-in config\n%s", n, body)
				}
			}
		}
	}
}

// TestRoutedFRRConfigs: the router peers passively with the three
// directors with multipath across their ASes; the stand-in announces the
// VIP; BFD only when asked, at the asked multiplier.
func TestRoutedFRRConfigs(t *testing.T) {
	p := routedParams(AnnounceFRR)
	p.Routed.BFDMultiplier = 10
	files := FRRConfigs(p)
	if len(files) != 4 {
		t.Fatalf("%d FRR configs, want the router's and three stand-ins'", len(files))
	}
	r := files[FRRConfigFile(Router)]
	for _, want := range []string{"router bgp 65000", "neighbor 10.0.0.13 remote-as 65013", "neighbor 10.0.0.11 passive", "multipath-relax", "maximum-paths 8", "detect-multiplier 10", "neighbor 10.0.0.12 bfd profile fast"} {
		if !strings.Contains(r, want) {
			t.Errorf("router config lacks %q:\n%s", want, r)
		}
	}
	if d := files[FRRConfigFile(LB2)]; !strings.Contains(d, "router bgp 65012") || !strings.Contains(d, "network 10.0.0.100/32") {
		t.Errorf("lb2's stand-in:\n%s", d)
	}
	p.Routed.BFD = false
	if strings.Contains(RouterFRRConf(p), "bfd") {
		t.Error("BFD configured though off")
	}
	p.Routed.Announcer = AnnounceDirector
	if got := FRRConfigs(p); len(got) != 1 {
		t.Errorf("with director's BGP: FRR configs %v, want the router's only", got)
	}
}

func TestRoutedValidate(t *testing.T) {
	p := routedParams(AnnounceDirector)
	p.Impl[LB3] = Keepalived
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "routed mode") {
		t.Errorf("keepalived in routed plan: %v", err)
	}
	p = routedParams("bird")
	if err := p.Validate(); err == nil {
		t.Error("unknown announcer accepted")
	}
	p = routedParams(AnnounceFRR)
	if hs := HostsFor(p); len(hs) != 9 {
		t.Errorf("routed hosts: %d", len(hs))
	}
	if c, _ := HostByName(Client); c.In(p).Segment() != ClientBridge || c.In(p).IPv4 != RoutedClientIPv4 {
		t.Errorf("client in routed plans: %+v", c.In(p))
	}
}
