package config

import (
	"strings"
	"testing"
	"time"
)

const trackGood = `
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    vips: [10.0.0.100/24]
    track:
      - script: chk_haproxy
      - script: chk_haproxy_slow
        weight: 0
      - file: maint
      - process: haproxy
        weight: 10
      - interface: eth1
        weight: -20
scripts:
  - name: chk_haproxy
    command: [killall, -0, haproxy]
    fall: 2
    rise: 2
    weight: -60
  - name: chk_haproxy_slow
    shell: "curl -sf http://127.0.0.1:8404/ | grep -q ok"
    interval: 5s
    timeout: 2s
    weight_reverse: true
    user: nobody
track_files:
  - name: maint
    path: /etc/director/maintenance
    weight: 0
  - name: offset
    path: /run/offset
track_processes:
  - name: haproxy
    process: haproxy
  - name: nginx
    argv: ["nginx: master process"]
    quorum: 1
    quorum_max: 1
    delay: 2s
    weight: -30
`

func TestTrackObjects(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(trackGood))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Scripts[0]
	if s.Interval.D() != time.Second || s.Timeout.D() != time.Second || s.Rise != 2 || s.Fall != 2 || s.Weight != -60 {
		t.Errorf("script defaults: %+v", s)
	}
	if s := cfg.Scripts[1]; s.Timeout.D() != 2*time.Second || s.Rise != 1 || s.Fall != 1 || !s.WeightReverse || s.User != "nobody" {
		t.Errorf("script 2: %+v", s)
	}
	if f := cfg.TrackFiles; *f[0].Weight != 0 || *f[1].Weight != DefaultTrackFileWeight {
		t.Errorf("track file weights %d %d, want 0 (written) and 1 (default)", *f[0].Weight, *f[1].Weight)
	}
	if p := cfg.TrackProcesses[0]; p.Quorum != 1 || p.QuorumMax != 0 || p.Weight != 0 {
		t.Errorf("process defaults: %+v", p)
	}
	tr := cfg.Instances[0].Track
	if tr[0].Weight != nil || *tr[1].Weight != 0 || *tr[3].Weight != 10 {
		t.Errorf("track weights: absent must stay nil, 0 must stay 0: %v %v %v", tr[0].Weight, tr[1].Weight, tr[3].Weight)
	}
	if k, n := tr[4].Kind(); k != "interface" || n != "eth1" {
		t.Errorf("Kind = %s %s", k, n)
	}
}

func TestTrackObjectsBad(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"- script: chk_haproxy\n", "- script: nope\n", `track[0].script: "nope" is not the name of any of scripts`},
		{"- file: maint\n", "- file: maint\n        process: haproxy\n", "track[2]: name exactly one of"},
		{"- interface: eth1\n", "- interface: eth1/x\n", `track[4].interface: "eth1/x" is not a valid interface name`},
		{"weight: 10\n", "weight: 300\n", "track[3].weight: must be -253 to 253"},
		{"command: [killall, -0, haproxy]\n", "command: [killall]\n    shell: x\n", "scripts[0]: give exactly one of command"},
		{"    fall: 2\n", "    fall: 0\n", "scripts[0].fall: must be 1-100"},
		{"timeout: 2s\n", "timeout: 0s\n", "scripts[1].timeout: must be 10ms to 1h"},
		{"    weight: -60\n", "    weight: -254\n", "scripts[0].weight: must be -253 to 253"},
		{"path: /run/offset\n", "path: run/offset\n", `track_files[1].path: "run/offset" must be an absolute path`},
		{"    process: haproxy\n", "    process: haproxy-with-a-long-name\n", "track_processes[0].process: \"haproxy-with-a-long-name\" is longer than"},
		{"quorum_max: 1\n", "quorum_max: 0\n", "track_processes[1].quorum_max: must be at least"},
		{"- name: offset\n", "- name: maint\n", `track file name "maint" is already used`},
		{"      - file: maint\n", "      - file: maint\n        weight_reverse: true\n      - service: x\n        weight_reverse: true\n", "track[3].weight_reverse: only scripts"},
	} {
		y := strings.Replace(trackGood, tc.from, tc.to, 1)
		if y == trackGood {
			t.Fatalf("%q not in the base", tc.from)
		}
		_, err := Parse("d.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "d.yaml:") {
			t.Errorf("%s -> %s: error %v, want %q with a line", tc.from, tc.to, err, tc.want)
		}
	}
}

// The HAProxy pair example moves mastership when HAProxy dies on the
// master: its priority with chk_haproxy down is below the backup's.
func TestHAProxyExample(t *testing.T) {
	lb1, err := Load("../../configs/haproxy-lb1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lb2, err := Load("../../configs/haproxy-lb2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := lb1.Scripts[0]
	if s.Name != "chk_haproxy" || strings.Join(s.Command, " ") != "killall -0 haproxy" || s.Fall != 2 || s.Rise != 2 {
		t.Errorf("chk_haproxy: %+v", s)
	}
	p1, p2 := lb1.Instances[0].Priority, lb2.Instances[0].Priority
	if p1+s.Weight >= p2 || p2 >= p1 {
		t.Errorf("priorities %d/%d with weight %d: a dead HAProxy on lb1 would not move the VIP", p1, p2, s.Weight)
	}
	if len(lb1.Services) != 0 || PairHash(lb1) != PairHash(lb2) {
		t.Error("the pair's files must differ only in priority, with no IPVS services")
	}
}

func TestDiffTrackObjects(t *testing.T) {
	old, err := Parse("d.yaml", []byte(trackGood))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(trackGood, "    fall: 2\n", "    fall: 3\n", 1)
	y = strings.Replace(y, "  - name: offset\n    path: /run/offset\n", "", 1)
	y = strings.Replace(y, "track_processes:\n", "track_processes:\n  - name: sshd\n    process: sshd\n", 1)
	new, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, new) {
		got = append(got, c.String())
	}
	want := []string{
		"script chk_haproxy: changed: restarted, its state starts anew",
		"track_file offset: removed",
		"track_process sshd: added",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
