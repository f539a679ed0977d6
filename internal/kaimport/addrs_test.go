package kaimport

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/director-lb/director/internal/config"
)

// What keepalived does with addresses beyond one interface carries over,
// and loads with director's own loader.
func TestAddressesBeyondOneInterface(t *testing.T) {
	src := `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    use_vmac vmac51
    vmac_xmit_base
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.10/24
        192.0.2.11/24 dev eth0
        198.51.100.10/24 dev eth1 label eth1:vip
    }
    virtual_ipaddress_excluded {
        192.0.2.12/24
        2001:db8::10/64 dev eth1
    }
    virtual_routes {
        198.51.100.0/24 via 192.0.2.1
        src 192.0.2.10 to 203.0.113.0/24 dev eth0 table 100 metric 5
        default via 192.0.2.1 table 100
        blackhole 10.9.0.0/16
    }
    virtual_rules {
        from 192.0.2.10 table 100 priority 1000
        to 203.0.113.0/24 lookup 100
        from all fwmark 1 table 7
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
    }
}
`
	cfg, rep := load(t, src)
	in := cfg.Instances[0]
	if !in.VMAC || in.VMACName != "vmac51" || !in.VMACXmitBase {
		t.Errorf("vmac %v %q xmit_base %v", in.VMAC, in.VMACName, in.VMACXmitBase)
	}
	// Without a dev, VIPs go on the VMAC; dev eth0 stays on eth0.
	wantPlaced := []config.PlacedVIP{
		{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "vmac51"},
		{Prefix: netip.MustParsePrefix("192.0.2.11/24"), Dev: "eth0"},
		{Prefix: netip.MustParsePrefix("198.51.100.10/24"), Dev: "eth1"},
		{Prefix: netip.MustParsePrefix("192.0.2.12/24"), Dev: "vmac51"},
		{Prefix: netip.MustParsePrefix("2001:db8::10/64"), Dev: "eth1"},
	}
	if !slices.Equal(in.Placed, wantPlaced) {
		t.Errorf("placed %v, want %v", in.Placed, wantPlaced)
	}
	if len(in.Addresses) != 3 {
		t.Errorf("advertised %v, want the 3 of virtual_ipaddress", in.Addresses)
	}
	if in.Unicast == nil || in.Unicast.Source != "" || len(in.Unicast.PeerAddrs) != 1 {
		t.Errorf("unicast %+v, want peers and no source", in.Unicast)
	}
	if len(in.Routes) != 3 {
		t.Fatalf("routes %+v, want 3 (the blackhole skipped)", in.Routes)
	}
	if r := in.Routes[1]; r.ToPrefix != netip.MustParsePrefix("203.0.113.0/24") || r.SrcAddr != netip.MustParseAddr("192.0.2.10") || r.Dev != "eth0" || r.Table != 100 || r.Metric != 5 {
		t.Errorf("route 1 = %+v", r)
	}
	if r := in.Routes[2]; r.ToPrefix != netip.MustParsePrefix("0.0.0.0/0") || r.Table != 100 {
		t.Errorf("route 2 = %+v", r)
	}
	if len(in.Rules) != 2 || in.Rules[0].Priority != 1000 || in.Rules[1].ToPrefix != netip.MustParsePrefix("203.0.113.0/24") || in.Rules[1].Table != 100 {
		t.Errorf("rules %+v", in.Rules)
	}
	if len(cfg.Instances[1].Placed) != 0 || cfg.Instances[1].Version != 2 {
		t.Errorf("VI_2: %+v, want no VIPs at version 2", cfg.Instances[1])
	}
	for _, kw := range []string{"use_vmac", "vmac_xmit_base", "virtual_ipaddress_excluded", "unicast_peer", "unicast_src_ip"} {
		for _, f := range rep.Findings {
			if f.Keyword == kw && f.Level != Note {
				t.Errorf("still reported: %v", f)
			}
		}
	}
	var skipped []string
	for _, f := range rep.Findings {
		if f.Level == Warning && strings.Contains(f.Msg, "skipped") {
			skipped = append(skipped, f.Msg)
		}
	}
	if len(skipped) != 2 || !strings.Contains(skipped[0], "blackhole") || !strings.Contains(skipped[1], "fwmark") {
		t.Errorf("skipped: %q, want the blackhole route and the fwmark rule", skipped)
	}
}
