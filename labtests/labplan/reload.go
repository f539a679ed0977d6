package labplan

import (
	"fmt"
	"net/netip"
	"strings"
)

// InstanceVIPs are the addresses (with prefix length) of the lab's VRRP
// instance: VIP4 and, with IPVS, its ExtraVIPs in the same /24.
func (p Params) InstanceVIPs() []string {
	vips := []string{VIP4.String()}
	if p.IPVS != nil {
		for _, a := range p.IPVS.ExtraVIPs {
			vips = append(vips, fmt.Sprintf("%s/%d", a, VIP4.Bits()))
		}
	}
	return vips
}

// ExtraServiceName names the HTTP service on IPVS.ExtraVIPs[i].
func ExtraServiceName(i int) string { return fmt.Sprintf("http%d", i+2) }

func (v *IPVS) weight(rs string) int {
	if w, ok := v.Weights[rs]; ok {
		return w
	}
	return 1
}

// validateReload checks Weights and ExtraVIPs: weights of configured real
// servers within IPVS's range, extra VIPs unused IPv4 addresses on the
// lab's segment.
func (v *IPVS) validateReload() []error {
	var errs []error
	rss := map[string]bool{}
	for _, rs := range v.realServers() {
		rss[rs] = true
	}
	for rs, w := range v.Weights {
		if !rss[rs] || w < 0 || w > 65535 {
			errs = append(errs, fmt.Errorf("ipvs: weight %d of %q: want a configured real server and 0..65535", w, rs))
		}
	}
	used := map[netip.Addr]bool{VIP4.Addr(): true}
	for _, h := range Hosts() {
		used[h.IPv4.Addr()] = true
	}
	for _, s := range v.ExtraVIPs {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || !a.Is4() || !VIP4.Masked().Contains(a):
			errs = append(errs, fmt.Errorf("ipvs: extra VIP %q: want an IPv4 address in %s", s, VIP4.Masked()))
		case used[a]:
			errs = append(errs, fmt.Errorf("ipvs: extra VIP %s is already in use", a))
		default:
			used[a] = true
		}
	}
	return errs
}

// keepalivedExtraVIPs renders the HTTP virtual_server of each extra VIP,
// without checkers.
func (v *IPVS) keepalivedExtraVIPs(b *strings.Builder) {
	for _, vip := range v.ExtraVIPs {
		fmt.Fprintf(b, "\nvirtual_server %s %d {\n", vip, HTTPPort)
		fmt.Fprintf(b, "    lb_algo %s\n    lb_kind DR\n    protocol TCP\n", v.scheduler())
		for _, rs := range v.realServers() {
			h, _ := HostByName(rs)
			fmt.Fprintf(b, "    real_server %s %d {\n        weight %d\n    }\n", h.IPv4.Addr(), HTTPPort, v.weight(rs))
		}
		b.WriteString("}\n")
	}
}
