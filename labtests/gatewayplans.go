package labtests

import (
	"net"
	"strconv"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the gateway (sync group) and VMAC plans.
const (
	LabelInsideMoved = "inside-moved" // wait_exec: the inside VIP on lb2's eth1
	LabelInsideBack  = "inside-back"  // wait_exec: the inside VIP on lb1's eth1 again
	LabelAfter       = "after"        // probe_stop once lb1 is back
	LabelNeigh       = "neigh"        // exec on the client: its neighbour entry for the VIP
)

// GatewayParams: the default pair as a gateway (a NAT pair's VRRP shape):
// the outside instance on eth0 and the inside one on eth1 in one sync
// group.
func GatewayParams(impl lp.Impl) Params {
	p := lp.DefaultParams(impl)
	p.Gateway = true
	return p
}

// insideTarget is the inside host's web server, which the client reaches
// through the gateways.
func insideTarget() string {
	h, _ := lp.HostByName(lp.Inside)
	return net.JoinHostPort(h.IPv4.Addr().String(), strconv.Itoa(80))
}

// waitInsideVIP waits until node's eth1 holds the inside VIP.
func waitInsideVIP(node string, d time.Duration) Step {
	return lp.WaitExec(node, d, `inet `+lp.InsideVIP4Addr+`/`, "ip", "-4", "-o", "addr", "show", "dev", "eth1")
}

// GatewayPlan: lb1 is master of both instances; only its inside link is
// cut. lb1's inside instance faults, the group takes its outside instance
// down with it, and lb2 takes both VIPs; the client keeps reaching the
// inside host through lb2. Then the link comes back and lb1 takes both
// back. The VIP timeline shows whether the VIPs ever were apart.
func GatewayPlan(name string, p Params) Plan {
	steps := startPair(p)
	steps = append(steps,
		waitInsideVIP(lp.LB1, electTimeout(p)),
		lp.Sleep(settle(p)),
		lp.ProbeStartTo(insideTarget()), lp.Sleep(500*time.Millisecond),
		lp.CutInside(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		waitInsideVIP(lp.LB2, takeoverTimeout(p)).As(LabelInsideMoved),
		lp.Sleep(settle(p)),
		lp.ProbeStop().As(LabelProbe),
		lp.HealInside(lp.LB1).As(LabelRecover),
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
		waitInsideVIP(lp.LB1, takeoverTimeout(p)).As(LabelInsideBack),
		lp.Sleep(settle(p)),
		lp.ProbeStartTo(insideTarget()), lp.Sleep(time.Second), lp.ProbeStop().As(LabelAfter),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// VMACParams: the default pair with the VIP on a VRRP virtual-MAC
// macvlan (keepalived's use_vmac).
func VMACParams(impl lp.Impl) Params {
	p := lp.DefaultParams(impl)
	p.VMAC = true
	return p
}

// VMACPlan: the client's ARP entry for the VIP is pinned (permanent) to
// the virtual MAC, so no gratuitous ARP can change it; lb1 is cut off,
// lb2 takes over, lb1 comes back and takes the VIP back, all under one
// probe run. Both load balancers answer with their own name, so the probe
// shows whether frames for the one MAC reached each master in turn.
func VMACPlan(name string, p Params) Plan {
	mac := vmacOf(lp.VRID).String()
	steps := startPair(p)
	steps = append(steps,
		lp.Exec(lp.Client, "ip", "neigh", "replace", lp.VIP4Addr, "lladdr", mac, "dev", "eth0", "nud", "permanent"),
		lp.Sleep(settle(p)),
		lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
		lp.Cut(lp.LB1).As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(settle(p)+time.Second),
		lp.Heal(lp.LB1).As(LabelRecover),
		lp.WaitNoVIP(lp.LB2, electTimeout(p)).As(LabelBack),
		lp.WaitVIP(lp.LB1, takeoverTimeout(p)),
		lp.Sleep(settle(p)+time.Second),
		lp.ProbeStop().As(LabelProbe),
		lp.Exec(lp.Client, "ip", "neigh", "show", lp.VIP4Addr, "dev", "eth0").As(LabelNeigh),
	)
	return Plan{Name: name, Params: p, Steps: steps}
}

// vmacOf is RFC 5798's IPv4 virtual router MAC, written out here rather
// than taken from director's own code, so that the lab checks it.
func vmacOf(vrid int) net.HardwareAddr { return net.HardwareAddr{0, 0, 0x5e, 0, 1, byte(vrid)} }

// Labels of the flood plan.
const (
	LabelFloodJunk   = "flood-junk"
	LabelFloodForged = "flood-forged"
	LabelFloodState  = "flood-state"
)

// FloodRate is the stranger's packets a second in the flood plan.
const FloodRate = 50000

// FloodPlan: with lb1 master, a stranger (the sorry host, on the same
// segment) floods the VRRP group with junk protocol-112 packets, then with
// forged adverts for the lab's VRID that only their checksum gives away,
// each for floodFor, while the client probes the VIP. Mastership must not
// move. director's lb1 then shows its drop counters.
func FloodPlan(name string, p Params, floodFor time.Duration) Plan {
	steps := startPair(p)
	steps = append(steps,
		lp.Sleep(settle(p)),
		lp.ProbeStart(), lp.Sleep(500*time.Millisecond),
		lp.Flood(lp.Sorry, lp.FloodJunk, FloodRate, floodFor).As(LabelFloodJunk),
		lp.Flood(lp.Sorry, lp.FloodForged, FloodRate, floodFor).As(LabelFloodForged),
		lp.Sleep(settle(p)),
		lp.ProbeStop().As(LabelProbe),
	)
	if p.Impl[lp.LB1] == lp.Director {
		steps = append(steps, lp.Exec(lp.LB1, "director", "state", "-socket", "/run/"+lp.LB1+"/director.sock").As(LabelFloodState))
	}
	return Plan{Name: name, Params: p, Steps: steps}
}
