package labplan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// IPVSTable is ipvsadm's listing (-Ln, optionally --stats --exact) read
// back: one entry per virtual service, in output order.
type IPVSTable []IPVSService

// IPVSService is one service line and its destination lines. Fields are
// the columns after the address: "rr" and flags for -Ln, the counters for
// --stats.
type IPVSService struct {
	Proto  string // TCP, UDP, SCTP, FWM
	Addr   string // 10.0.0.100:80
	Fields []string
	Dests  []IPVSDest
}

// IPVSDest is one "-> address:port ..." line.
type IPVSDest struct {
	Addr   string
	Fields []string
}

// ParseIPVSTable reads ipvsadm -Ln output; header lines are skipped.
func ParseIPVSTable(out string) IPVSTable {
	var t IPVSTable
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			if len(t) > 0 {
				s := &t[len(t)-1]
				s.Dests = append(s.Dests, IPVSDest{Addr: f[1], Fields: f[2:]})
			}
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" || f[0] == "FWM"):
			t = append(t, IPVSService{Proto: f[0], Addr: f[1], Fields: f[2:]})
		}
	}
	return t
}

// Service returns the service proto addr ("TCP", "10.0.0.100:80").
func (t IPVSTable) Service(proto, addr string) (IPVSService, bool) {
	for _, s := range t {
		if s.Proto == proto && s.Addr == addr {
			return s, true
		}
	}
	return IPVSService{}, false
}

// Dest returns the destination addr ("10.0.0.22:80").
func (s IPVSService) Dest(addr string) (IPVSDest, bool) {
	for _, d := range s.Dests {
		if d.Addr == addr {
			return d, true
		}
	}
	return IPVSDest{}, false
}

// Int returns column i of fields as a number; --exact keeps ipvsadm from
// writing counters as "12K".
func Int(fields []string, i int) (int64, error) {
	if i >= len(fields) {
		return 0, fmt.Errorf("column %d of %q: missing", i, fields)
	}
	return strconv.ParseInt(fields[i], 10, 64)
}

// Columns of ipvsadm -Ln destination lines (after the address) and of
// ipvsadm -Ln --stats lines (service and destination alike).
const (
	ColForward    = 0
	ColWeight     = 1
	ColActiveConn = 2
	ColInActConn  = 3

	ColConns    = 0
	ColInPkts   = 1
	ColOutPkts  = 2
	ColInBytes  = 3
	ColOutBytes = 4
)

// VIPService is the lab service on port as ipvsadm names it.
func VIPService(port int) string { return fmt.Sprintf("%s:%d", VIP4.Addr(), port) }

// RSAddr is real server rs's address:port as ipvsadm shows a destination.
func RSAddr(rs string, port int) string {
	h, _ := HostByName(rs)
	return fmt.Sprintf("%s:%d", h.IPv4.Addr(), port)
}

// NormalizeIPVS renders ipvsadm -Ln output so that two tables holding the
// same services and destinations compare equal (see FormatIPVS).
func NormalizeIPVS(out string) string { return FormatIPVS(ParseIPVSTable(out)) }

// FormatIPVS renders t in a canonical form: services sorted by protocol
// and address, destinations by address, the connection counters
// (ActiveConn, InActConn) left out, one space between columns, no header.
// A plan writes the table it expects in this form (wait_ipvs steps).
func FormatIPVS(t IPVSTable) string {
	t = slices.Clone(t)
	slices.SortFunc(t, func(a, b IPVSService) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), compareAddrPort(a.Addr, b.Addr))
	})
	var b strings.Builder
	for _, s := range t {
		b.WriteString(strings.Join(append([]string{s.Proto, s.Addr}, s.Fields...), " "))
		b.WriteByte('\n')
		dests := slices.Clone(s.Dests)
		slices.SortFunc(dests, func(x, y IPVSDest) int { return compareAddrPort(x.Addr, y.Addr) })
		for _, d := range dests {
			f := d.Fields
			if len(f) > ColActiveConn {
				f = f[:ColActiveConn] // forward and weight
			}
			b.WriteString(strings.Join(append([]string{"  ->", d.Addr}, f...), " "))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// compareAddrPort orders "10.0.0.9:80" before "10.0.0.10:80" (and
// "[fd00::1]:80" as addresses); anything unparsed (a firewall mark) by its
// text, after the addresses.
func compareAddrPort(a, b string) int {
	x, errX := netip.ParseAddrPort(a)
	y, errY := netip.ParseAddrPort(b)
	switch {
	case errX == nil && errY == nil:
		return x.Compare(y)
	case errX == nil:
		return -1
	case errY == nil:
		return 1
	}
	return strings.Compare(a, b)
}
