package labplan

import (
	"strings"
	"testing"
)

func reloadParams(impl Impl) Params {
	p := DefaultParams(impl)
	p.IPVS = &IPVS{Scheduler: "wrr", RealServers: []string{RS1, Sorry},
		Weights: map[string]int{RS1: 3}, ExtraVIPs: []string{"10.0.0.101"}}
	return p
}

func TestReloadDirectorConfig(t *testing.T) {
	p := reloadParams(Director)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	_, c := loadDirectorConfig(t, p, LB1)
	for _, want := range []string{
		"vips: [10.0.0.100/24, 10.0.0.101/24]",
		"- {address: 10.0.0.21, weight: 3}",
		"- {address: 10.0.0.30}",
		"- name: http2\n    vip: 10.0.0.101\n    port: 80\n",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("director config lacks %q:\n%s", want, c)
		}
	}
}

func TestReloadKeepalivedConfig(t *testing.T) {
	c, err := KeepalivedConfig(reloadParams(Keepalived), LB1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"        10.0.0.100/24 dev eth0\n        10.0.0.101/24 dev eth0\n",
		"virtual_server 10.0.0.101 80 {",
		"real_server 10.0.0.21 80 {\n        weight 3\n",
		"real_server 10.0.0.30 80 {\n        weight 1\n",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("keepalived config lacks %q:\n%s", want, c)
		}
	}
}

func TestReloadValidate(t *testing.T) {
	for _, f := range []func(v *IPVS){
		func(v *IPVS) { v.Weights = map[string]int{RS2: 2} },             // not configured
		func(v *IPVS) { v.Weights = map[string]int{RS1: 70000} },         // out of range
		func(v *IPVS) { v.ExtraVIPs = []string{"10.0.0.21"} },            // a host's address
		func(v *IPVS) { v.ExtraVIPs = []string{"10.0.0.100"} },           // the VIP
		func(v *IPVS) { v.ExtraVIPs = []string{"192.168.0.1"} },          // off the segment
		func(v *IPVS) { v.ExtraVIPs = []string{"fd00::101"} },            // IPv6
		func(v *IPVS) { v.ExtraVIPs = []string{"10.0.0.9", "10.0.0.9"} }, // twice
	} {
		p := reloadParams(Director)
		f(p.IPVS)
		if err := p.Validate(); err == nil {
			t.Errorf("accepted %+v", *p.IPVS)
		}
	}
	if err := (Plan{Params: DefaultParams(Director), Steps: []Step{Start(LB1), Signal(LB1, "HUP")}}).Validate(); err != nil {
		t.Errorf("HUP refused: %v", err)
	}
}
