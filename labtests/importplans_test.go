package labtests

import (
	"regexp"
	"strings"
	"testing"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestImportConfigs converts the import proof's keepalived.conf as the lab
// test does, before any boot: no errors, no warnings, and the director
// configuration loads.
func TestImportConfigs(t *testing.T) {
	got, err := ImportConfigs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{lp.LB1, lp.LB2} {
		t.Logf("%s report:\n%s", n, got.Reports[n])
		y := got.Files[lp.Director][n]
		for _, want := range []string{"members:", "type: http", "type: tcp", "type: udp", "type: ping", "type: exec",
			"on_failure: remove", "control_socket: /run/" + n + "/director.sock"} {
			if !strings.Contains(y, want) {
				t.Errorf("%s: imported director.yaml lacks %q:\n%s", n, want, y)
			}
		}
	}
	if got.Files[lp.Keepalived][lp.LB1] == got.Files[lp.Keepalived][lp.LB2] {
		t.Error("lb1 and lb2 got the same keepalived.conf; their priorities differ")
	}
}

// TestImportPlan: the plan validates, fails each kind of check once, and
// its destination patterns match ipvsadm's layout only under the right
// service.
func TestImportPlan(t *testing.T) {
	cfg, err := ImportConfigs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, impl := range []lp.Impl{lp.Keepalived, lp.Director} {
		p := ImportPlan("x", impl, cfg.Files[impl])
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", impl, err)
		}
		for _, f := range ImportFailures() {
			for _, step := range []string{"fail", "out", "restore", "in"} {
				if _, ok := stepLabelled(p, importLabel(f.Kind, step)); !ok {
					t.Errorf("%s: no step %q", impl, importLabel(f.Kind, step))
				}
			}
		}
	}
	table := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.0.21:80                 Route   1      0          0
  -> 10.0.0.22:80                 Route   0      0          0
TCP  10.0.0.100:8080 rr
  -> 10.0.0.21:80                 Route   1      0          0
  -> 10.0.0.22:80                 Route   1      0          0
`
	for _, c := range []struct {
		port, weight int
		want         bool
	}{{80, 0, true}, {80, 1, false}, {8080, 1, true}, {8080, 0, false}, {7, -1, false}} {
		re := regexp.MustCompile(svcDestRE("TCP", c.port, lp.RS2, 80, c.weight))
		if got := re.MatchString(table); got != c.want {
			t.Errorf("rs2 under :%d at weight %d: matched %t, want %t", c.port, c.weight, got, c.want)
		}
	}
}

func stepLabelled(p Plan, label string) (Step, bool) {
	for _, s := range p.Steps {
		if s.Label == label {
			return s, true
		}
	}
	return Step{}, false
}
