package config

import (
	"testing"
)

const splitYAML = `
control_socket: /run/director/director.sock
rt_priority: 10
notify_fifo: /run/director/notify.fifo
scripts:
  - {name: vrrp_only, command: [/bin/true], interval: 1s}
  - {name: both, command: [/bin/true], interval: 1s}
  - {name: routed_only, command: [/bin/true], interval: 1s}
  - {name: nobody, command: [/bin/true], interval: 1s}
track_files:
  - {name: maint, path: /etc/director/maint}
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    vips: [10.0.0.100/24]
    track: [{script: vrrp_only}, {script: both}, {file: maint}, {service: http}]
ipvs: {state_file: /run/director/ipvs-owned.json}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    protocol: tcp
    scheduler: rr
    forwarding: dr
    real_servers: [{address: 10.0.0.21}]
`

// VRRPPart and HostPart cut one configuration in two: each process runs
// only its part, and a tracked script runs only where something tracks it.
func TestSplitParts(t *testing.T) {
	cfg, err := Parse("director.yaml", []byte(splitYAML))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.VRRPPart()
	if len(v.Instances) != 1 || len(v.Services) != 0 || v.Routing != nil || v.ControlSocket != "" || v.API.Listen != "" || v.Metrics.Listen != "" {
		t.Errorf("VRRP part: %d instances, %d services, routing %v, control socket %q, api %q, metrics %q; want the instances alone",
			len(v.Instances), len(v.Services), v.Routing, v.ControlSocket, v.API.Listen, v.Metrics.Listen)
	}
	if v.RTPriority != 10 || v.NotifyFIFO != cfg.NotifyFIFO || v.File != cfg.File || string(v.Source) != splitYAML {
		t.Errorf("VRRP part: rt_priority %d, fifo %q, file %q, source kept %v", v.RTPriority, v.NotifyFIFO, v.File, string(v.Source) == splitYAML)
	}
	if got := scriptNames(v.Scripts); got != "vrrp_only,both" {
		t.Errorf("VRRP part scripts %s, want vrrp_only,both (the ones its instances track)", got)
	}
	if len(v.TrackFiles) != 1 {
		t.Errorf("VRRP part track files %v, want maint", v.TrackFiles)
	}
	h := cfg.HostPart()
	// The instances stay as descriptions (the dataplane reads which one a
	// service follows); the daemon runs none of them.
	if len(h.Instances) != 1 || len(h.SyncGroups) != 0 || h.RTPriority != 0 || len(h.Services) != 1 || h.ControlSocket != cfg.ControlSocket {
		t.Errorf("host part: %d instances, %d groups, rt_priority %d, %d services, control socket %q; want the instances described, no groups or rt_priority, the rest",
			len(h.Instances), len(h.SyncGroups), h.RTPriority, len(h.Services), h.ControlSocket)
	}
	if len(h.Scripts) != 0 || len(h.TrackFiles) != 0 {
		t.Errorf("host part tracks scripts %v and files %v without routing, want none", h.Scripts, h.TrackFiles)
	}
	if len(cfg.Instances) != 1 || len(cfg.Scripts) != 4 || cfg.RTPriority != 10 {
		t.Error("cutting changed the configuration itself")
	}
}

// With routing, the host part keeps what routing tracks.
func TestHostPartKeepsRoutingTracks(t *testing.T) {
	cfg := &Config{
		Scripts:   []Script{{Name: "vrrp_only"}, {Name: "routed_only"}},
		Instances: []Instance{{Name: "web", Track: []Track{{Script: "vrrp_only"}}}},
		Routing:   &Routing{Track: []Track{{Script: "routed_only"}}},
	}
	if got := scriptNames(cfg.HostPart().Scripts); got != "routed_only" {
		t.Errorf("host part scripts %s, want routed_only", got)
	}
	if got := scriptNames(cfg.VRRPPart().Scripts); got != "vrrp_only" {
		t.Errorf("VRRP part scripts %s, want vrrp_only", got)
	}
}

func scriptNames(ss []Script) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s.Name
	}
	return out
}
