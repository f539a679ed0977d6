package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

const groupBase = `instances:
  - {name: web, interface: eth0, vrid: 51, vips: [10.0.0.100/24, 10.0.0.10/24, 10.0.0.11/24, 10.0.0.12/24]}
services:
  - name: web
    members:
      - {vip: 10.0.0.100, port: 80}
      - {vip: 10.0.0.10-12, port: 80}
      - {vip: 10.0.0.100, port: 8080}
      - {fwmark: 5}
    real_servers:
      - {address: 10.0.0.21, port: 80, weight: 3}
      - {address: 10.0.0.22, port: 80}
    checks:
      - {type: tcp}
`

func TestGroupExpands(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(groupBase))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	var got []string
	for _, e := range s.Endpoints {
		got = append(got, e.String())
	}
	want := "10.0.0.100:80 10.0.0.10:80 10.0.0.11:80 10.0.0.12:80 10.0.0.100:8080 fwmark 5"
	if strings.Join(got, " ") != want {
		t.Errorf("endpoints = %v\nwant %s", got, want)
	}
	if !s.IsGroup() || s.AddrFamily != 4 || s.Protocol != "tcp" || s.Addr != netip.MustParseAddr("10.0.0.100") || s.Port != 0 {
		t.Errorf("group = family %d protocol %s addr %s port %d", s.AddrFamily, s.Protocol, s.Addr, s.Port)
	}
	// A plain service has one endpoint, itself.
	cfg, err = Parse("d.yaml", []byte(svcBase))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Services[0].Endpoints; len(e) != 1 || e[0].String() != "10.0.0.100:80" {
		t.Errorf("plain service endpoints = %v", e)
	}
}

// With one port among its addresses, a group's real servers and sorry
// server default to it, and self-registration can match it.
func TestGroupSharedPort(t *testing.T) {
	y := strings.Replace(groupBase, "      - {vip: 10.0.0.100, port: 8080}\n", "", 1)
	y = strings.Replace(y, "{address: 10.0.0.22, port: 80}", "{address: 10.0.0.22}", 1)
	y += "    sorry_server: 10.0.0.30\n    registration: {allowed: [10.0.0.0/24]}\n"
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.Port != 80 || s.RealServers[1].Port != 80 || s.Sorry != netip.MustParseAddrPort("10.0.0.30:80") {
		t.Errorf("port %d, real server %d, sorry %s; want 80 each", s.Port, s.RealServers[1].Port, s.Sorry)
	}
}

func TestGroupBad(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"vip beside members", "  - name: web\n", "  - name: web\n    vip: 10.0.0.100\n", "services[0].members: a service group takes its addresses"},
		{"both", "{fwmark: 5}", "{fwmark: 5, port: 80}", "d.yaml:9: services[0].members[3]: give vip and port, or fwmark, not both"},
		{"no port", "{vip: 10.0.0.10-12, port: 80}", "{vip: 10.0.0.10-12}", "services[0].members[1].port: must be 1-65535, got 0"},
		{"range backwards", "10.0.0.10-12", "10.0.0.10-9", "the range's end is not above its start"},
		{"range end", "10.0.0.10-12", "10.0.0.10-300", `the range's end "300" is not 0-255`},
		{"prefix not first", "10.0.0.10-12", "10.0.0.9/30", "write the prefix's first address, 10.0.0.8/30"},
		{"too many", "10.0.0.10-12", "10.0.0.0/8", "more than"},
		{"families", "10.0.0.10-12", "fd00::1-3", "is not the same address family as the group's other addresses"},
		{"listed twice", "{vip: 10.0.0.100, port: 8080}", "{vip: 10.0.0.11, port: 80}", "services[0].members[2]: 10.0.0.11:80 is listed twice (also services[0].members[1])"},
		{"rs port needed", "{address: 10.0.0.22, port: 80}", "{address: 10.0.0.22}", "services[0].real_servers[1].port: required: the group's members have different ports"},
		{"sorry port needed", "    checks:\n", "    sorry_server: 10.0.0.30\n    checks:\n", "sorry_server: give the port"},
		{"registration", "    checks:\n", "    registration: {allowed: [10.0.0.0/24]}\n    checks:\n", "no one port for registrations"},
		{"overlaps a service", "", "  - {name: other, vip: 10.0.0.11, port: 80, real_servers: [{address: 10.0.0.21}]}\n", "services[1]: duplicate service: the same as services[0]"},
		{"marks and protocol", "    members:\n      - {vip: 10.0.0.100, port: 80}\n      - {vip: 10.0.0.10-12, port: 80}\n      - {vip: 10.0.0.100, port: 8080}\n", "    protocol: udp\n    members:\n", "a group of firewall marks only has no protocol"},
		{"instance", "services:\n", "ipvs: {services_on_backup: false}\nservices:\n", ""}, // one instance: it follows that one
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := groupBase
			if tc.from == "" {
				y += tc.to
			} else {
				if !strings.Contains(y, tc.from) {
					t.Fatalf("base lacks %q", tc.from)
				}
				y = strings.Replace(y, tc.from, tc.to, 1)
			}
			_, err := Parse("d.yaml", []byte(y))
			if tc.want == "" {
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant %q", err, tc.want)
			}
		})
	}
	// With two instances and services on the master only, every address
	// of the group must be in the instance that holds the first.
	y := strings.Replace(groupBase, "10.0.0.11/24, 10.0.0.12/24]}", "10.0.0.11/24]}\n  - {name: api, interface: eth0, vrid: 52, vips: [10.0.0.12/24]}", 1)
	y = strings.Replace(y, "services:\n", "ipvs: {services_on_backup: false}\nservices:\n", 1)
	_, err := Parse("d.yaml", []byte(y))
	if want := "services[0].instance: services_on_backup is false, so name the VRRP instance this service follows (10.0.0.12 is not a VIP of web"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant %q", err, want)
	}
}

func TestExpandRange(t *testing.T) {
	cases := []struct {
		in   string
		want string // first..last count, or an error's text
	}{
		{"10.0.0.1", "10.0.0.1..10.0.0.1 1"},
		{"10.0.0.1-10", "10.0.0.1..10.0.0.10 10"},
		{"10.0.0.250-10.0.1.5", "10.0.0.250..10.0.1.5 12"},
		{"10.0.0.8/29", "10.0.0.8..10.0.0.15 8"},
		{"2001:db8::1-ff", "2001:db8::1..2001:db8::ff 255"},
		{"2001:db8::fffe-2001:db8::1:1", "2001:db8::fffe..2001:db8::1:1 4"},
		{"2001:db8::/126", "2001:db8::..2001:db8::3 4"},
		{"10.0.0.1-2001:db8::1", "different families"},
		{"10.0.0.1-x", "is not 0-255"},
		{"2001:db8::1-fffff", "is not a hex group"},
		{"10.0.0.0/16", "more than 4096"},
		{"::/0", "more than 4096"},
		{"nonsense", "not an address"},
		{"10.0.0.1/x", "not an address, a range or a prefix"},
	}
	for _, c := range cases {
		got, err := ExpandRange(c.in, MaxGroupEndpoints)
		desc := ""
		if err != nil {
			desc = err.Error()
		} else {
			desc = fmt.Sprintf("%s..%s %d", got[0], got[len(got)-1], len(got))
		}
		if !strings.Contains(desc, c.want) {
			t.Errorf("ExpandRange(%q) = %s, want %s", c.in, desc, c.want)
		}
	}
}
