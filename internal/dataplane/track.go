package dataplane

import (
	"net/netip"
	"strings"

	"github.com/director-lb/director/checks"
)

// TrackUp says whether what a VRRP instance tracks is up: a service by its
// quorum, or a real server ("service/addr:port") by its checks. It reads
// the health snapshot only; anything unknown counts as up, so that a typo
// or a server not yet checked never lowers a priority.
func (dp *Dataplane) TrackUp(service, realServer string) bool {
	if service != "" {
		w, ok := dp.health.snapshot()[service]
		return !ok || !w.QuorumLost
	}
	svc, addr, ok := strings.Cut(realServer, "/")
	if !ok {
		return true
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return true
	}
	h, _ := dp.health.status(svc, ap)
	return h != checks.Down.String()
}
