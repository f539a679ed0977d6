package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxGroupEndpoints bounds the virtual services one service group stands
// for: each is a service in the kernel, programmed and read back on every
// resync.
const MaxGroupEndpoints = 4096

func (e Endpoint) String() string {
	if e.FWMark != 0 {
		return fmt.Sprintf("fwmark %d", e.FWMark)
	}
	return netip.AddrPortFrom(e.Addr, uint16(e.Port)).String()
}

// groupPorts is how many different ports a group's address members use
// (0 for a plain service or a group of marks only).
func (s *Service) groupPorts() int {
	ports := map[int]bool{}
	for _, m := range s.Members {
		if m.FWMark == 0 && m.Port != 0 {
			ports[m.Port] = true
		}
	}
	return len(ports)
}

// group validates a service group's members and expands them into its
// endpoints: one definition, one set of real servers and checks, many
// virtual services.
func (c *checker) group(f string, s *Service) {
	if s.VIP != "" || s.Port != 0 || s.FWMark != 0 {
		c.errf(f+".members", "a service group takes its addresses, ports and marks from members: leave out vip, port and fwmark")
	}
	seen := map[Endpoint]string{}
	fam, addrs, ok := 0, 0, true
	var eps []Endpoint
	add := func(mf string, e Endpoint) bool {
		if prev, dup := seen[e]; dup {
			c.errf(mf, "%s is listed twice (also %s)", e, prev)
			return false
		}
		if len(eps) == MaxGroupEndpoints {
			c.errf(mf, "the group stands for more than %d virtual services", MaxGroupEndpoints)
			return false
		}
		seen[e] = mf
		eps = append(eps, e)
		return true
	}
	for j, m := range s.Members {
		mf := fmt.Sprintf("%s.members[%d]", f, j)
		switch {
		case m.FWMark != 0 && (m.VIP != "" || m.Port != 0):
			c.errf(mf, "give vip and port, or fwmark, not both")
			ok = false
		case m.FWMark != 0:
			if m.FWMark < 1 || m.FWMark > 0xffffffff {
				c.errf(mf+".fwmark", "must be 1-4294967295, got %d", m.FWMark)
				ok = false
				continue
			}
			ok = add(mf, Endpoint{FWMark: m.FWMark}) && ok
		case m.VIP == "":
			c.errf(mf+".vip", "required (or fwmark)")
			ok = false
		default:
			if m.Port < 1 || m.Port > 65535 {
				c.errf(mf+".port", "must be 1-65535, got %d", m.Port)
				ok = false
				continue
			}
			list, err := ExpandRange(m.VIP, MaxGroupEndpoints-len(eps))
			if err != nil {
				c.errf(mf+".vip", "%v", err)
				ok = false
				continue
			}
			if fam == 0 {
				fam = family(list[0])
			} else if family(list[0]) != fam {
				c.errf(mf+".vip", "%s is not the same address family as the group's other addresses", m.VIP)
				ok = false
				continue
			}
			for _, a := range list {
				if !add(mf, Endpoint{Addr: a, Port: m.Port}) {
					ok = false
					break
				}
			}
			if addrs == 0 {
				s.Addr = list[0]
			}
			addrs += len(list)
		}
	}
	switch {
	case fam != 0 && s.Family != 0 && s.Family != fam:
		c.errf(f+".family", "the members' addresses are IPv%d", fam)
	case fam != 0:
		s.AddrFamily = fam
	case s.Family == 0 || s.Family == 4:
		s.AddrFamily = 4
	case s.Family == 6:
		s.AddrFamily = 6
	default:
		c.errf(f+".family", "must be 4 or 6, got %d", s.Family)
	}
	if addrs == 0 && s.Protocol != "" {
		c.errf(f+".protocol", "a group of firewall marks only has no protocol")
	} else if addrs > 0 {
		c.protocol(f, s)
	}
	if s.groupPorts() == 1 {
		for _, m := range s.Members {
			if m.FWMark == 0 {
				s.Port = m.Port // the default port of real and sorry servers
				break
			}
		}
	}
	if ok {
		s.Endpoints = eps
	}
}

// ExpandRange reads a group member's address in keepalived's forms and
// lists the addresses, refusing more than limit:
//
//	10.0.0.1                  one address
//	10.0.0.1-10               the last byte from 1 to 10 (IPv6: the last group, in hex: 2001:db8::1-ff)
//	10.0.0.250-10.0.1.5       from one address to another
//	10.0.0.8/29               every address of the prefix (the address must be its first)
func ExpandRange(s string, limit int) ([]netip.Addr, error) {
	bad := func(why string, args ...any) ([]netip.Addr, error) {
		return nil, fmt.Errorf("%q: %s", s, fmt.Sprintf(why, args...))
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Zone() != "" {
			return bad("an address takes no zone")
		}
		if p.Masked() != p {
			return bad("write the prefix's first address, %s", p.Masked())
		}
		if host := p.Addr().BitLen() - p.Bits(); host >= 31 || 1<<host > limit {
			return bad("more than %d addresses", limit)
		}
		var out []netip.Addr
		for a := p.Addr(); a.IsValid() && p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
		return out, nil
	} else if strings.Contains(s, "/") {
		return bad("not an address, a range or a prefix")
	}
	first, last, isRange := strings.Cut(s, "-")
	from, err := netip.ParseAddr(first)
	if err != nil || from.Zone() != "" {
		return bad("not an address, a range (10.0.0.1-10) or a prefix (10.0.0.8/29)")
	}
	if !isRange {
		return []netip.Addr{from}, nil
	}
	to, err := netip.ParseAddr(last)
	if err != nil {
		// keepalived's short form: the end of the last byte (IPv4, decimal)
		// or of the last group (IPv6, hex).
		b := from.AsSlice()
		if from.Is4() {
			n, err := strconv.ParseUint(last, 10, 8)
			if err != nil {
				return bad("the range's end %q is not 0-255", last)
			}
			b[3] = byte(n)
		} else {
			n, err := strconv.ParseUint(last, 16, 16)
			if err != nil {
				return bad("the range's end %q is not a hex group 0-ffff", last)
			}
			b[14], b[15] = byte(n>>8), byte(n)
		}
		to, _ = netip.AddrFromSlice(b)
	} else if to.Is4() != from.Is4() || to.Zone() != "" {
		return bad("the range's ends are of different families")
	}
	if to.Compare(from) <= 0 {
		return bad("the range's end is not above its start")
	}
	var out []netip.Addr
	for a := from; ; a = a.Next() {
		if len(out) == limit {
			return bad("more than %d addresses", limit)
		}
		out = append(out, a)
		if a == to {
			return out, nil
		}
	}
}
