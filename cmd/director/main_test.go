package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/pairtls"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("instances:\n  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}\n"), 0o600)
	code, out, errOut := runCmd("validate", "-c", good)
	if code != 0 || !strings.Contains(out, "good.yaml: ok, 1 instance(s)") {
		t.Fatalf("validate good: code %d, out %q, err %q", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("instances:\n  - name: web\n    interface: eth0\n    vrid: 300\n    priorty: 5\n    vips: [10.0.0.100]\n"), 0o600)
	code, _, errOut = runCmd("validate", "-c", bad)
	if code != 1 {
		t.Fatalf("validate bad: code %d, want 1", code)
	}
	if !strings.Contains(errOut, bad+":5: priorty: unknown field") {
		t.Errorf("stderr = %q", errOut)
	}

	code, _, errOut = runCmd("validate", "-c", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: code %d, err %q", code, errOut)
	}
}

// A setting that loads but is likely wrong is warned of, file:line: field
// first, and does not fail validate.
func TestValidateWarns(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "w.yaml")
	os.WriteFile(cfg, []byte("instances:\n  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}\n"+
		"services:\n  - name: web\n    vip: 10.0.0.100\n    port: 80\n    scheduler: mh\n    real_servers: [{address: 10.0.0.21}]\n"), 0o600)
	code, out, errOut := runCmd("validate", "-c", cfg)
	if code != 0 || !strings.Contains(out, "w.yaml: ok, 1 instance(s), 1 service(s)") {
		t.Fatalf("validate: code %d, out %q, err %q; want 0 and ok", code, out, errOut)
	}
	if want := "warning: " + cfg + ":7: services[0].scheduler: mh without mh-fallback: "; !strings.HasPrefix(errOut, want) || strings.Count(errOut, "warning: ") != 1 {
		t.Errorf("stderr = %q, want one line starting %q", errOut, want)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runCmd(); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no args: code %d, err %q", code, errOut)
	}
	if code, _, errOut := runCmd("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown: code %d, err %q", code, errOut)
	}
	if code, out, _ := runCmd("help"); code != 0 || !strings.Contains(out, "validate") {
		t.Errorf("help: code %d", code)
	}
	if code, _, errOut := runCmd("validate", "-x"); code != 2 || !strings.Contains(errOut, "usage: director validate") {
		t.Errorf("bad flag: code %d, err %q", code, errOut)
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "director ") {
		t.Errorf("version: code %d out %q", code, out)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("instances:\n  - {name: web, interface: eth0, vrid: 0, priority: 255, vips: [x]}\n"), 0o600)
	code, _, errOut := runCmd("run", "-c", bad)
	if code != 1 {
		t.Fatalf("code %d", code)
	}
	// Every error is listed, not only the first.
	for _, want := range []string{"vrid: must be 1-255", "priority: must be 1-254", `vips[0]: "x" is not an address`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestHandoverWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, cmd := range []string{"failback", "failover", "state"} {
		code, _, errOut := runCmd(cmd, "-socket", sock)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "no director daemon is running") {
			t.Errorf("%s: code %d, stderr %q; want 1 and one line", cmd, code, errOut)
		}
	}
	if code, _, _ := runCmd("failback", "-socket", sock, "a", "b"); code != 2 {
		t.Errorf("two instances: code %d", code)
	}
}

// validate reads the decision store and reports its bad entries, without
// failing: the daemon skips them, so a start must not be refused for them.
func TestValidateReportsBadDecisions(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "d.yaml")
	store := filepath.Join(dir, "decisions.json")
	os.WriteFile(cfg, []byte("instances:\n  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}\n"+
		"services:\n  - {name: web, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.21}]}\n"+
		"ipvs: {state_file: "+filepath.Join(dir, "owned.json")+"}\ndecisions: {file: "+store+"}\n"), 0o600)
	bad := []byte(`{"version":1,"decisions":[{"kind":"override","target":"10.0.0.1:80","action":"explode","at":"2026-01-01T00:00:00Z","node":"a"}]}`)
	// Where an older version kept them (beside state_file), which the
	// daemon moves from, then where they are kept now.
	for _, f := range []string{filepath.Join(dir, "overrides.json"), store} {
		os.WriteFile(f, bad, 0o600)
		code, out, errOut := runCmd("validate", "-c", cfg)
		if code != 0 || !strings.Contains(out+errOut, f) || !strings.Contains(out+errOut, "explode") {
			t.Errorf("validate: code %d, out %q, err %q; want 0 and the bad entry of %s reported", code, out, errOut, f)
		}
	}
}

// validate reads the token files as the daemon will (ExecStartPre runs it,
// so a start or reload with an unreadable one is stopped before it runs).
func TestValidateChecksTokenFiles(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "register.token")
	cfg := filepath.Join(dir, "d.yaml")
	os.WriteFile(cfg, []byte("instances:\n  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}\n"+
		"api: {listen: '127.0.0.1:9310', insecure: true, registration_token_file: "+tok+"}\n"), 0o600)
	for name, setup := range map[string]func(){
		"missing":   func() {},
		"readable":  func() { os.WriteFile(tok, []byte("register-secret-0123456789\n"), 0o644); os.Chmod(tok, 0o644) },
		"too short": func() { os.WriteFile(tok, []byte("short\n"), 0o600); os.Chmod(tok, 0o600) },
	} {
		os.Remove(tok)
		setup()
		if code, out, errOut := runCmd("validate", "-c", cfg); code != 1 || !strings.Contains(errOut, "api.registration_token_file") || !strings.Contains(errOut, tok) {
			t.Errorf("%s token file: code %d, out %q, err %q; want 1 and the file named", name, code, out, errOut)
		}
	}
	os.WriteFile(tok, []byte("register-secret-0123456789\n"), 0o600)
	os.Chmod(tok, 0o600)
	if code, out, errOut := runCmd("validate", "-c", cfg); code != 0 {
		t.Errorf("good token file: code %d, out %q, err %q", code, out, errOut)
	}
}

// validate loads the TLS files as the daemon will: a key group or others
// can read is refused, a good set passes.
func TestValidateChecksTLSFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := pairtls.WriteDir(dir, []pairtls.Node{{Name: "lb1", Hosts: []string{"127.0.0.1"}}}, time.Now(), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "d.yaml")
	os.WriteFile(cfg, []byte("instances:\n  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}\n"+
		"api:\n  listen: '127.0.0.1:9310'\n  tls: {cert_file: "+filepath.Join(dir, "lb1.crt")+", key_file: "+filepath.Join(dir, "lb1.key")+
		", ca_file: "+filepath.Join(dir, "ca.crt")+"}\n"), 0o600)
	if code, out, errOut := runCmd("validate", "-c", cfg); code != 0 {
		t.Fatalf("good TLS files: code %d, out %q, err %q", code, out, errOut)
	}
	os.Chmod(filepath.Join(dir, "lb1.key"), 0o640)
	if code, _, errOut := runCmd("validate", "-c", cfg); code != 1 || !strings.Contains(errOut, "api.tls") || !strings.Contains(errOut, "lb1.key") {
		t.Errorf("a key group can read: code %d, err %q", code, errOut)
	}
}

// pair-cert writes a CA and node files that validate and the daemon load.
func TestPairCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pair")
	code, out, errOut := runCmd("pair-cert", "-dir", dir, "lb1=10.0.0.11", "lb2=10.0.0.12,lb2.example")
	if code != 0 || !strings.Contains(out, "lb2: ") || !strings.Contains(out, "SHA-256 ") {
		t.Fatalf("pair-cert: code %d, out %q, err %q", code, out, errOut)
	}
	for _, f := range []string{"ca.crt", "ca.key", "lb1.crt", "lb1.key", "lb2.crt", "lb2.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, fi.Mode())
		}
	}
	if _, err := pairtls.Load(pairtls.Files{Cert: filepath.Join(dir, "lb2.crt"), Key: filepath.Join(dir, "lb2.key"), CA: filepath.Join(dir, "ca.crt")}, time.Now()); err != nil {
		t.Errorf("lb2's files do not load: %v", err)
	}
	if code, _, errOut := runCmd("pair-cert", "-dir", dir, "lb1=10.0.0.11"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("again: code %d, err %q", code, errOut)
	}
	if code, _, _ := runCmd("pair-cert", "-dir", dir, "lb3"); code != 2 {
		t.Errorf("NODE without address: code %d, want 2", code)
	}
}
