package labplan

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Fixed VRRP identity of the lab's one virtual router.
const (
	VRID         = 51
	InstanceName = "web"
)

// peer returns the other load balancer.
func peer(node string) string {
	if node == LB1 {
		return LB2
	}
	return LB1
}

func lbAddrs(node string) (self, other string, err error) {
	h, ok := HostByName(node)
	if !ok || (node != LB1 && node != LB2) {
		return "", "", fmt.Errorf("%q is not a load balancer", node)
	}
	o, _ := HostByName(peer(node))
	return h.IPv4.Addr().String(), o.IPv4.Addr().String(), nil
}

// KeepalivedConfig renders keepalived.conf for node. All instances start in
// BACKUP so that priority alone decides, as with director.
func KeepalivedConfig(p Params, node string) (string, error) {
	if _, _, err := lbAddrs(node); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n", node)
	if p.Version == 3 {
		// Sub-second advert_int is accepted only when the global version is 3.
		b.WriteString("    vrrp_version 3\n")
	}
	if p.Track != nil {
		b.WriteString("    script_user root\n")
	}
	if (p.IPVS != nil && p.IPVS.Sync) || (p.Idle != nil && p.Idle.Sync) {
		fmt.Fprintf(&b, "    lvs_sync_daemon eth0 %s id %d\n", InstanceName, SyncID)
	}
	b.WriteString("}\n\n")
	if p.Track != nil {
		keepalivedTrack(&b, p.Track, node)
	}
	insts, err := instances(p, node)
	if err != nil {
		return "", err
	}
	if p.Gateway {
		keepalivedSyncGroup(&b)
	}
	for _, in := range insts {
		fmt.Fprintf(&b, "vrrp_instance %s {\n", in.name)
		fmt.Fprintf(&b, "    state BACKUP\n    interface %s\n", in.iface)
		fmt.Fprintf(&b, "    virtual_router_id %d\n", in.vrid)
		fmt.Fprintf(&b, "    priority %d\n", p.Priority[node])
		fmt.Fprintf(&b, "    advert_int %s\n", strconv.FormatFloat(p.Advert.D().Seconds(), 'f', -1, 64))
		if !p.Preempt {
			b.WriteString("    nopreempt\n")
		}
		if p.VMAC {
			b.WriteString("    use_vmac\n")
		}
		if p.Unicast {
			fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n", in.self, in.peer)
		}
		if p.Track != nil {
			keepalivedTrackRefs(&b, p.Track)
		}
		b.WriteString("    virtual_ipaddress {\n")
		for _, vip := range in.vips {
			if p.VMAC {
				// use_vmac puts VIPs without dev on the macvlan.
				fmt.Fprintf(&b, "        %s\n", vip)
			} else {
				fmt.Fprintf(&b, "        %s dev %s\n", vip, in.iface)
			}
		}
		b.WriteString("    }\n}\n")
	}
	if p.IPVS != nil {
		keepalivedIPVS(&b, p.IPVS)
	}
	if p.Idle != nil {
		keepalivedIdle(&b, p.Idle)
	}
	return b.String(), nil
}

// DirectorConfig renders director.yaml for node.
func DirectorConfig(p Params, node string) (string, error) {
	var b strings.Builder
	// /run is one tmpfs for every namespace in the guest: one socket per node.
	if p.Routed != nil {
		fmt.Fprintf(&b, "log_level: debug\ncontrol_socket: /run/%s/director.sock\n", node)
		directorRouting(&b, p, node)
		directorIPVS(&b, p.IPVS, node)
		return b.String(), nil
	}
	fmt.Fprintf(&b, "log_level: debug\ncontrol_socket: /run/%s/director.sock\n", node)
	if p.RTPriority > 0 {
		fmt.Fprintf(&b, "rt_priority: %d\n", p.RTPriority)
	}
	if err := directorInstances(&b, p, node); err != nil {
		return "", err
	}
	if p.EC2 {
		directorEC2(&b, node) // the last instance's ec2 block (there is one instance)
	}
	if p.Gateway {
		directorSyncGroup(&b)
	}
	if p.IPVS != nil {
		directorIPVS(&b, p.IPVS, node)
	}
	if p.Idle != nil {
		directorIdle(&b, p.Idle, node)
	}
	if p.Track != nil {
		directorTrack(&b, p.Track, node)
	}
	if p.Hooks != nil {
		directorHooks(&b, p.Hooks, node)
	}
	return b.String(), nil
}

// directorInstances renders the instances: section.
func directorInstances(b *strings.Builder, p Params, node string) error {
	b.WriteString("instances:\n")
	insts, err := instances(p, node)
	if err != nil {
		return err
	}
	for i, in := range insts {
		fmt.Fprintf(b, "  - name: %s\n    interface: %s\n    vrid: %d\n", in.name, in.iface, in.vrid)
		fmt.Fprintf(b, "    priority: %d\n    version: %d\n", p.Priority[node], p.Version)
		fmt.Fprintf(b, "    advert_interval: %s\n    preempt: %t\n", p.Advert.D(), p.Preempt)
		if p.VMAC {
			b.WriteString("    vmac: true\n")
		}
		if p.Unicast {
			fmt.Fprintf(b, "    unicast:\n      source: %s\n      peers: [%s]\n", in.self, in.peer)
		} else if p.AllowedSources {
			fmt.Fprintf(b, "    allowed_sources: [%s]\n", in.peer)
		}
		fmt.Fprintf(b, "    vips: [%s]\n", strings.Join(in.vips, ", "))
		if i > 0 {
			continue // tracking, hooks and EC2 belong to the lab's own instance
		}
		if p.Track != nil {
			directorTrackRefs(b, p.Track)
		}
		if p.Hooks != nil {
			directorHookRefs(b)
		}
	}
	return nil
}

// ConfigFile returns the file name and contents of node's configuration for
// the implementation p selects for it.
func ConfigFile(p Params, node string) (name, body string, err error) {
	switch impl := p.Impl[node]; impl {
	case Keepalived:
		body, err = KeepalivedConfig(p, node)
		return node + ".keepalived.conf", body, err
	case Director:
		body, err = DirectorConfig(p, node)
		return node + ".director.yaml", body, err
	default:
		return "", "", fmt.Errorf("%s: unknown implementation %q", node, impl)
	}
}

// DaemonArgv is the command line, inside node's namespace, that runs n's
// daemon in the foreground with its logs on stderr.
func DaemonArgv(n Node, paths Paths) ([]string, error) {
	conf := path.Join(paths.Out, n.Config)
	switch n.Impl {
	case Keepalived:
		run := path.Join("/run", n.Name)
		return []string{"keepalived", "-n", "-l", "-G", "-D", "-f", conf,
			"-p", path.Join(run, "keepalived.pid"),
			"-r", path.Join(run, "vrrp.pid"),
			"-c", path.Join(run, "checker.pid")}, nil
	case Director:
		if paths.DirectorBin == "" {
			return nil, fmt.Errorf("%s: no director binary in plan", n.Name)
		}
		return []string{paths.DirectorBin, "run", "-c", conf}, nil
	default:
		return nil, fmt.Errorf("%s: unknown implementation %q", n.Name, n.Impl)
	}
}
