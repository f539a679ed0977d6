package kaimport

import (
	"strings"
	"testing"
)

// unicast_ttl below 255 says the peers are routed: carried as
// unicast.routed, which the loader accepts; 255 changes nothing.
func TestUnicastTTLRouted(t *testing.T) {
	src := `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    unicast_src_ip 10.0.0.11
    unicast_ttl 64
    unicast_peer {
        10.1.0.12
    }
    virtual_ipaddress {
        10.0.0.100/24
    }
}
`
	cfg, rep := load(t, src)
	if u := cfg.Instances[0].Unicast; u == nil || !u.Routed {
		t.Fatalf("unicast %+v, want routed", u)
	}
	if f := find(t, rep, "unicast_ttl"); f.Level != Note {
		t.Errorf("unicast_ttl finding %v", f)
	}
	cfg, _ = load(t, strings.Replace(src, "unicast_ttl 64", "unicast_ttl 255", 1))
	if cfg.Instances[0].Unicast.Routed {
		t.Error("unicast_ttl 255 made the peers routed")
	}
}
