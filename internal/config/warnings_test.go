package config

import (
	"strings"
	"testing"
)

// sh and mh keep a drained (weight 0) real server's place in the hash;
// without the fallback flag the kernel refuses the flows that hash to it.
func TestHashFallbackWarning(t *testing.T) {
	const vrrp = `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.21}]
`
	const routed = `routing: {mode: table, vips: [10.0.0.100], table: 100}
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.21}]
`
	const mark = `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: web
    fwmark: 5
    instance: web
    real_servers: [{address: 10.0.0.21, port: 80}]
`
	const group = `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: web
    members: [{vip: 10.0.0.100, port: 80}, {fwmark: 5}]
    real_servers: [{address: 10.0.0.21, port: 80}]
`
	for _, tc := range []struct {
		name, yaml string
		field      string // "" for no warning
		line       int
	}{
		{"mh without flags", vrrp + "    scheduler: mh\n", "services[0].scheduler", 8},
		{"mh with mh-port only", vrrp + "    scheduler: mh\n    scheduler_flags: [mh-port]\n", "services[0].scheduler_flags", 9},
		{"sh drain explicit", vrrp + "    on_failure: drain\n    scheduler: sh\n", "services[0].scheduler", 9},
		{"fwmark mh", mark + "    scheduler: mh\n", "services[0].scheduler", 8},
		{"group sh", group + "    scheduler: sh\n", "services[0].scheduler", 7},
		{"routed, flags named without fallback", routed + "    scheduler_flags: [mh-port]\n", "services[0].scheduler_flags", 7},
		{"mh with mh-fallback", vrrp + "    scheduler: mh\n    scheduler_flags: [mh-fallback]\n", "", 0},
		{"sh with sh-fallback", vrrp + "    scheduler: sh\n    scheduler_flags: [sh-port, sh-fallback]\n", "", 0},
		{"mh with on_failure remove", vrrp + "    scheduler: mh\n    on_failure: remove\n", "", 0},
		{"routed default", routed, "", 0},
		{"rr", vrrp + "    scheduler: rr\n", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("d.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if tc.field == "" {
				if len(cfg.Warnings) != 0 {
					t.Errorf("warnings = %v, want none", cfg.Warnings)
				}
				return
			}
			if len(cfg.Warnings) != 1 {
				t.Fatalf("warnings = %v, want one", cfg.Warnings)
			}
			w := cfg.Warnings[0]
			if w.File != "d.yaml" || w.Field != tc.field || w.Line != tc.line {
				t.Errorf("warning at %s:%d: %s, want d.yaml:%d: %s", w.File, w.Line, w.Field, tc.line, tc.field)
			}
			s := cfg.Services[0].Scheduler
			if !strings.HasPrefix(w.Msg, s+" without "+s+"-fallback: ") || !strings.Contains(w.Msg, "on_failure: remove") {
				t.Errorf("message = %q", w.Msg)
			}
		})
	}
}

// Warnings are not part of the configuration: a reload that changes only
// them changes nothing.
func TestWarningsNotCompared(t *testing.T) {
	base := `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24]}
services:
  - name: web
    vip: 10.0.0.100
    port: 80
    scheduler: mh
    real_servers: [{address: 10.0.0.21}]
`
	a, err := Parse("d.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("d.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	b.Warnings = nil
	if len(a.Warnings) != 1 {
		t.Fatalf("warnings = %v, want one", a.Warnings)
	}
	if ch := Diff(a, b); len(ch) != 0 {
		t.Errorf("Diff = %v, want none", ch)
	}
	if PairHash(a) != PairHash(b) {
		t.Error("PairHash differs")
	}
}

// A configuration with errors has no warnings to give: only the errors.
func TestWarningsOnlyWhenValid(t *testing.T) {
	_, err := Parse("d.yaml", []byte("services:\n  - {name: web, vip: 10.0.0.100, port: 0, scheduler: mh, real_servers: [{address: 10.0.0.21}]}\n"))
	if err == nil || strings.Contains(err.Error(), "fallback") {
		t.Errorf("err = %v, want the port error alone", err)
	}
}
