package labplan

import (
	"fmt"
	"strings"
	"time"
)

// The gateway pair's second instance and its sync group (Params.Gateway).
const (
	InsideInstance = "inside"
	InsideVRID     = 52
	SyncGroupName  = "gw"
)

// InsideVIP4Addr is the inside VIP as recorded in HolderEvent.Addr.
var InsideVIP4Addr = InsideVIP4.Addr().String()

// instanceSpec is what differs between the gateway pair's two instances.
type instanceSpec struct {
	name, iface string
	vrid        int
	self, peer  string
	vips        []string
}

// instances lists node's VRRP instances for p: the lab's one, and in a
// gateway plan the inside one.
func instances(p Params, node string) ([]instanceSpec, error) {
	self, other, err := lbAddrs(node)
	if err != nil {
		return nil, err
	}
	out := []instanceSpec{{name: InstanceName, iface: "eth0", vrid: VRID, self: self, peer: other, vips: p.InstanceVIPs()}}
	if p.Gateway {
		h, _ := HostByName(node)
		o, _ := HostByName(peer(node))
		out = append(out, instanceSpec{
			name: InsideInstance, iface: "eth1", vrid: InsideVRID,
			self: h.InsideIPv4.Addr().String(), peer: o.InsideIPv4.Addr().String(),
			vips: []string{InsideVIP4.String()},
		})
	}
	return out, nil
}

func keepalivedSyncGroup(b *strings.Builder) {
	fmt.Fprintf(b, "vrrp_sync_group %s {\n    group {\n        %s\n        %s\n    }\n}\n\n", SyncGroupName, InstanceName, InsideInstance)
}

func directorSyncGroup(b *strings.Builder) {
	fmt.Fprintf(b, "sync_groups:\n  - name: %s\n    instances: [%s, %s]\n", SyncGroupName, InstanceName, InsideInstance)
}

// CutInside takes down the bridge side of node's inside link: its eth1
// loses carrier, its outside link stays up.
func CutInside(node string) Step { return Exec("", "ip", "link", "set", InsidePort(node), "down") }

// HealInside brings it back.
func HealInside(node string) Step { return Exec("", "ip", "link", "set", InsidePort(node), "up") }

// Split measures how far the two addresses a and b were apart within a
// window of a VIP timeline.
type Split struct {
	// Crossed is how long one node held a while another held b: the
	// split a sync group exists to prevent.
	Crossed time.Duration
	// Partial is the longest stretch in which some node held one of the
	// two without the other (a move in progress, or a group that did not
	// follow).
	Partial time.Duration
}

// SplitOf measures Split for addresses a and b within [from, to), from
// events in any order (earlier ones set the state at from).
func SplitOf(events []HolderEvent, a, b string, from, to time.Time) Split {
	evs := timelineBefore(events, to, a, b)
	clip := func(t time.Time) time.Time {
		if t.Before(from) {
			return from
		}
		return t
	}
	held := map[string]map[string]bool{}
	var s Split
	var partialSince time.Time
	inPartial := false
	for i, e := range evs {
		if held[e.Node] == nil {
			held[e.Node] = map[string]bool{}
		}
		held[e.Node][e.Addr] = e.Held
		next := to
		if i+1 < len(evs) {
			next = evs[i+1].At
		}
		crossed, partial := false, false
		for n, h := range held {
			partial = partial || h[a] != h[b]
			for m, g := range held {
				crossed = crossed || (m != n && h[a] && g[b])
			}
		}
		if crossed && next.After(from) {
			s.Crossed += next.Sub(clip(e.At))
		}
		switch {
		case partial && !inPartial:
			inPartial, partialSince = true, e.At
		case !partial && inPartial:
			inPartial = false
			if e.At.After(from) {
				s.Partial = max(s.Partial, e.At.Sub(clip(partialSince)))
			}
		}
	}
	if inPartial {
		s.Partial = max(s.Partial, to.Sub(clip(partialSince)))
	}
	return s
}
