package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const good = `
log_level: debug
instances:
  - name: web
    interface: eth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    vips: [10.0.0.100/24, 10.0.0.101]
    notify: /usr/local/bin/notify
  - name: api
    interface: eth0
    vrid: 52
    version: 2
    preempt: false
    auth_pass: secret
    unicast:
      source: 10.0.0.11
      peers: [10.0.0.12]
    vips: [10.0.0.200]
    garp: {count: 3, interval: 50ms, refresh: 60s}
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	web, api := cfg.Instances[0], cfg.Instances[1]
	if web.Version != 3 || web.AdvertInterval.D() != 100*time.Millisecond || !web.PreemptEnabled() {
		t.Errorf("web defaults wrong: %+v", web)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.100/24"), netip.MustParsePrefix("10.0.0.101/32")}
	if len(web.Addresses) != 2 || web.Addresses[0] != want[0] || web.Addresses[1] != want[1] {
		t.Errorf("web addresses = %v, want %v", web.Addresses, want)
	}
	if web.GARP.Count != DefaultGARPCount || web.GARP.Interval.D() != DefaultGARPInterval {
		t.Errorf("garp defaults = %+v", web.GARP)
	}
	if api.PreemptEnabled() || api.Priority != DefaultPriority || api.AdvertInterval.D() != time.Second {
		t.Errorf("api settings wrong: %+v", api)
	}
	if api.Unicast.SourceAddr != netip.MustParseAddr("10.0.0.11") || len(api.Unicast.PeerAddrs) != 1 {
		t.Errorf("unicast = %+v", api.Unicast)
	}
	if api.GARP.Count != 3 || api.GARP.Refresh.D() != time.Minute {
		t.Errorf("garp = %+v", api.GARP)
	}
}

// Each bad input must produce a message naming file, line and field.
func TestParseBad(t *testing.T) {
	base := func(extra string) string {
		return "instances:\n  - name: web\n    interface: eth0\n    vrid: 51\n    vips: [10.0.0.100]\n" + extra
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", base("    priorty: 100\n"), "d.yaml:6: priorty: unknown field"},
		{"duplicate key", base("    vrid: 52\n"), `d.yaml:6: mapping key "vrid" already defined at line 4`},
		{"vrid range", strings.Replace(base(""), "vrid: 51", "vrid: 256", 1), "d.yaml:4: instances[0].vrid: must be 1-255, got 256"},
		{"vrid zero", strings.Replace(base(""), "vrid: 51", "vrid: 0", 1), "instances[0].vrid: must be 1-255, got 0"},
		{"priority 255", base("    priority: 255\n"), "d.yaml:6: instances[0].priority: must be 1-254, got 255"},
		{"priority 0", base("    priority: 0\n"), "d.yaml:6: instances[0].priority: must be 1-254, got 0"},
		{"mixed family", strings.Replace(base(""), "[10.0.0.100]", "[10.0.0.100, 2001:db8::1]", 1), "d.yaml:5: instances[0].vips[1]: 2001:db8::1 is not the same address family"},
		{"v2 ipv6", strings.Replace(base("    version: 2\n"), "[10.0.0.100]", "[2001:db8::1]", 1), "instances[0].version: VRRP version 2 carries only IPv4"},
		{"v2 interval", base("    version: 2\n    advert_interval: 100ms\n"), "d.yaml:7: instances[0].advert_interval: VRRP version 2 needs whole seconds"},
		{"v3 interval", base("    advert_interval: 15ms\n"), "instances[0].advert_interval: VRRP version 3 needs a multiple of 10ms"},
		{"v3 interval too long", base("    advert_interval: 41s\n"), "multiple of 10ms from 10ms to 40.95s"},
		{"bare duration", base("    advert_interval: 1\n"), `d.yaml:6: "1" is not a duration`},
		{"bad vip", strings.Replace(base(""), "[10.0.0.100]", "[10.0.0.300]", 1), `instances[0].vips[0]: "10.0.0.300" is not an address`},
		{"dup vip", strings.Replace(base(""), "[10.0.0.100]", "[10.0.0.100, 10.0.0.100/24]", 1), "10.0.0.100 is listed twice"},
		{"no vips", strings.Replace(base(""), "    vips: [10.0.0.100]\n", "", 1), "instances[0].vips: at least one VIP"},
		{"unicast no peers", base("    unicast: {source: 10.0.0.11}\n"), "instances[0].unicast.peers: at least one peer"},
		{"unicast self", base("    unicast: {source: 10.0.0.11, peers: [10.0.0.11]}\n"), "own source address"},
		{"unicast family", base("    unicast: {source: 10.0.0.11, peers: ['fe80::1']}\n"), "not the same address family"},
		{"auth v3", base("    auth_pass: x\n"), "authentication exists only in VRRP version 2"},
		{"preempt delay nopreempt", base("    preempt: false\n    preempt_delay: 5s\n"), "preempt_delay: has no effect"},
		{"notify relative", base("    notify: notify.sh\n"), "must be an absolute path"},
		{"log level", "log_level: loud\n" + base(""), `d.yaml:1: log_level: "loud" is not one of`},
		{"empty", "", "d.yaml: configuration is empty"},
		{"syntax", "instances: [\n", "d.yaml:"},
		{"no instances", "log_level: info\n", "instances: at least one instance"},
		{"bad name", strings.Replace(base(""), "name: web", "name: 'a b'", 1), `instances[0].name: "a b"`},
		{"garp refresh", base("    garp: {refresh: 10ms}\n"), "garp.refresh: 10ms is shorter than 1s"},
		{"wrong type", strings.Replace(base(""), "vrid: 51", "vrid: abc", 1), "d.yaml:4: cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yaml)
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseDuplicateAcrossInstances(t *testing.T) {
	y := `instances:
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1]}
  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1]}
  - {name: b, interface: eth0, vrid: 1, vips: ['2001:db8::1']}
`
	_, err := Parse("d.yaml", []byte(y))
	if err == nil {
		t.Fatal("accepted duplicates")
	}
	for _, want := range []string{
		`d.yaml:3: instances[1].name: instance name "a" is already used by instances[0]`,
		"d.yaml:3: instances[1].vrid: vrid 1 on eth0 (IPv4) is already used by instances[0]",
		"d.yaml:3: instances[1].vips[0]: VIP 10.0.0.1 is already in instances[0]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// Same VRID on another family is a different router (RFC 5798 section 7.3).
	if strings.Contains(err.Error(), "instances[2].vrid") {
		t.Errorf("IPv6 instance with the same VRID was refused:\n%v", err)
	}
}

func TestAllErrorsListed(t *testing.T) {
	y := "instances:\n  - name: web\n    interface: eth0\n    vrid: 300\n    priority: 999\n    vips: [nope]\n"
	_, err := Parse("d.yaml", []byte(y))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not in file order: %v", ps)
		}
	}
}

// The shipped examples must stay valid.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 2 {
		t.Fatalf("want at least 2 examples under configs/, found %d", len(files))
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestEC2Config(t *testing.T) {
	y := `instances:
  - name: web
    interface: ens5
    vrid: 51
    unicast: {source: 10.0.1.11, peers: [10.0.1.12]}
    vips: [10.0.1.100/24]
    ec2:
      allocation_ids: [eipalloc-0123456789abcdef0]
      move_timeout: 15s
`
	cfg, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Instances[0].EC2.Cloud
	if len(cc.VIPs) != 1 || cc.Interface != "ens5" || len(cc.EIPs) != 1 || cc.MoveTimeout != 15*time.Second {
		t.Errorf("cloud config = %+v", cc)
	}
	bad := strings.Replace(y, "    unicast: {source: 10.0.1.11, peers: [10.0.1.12]}\n", "", 1)
	bad = strings.Replace(bad, "eipalloc-0123456789abcdef0", "eip-bogus", 1)
	_, err = Parse("d.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "instances[0].ec2: EC2 has no multicast") || !strings.Contains(err.Error(), "eip-bogus") {
		t.Errorf("error = %v", err)
	}
}

// IPv6 VIPs move through EC2: in an IPv6 instance, or as the excluded
// addresses of a dual-stack IPv4 instance with move_excluded.
func TestEC2IPv6(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.1.100"), netip.MustParseAddr("2001:db8:0:1::100")
	only6 := `instances:
  - name: web6
    interface: ens5
    vrid: 52
    unicast: {source: "2001:db8:0:1::11", peers: ["2001:db8:0:1::12"]}
    vips: [2001:db8:0:1::100/64]
    ec2: {}
`
	cfg, err := Parse("d.yaml", []byte(only6))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].EC2.Cloud.VIPs; !slices.Equal(got, []netip.Addr{v6}) {
		t.Errorf("IPv6 instance moves %v", got)
	}

	dual := `instances:
  - name: web
    interface: ens5
    vrid: 51
    unicast: {source: 10.0.1.11, peers: [10.0.1.12]}
    vips: [10.0.1.100/24]
    vips_excluded: [2001:db8:0:1::100/64]
    ec2:
      allocation_ids: [eipalloc-0123456789abcdef0]
      move_excluded: true
`
	cfg, err = Parse("d.yaml", []byte(dual))
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.Instances[0].EC2.Cloud
	if !slices.Equal(cc.VIPs, []netip.Addr{v4, v6}) || cc.EIPs[0].PrivateIP.IsValid() && cc.EIPs[0].PrivateIP != v4 {
		t.Errorf("dual-stack instance moves %v, EIPs %+v", cc.VIPs, cc.EIPs)
	}
	cfg, err = Parse("d.yaml", []byte(strings.Replace(dual, "      move_excluded: true\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].EC2.Cloud.VIPs; !slices.Equal(got, []netip.Addr{v4}) {
		t.Errorf("without move_excluded the excluded VIPs stay local, got %v", got)
	}

	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"excluded VIP on another device", strings.Replace(dual, "[2001:db8:0:1::100/64]", `["2001:db8:0:1::100/64 dev eth1"]`, 1),
			"d.yaml:10: instances[0].ec2.move_excluded: vips_excluded[0] 2001:db8:0:1::100 is on eth1, but EC2 moves addresses to the ENI of ens5 only"},
		{"nothing excluded to move", strings.Replace(dual, "    vips_excluded: [2001:db8:0:1::100/64]\n", "", 1),
			"instances[0].ec2.move_excluded: this instance has no vips_excluded to move"},
		{"Elastic IP on the IPv6 VIP", strings.Replace(dual, "allocation_ids: [eipalloc-0123456789abcdef0]", `elastic_ips: {eipalloc-0123456789abcdef0: "2001:db8:0:1::100"}`, 1),
			"points at 2001:db8:0:1::100, an IPv6 address; Elastic IPs are IPv4"},
		{"link-local VIP", strings.Replace(only6, "vips: [2001:db8:0:1::100/64]", "vips: [fe80::100/64]", 1),
			"instances[0].ec2: vips: fe80::100 is not a unicast address EC2 can assign to an ENI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
