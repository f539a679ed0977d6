package labplan

import (
	"testing"

	"github.com/director-lb/director/internal/config"
)

// The pair settings the lab gives director are ones it accepts, pointing
// each node at the other.
// loadDirectorConfig renders node's director configuration for p and has
// director's own parser read it, so the lab never boots a guest with a
// configuration the daemon refuses. It returns the result and the text.
func loadDirectorConfig(t *testing.T, p Params, node string) (*config.Config, string) {
	t.Helper()
	body, err := DirectorConfig(p, node)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(node+".director.yaml", []byte(body))
	if err != nil {
		t.Fatalf("director rejects the lab's config for %s: %v\n%s", node, err, body)
	}
	return cfg, body
}

func TestDirectorPairConfig(t *testing.T) {
	p := DefaultParams(Director)
	p.IPVS = &IPVS{Pair: true}
	for _, node := range []string{LB1, LB2} {
		cfg, _ := loadDirectorConfig(t, p, node)
		if cfg.Node != node || cfg.API.Listen != APIAddr(node) || cfg.API.Peer != APIAddr(peer(node)) || cfg.API.PeerTokenFile != TokenFile(node, "peer") {
			t.Errorf("%s: node %q api %+v", node, cfg.Node, cfg.API)
		}
		if r := cfg.Services[0].Registration; r == nil || len(r.Prefixes) != 1 || r.Prefixes[0].String() != "10.0.0.0/24" {
			t.Errorf("%s: http registration %+v", node, r)
		}
	}
}
