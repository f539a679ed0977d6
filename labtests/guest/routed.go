package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/labtests/labplan"
)

// routedTopology finishes a routed plan's network: the router's eth1 on
// the client network, forwarding with layer-4 ECMP hashing; the client's,
// the real servers' and the directors' default routes through the router
// (direct server return goes back that way); with the FRR stand-in, each
// director's vip0.
func routedTopology(root *netlink.Handle, clientBr *netlink.Bridge, p labplan.Params) error {
	ns, err := netns.GetFromName(labplan.Router)
	if err != nil {
		return fmt.Errorf("router netns: %w", err)
	}
	err = addLink(root, clientBr, ns, "c"+labplan.Router, "eth1", labplan.RouterClientSide)
	ns.Close()
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := writeSysctls(labplan.Router, map[string]string{
		"net/ipv4/ip_forward": "1",
		// Layer-4 hashing: a client's flows spread over the directors.
		"net/ipv4/fib_multipath_hash_policy": "1",
	}); err != nil {
		return err
	}
	gw := map[string]netip.Addr{labplan.Client: labplan.RouterClientSide.Addr()}
	for _, h := range labplan.HostsFor(p) {
		if h.RealServer {
			gw[h.Name] = labplan.RouterAddr
		}
	}
	// A director behind a router routes to the client through it, as
	// in a site: what it answers itself from the VIP (the fine probe's
	// responder) goes back that way.
	for _, n := range p.LBs() {
		gw[n] = labplan.RouterAddr
	}
	for host, via := range gw {
		if err := inNamespace(host, func(nh *netlink.Handle) error {
			return nh.RouteAdd(&netlink.Route{Gw: via.AsSlice()})
		}); err != nil {
			return fmt.Errorf("default route of %s via %s: %w", host, via, err)
		}
	}
	if p.Routed.Announcer != labplan.AnnounceFRR {
		return nil
	}
	for _, n := range p.LBs() {
		if err := inNamespace(n, func(nh *netlink.Handle) error {
			d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: labplan.VIPDevice}}
			if err := nh.LinkAdd(d); err != nil {
				return fmt.Errorf("add %s: %w", labplan.VIPDevice, err)
			}
			ipn := prefixNet(labplan.VIPDeviceAddr(n))
			if err := nh.AddrAdd(d, &netlink.Addr{IPNet: ipn}); err != nil {
				return fmt.Errorf("address of %s: %w", labplan.VIPDevice, err)
			}
			return nh.LinkSetUp(d)
		}); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

// inNamespace runs f with a netlink handle inside namespace name.
func inNamespace(name string, f func(*netlink.Handle) error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer nh.Close()
	return f(nh)
}

// addLink gives namespace ns a further interface peer on bridge br (bridge
// side port), with address a, up.
func addLink(root *netlink.Handle, br *netlink.Bridge, ns netns.NsHandle, port, peer string, a netip.Prefix) error {
	if err := joinBridge(root, br, port, peer, ns); err != nil {
		return err
	}
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer nh.Close()
	l, err := nh.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	if err := nh.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(a)}); err != nil {
		return fmt.Errorf("add %s: %w", a, err)
	}
	return nh.LinkSetUp(l)
}

// frrDaemons are the FRR daemons each FRR host runs, zebra first (the
// others connect to it).
var frrDaemons = []string{"zebra", "bfdd", "bgpd"}

// startFRR runs FRR's daemons in host's namespace, with pathspace host
// (sockets in /run/frr/<host>, vtysh -N <host>), as the frr user Debian's
// package creates, reading the plan's configuration for host. Their
// output goes to <host>.frr.log in the run directory.
func (r *runner) startFRR(ctx context.Context, host string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("frr user (is Debian's frr installed?): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := filepath.Join("/run/frr", host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("frr run dir: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("frr run dir: %w", err)
	}
	conf := filepath.Join(r.plan.Paths.Out, labplan.FRRConfigFile(host))
	for _, d := range frrDaemons {
		logf, err := os.OpenFile(filepath.Join(r.plan.Paths.Out, host+".frr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("frr log: %w", err)
		}
		cmd := exec.Command("ip", "netns", "exec", host, "/usr/lib/frr/"+d,
			"-N", host, "-f", conf, "-i", filepath.Join(dir, d+".pid"))
		cmd.Env = []string{guestPath}
		if err := r.procs.start(host+"/"+d, cmd, logf); err != nil {
			return err
		}
		if d == "zebra" {
			if err := waitFile(ctx, filepath.Join(dir, "zserv.api"), 10*time.Second); err != nil {
				return fmt.Errorf("%s's zebra: %w", host, err)
			}
		}
	}
	return nil
}

// waitFile waits until path exists (a daemon's socket).
func waitFile(ctx context.Context, path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %v", path, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
