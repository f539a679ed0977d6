package labplan

import (
	"fmt"
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
