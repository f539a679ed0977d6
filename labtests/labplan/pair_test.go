package labplan

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/pairtls"
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
		if tl := cfg.API.TLS; tl == nil || tl.KeyFile != PairDir(node)+"/"+node+".key" || cfg.API.Insecure {
			t.Errorf("%s: api.tls %+v insecure %v", node, tl, cfg.API.Insecure)
		}
		if cfg.DecisionsFile() != DecisionsFile(node) {
			t.Errorf("%s: decisions file %q", node, cfg.DecisionsFile())
		}
	}
}

// The plan's certificates are ones director loads, and each director's
// names the address its peer dials.
func TestPairFiles(t *testing.T) {
	files, err := PairFiles()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range []string{LB1, LB2} {
		m, err := pairtls.Load(pairtls.Files{Cert: filepath.Join(dir, "pair-"+node+".crt"), Key: filepath.Join(dir, "pair-"+node+".key"),
			CA: filepath.Join(dir, "pair-ca.crt")}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		host, _, _ := net.SplitHostPort(APIAddr(node))
		if err := m.Server.Certificates[0].Leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", node, err)
		}
	}
	if argv := WriteTokensArgv(LB1); !strings.Contains(argv[2], "install -m 600 /mnt/out/pair-lb1.key /run/lb1/pair/lb1.key") {
		t.Errorf("WriteTokensArgv(lb1) = %q", argv[2])
	}
}
