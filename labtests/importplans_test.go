package labtests

import (
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
			"on_failure: remove", "advert_interval: 1s", "control_socket: /run/" + n + "/director.sock"} {
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
// waits for the tables ImportWant writes.
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
		for _, l := range ImportTableLabels() {
			if s, ok := stepLabelled(p, l); !ok || s.Kind != lp.KindWaitIPVS {
				t.Errorf("%s: table %q is no wait_ipvs step (%+v)", impl, l, s)
			}
		}
	}
	whole := `TCP 10.0.0.100:7 rr
  -> 10.0.0.21:7 Route 1
  -> 10.0.0.22:7 Route 1
TCP 10.0.0.100:80 rr
  -> 10.0.0.21:80 Route 1
  -> 10.0.0.22:80 Route 1
TCP 10.0.0.100:8080 rr
  -> 10.0.0.21:8080 Route 1
  -> 10.0.0.22:8080 Route 1
UDP 10.0.0.100:53 rr
  -> 10.0.0.21:53 Route 1
  -> 10.0.0.22:53 Route 1
`
	if got := ImportWant(nil); got != whole {
		t.Errorf("whole table =\n%s\nwant\n%s", got, whole)
	}
	byKind := map[string]importFailure{}
	for _, f := range ImportFailures() {
		byKind[f.Kind] = f
	}
	// Without inhibit_on_failure the echo service loses rs2; with it the
	// web group keeps rs2 at weight 0 in both its members.
	echo := strings.Replace(whole, "  -> 10.0.0.22:7 Route 1\n", "", 1)
	if got := ImportWant(byKind["MISC_CHECK"].Dests); got != echo {
		t.Errorf("MISC_CHECK table =\n%s\nwant\n%s", got, echo)
	}
	web := strings.NewReplacer("10.0.0.22:80 Route 1", "10.0.0.22:80 Route 0", "10.0.0.22:8080 Route 1", "10.0.0.22:8080 Route 0").Replace(whole)
	if got := ImportWant(byKind["HTTP_GET"].Dests); got != web {
		t.Errorf("HTTP_GET table =\n%s\nwant\n%s", got, web)
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
