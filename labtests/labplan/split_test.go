package labplan

import (
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

// Under SplitVRRP each node's two configurations load: the services'
// without an instance, the VRRP daemon's with the instances alone, its
// rt_priority and a control socket of its own.
func TestSplitVRRPConfigs(t *testing.T) {
	p := DefaultParams(Director)
	p.Idle = &Idle{Services: 2, PerService: 2, Interval: Duration(5 * time.Second), Timeout: Duration(time.Second), Sync: true}
	p.SplitVRRP, p.RTPriority = true, 10
	for _, node := range []string{LB1, LB2} {
		main, _ := loadDirectorConfig(t, p, node)
		if len(main.Instances) != 0 || len(main.Services) != 2 || main.RTPriority != 0 {
			t.Errorf("%s services' daemon: %d instances, %d services, rt_priority %d; want 0, 2, 0",
				node, len(main.Instances), len(main.Services), main.RTPriority)
		}
		body, err := DirectorVRRPConfig(p, node)
		if err != nil {
			t.Fatal(err)
		}
		vrrp, err := config.Parse(VRRPConfigFile(node), []byte(body))
		if err != nil {
			t.Fatalf("director rejects %s: %v\n%s", VRRPConfigFile(node), err, body)
		}
		if len(vrrp.Instances) != 1 || len(vrrp.Services) != 0 || vrrp.RTPriority != 10 {
			t.Errorf("%s VRRP daemon: %d instances, %d services, rt_priority %d; want 1, 0, 10",
				node, len(vrrp.Instances), len(vrrp.Services), vrrp.RTPriority)
		}
		if vrrp.ControlSocket == main.ControlSocket {
			t.Errorf("%s: both daemons on control socket %s", node, main.ControlSocket)
		}
	}
}
