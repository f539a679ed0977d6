//go:build linux

package ipvsadm

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// KernelSource reads the IPVS state of the calling process's network
// namespace: services, destinations, counters, sync daemons, version and
// timeouts over generic netlink (package ipvsnl), and connections from
// /proc/net/ip_vs_conn. It needs no daemon.
type KernelSource struct {
	// ConnFile overrides ConnFile, for tests.
	ConnFile string
}

// Read fetches the requested parts.
func (k KernelSource) Read(parts Part) (*Snapshot, error) {
	var s Snapshot
	if parts&PartConns != 0 {
		name := k.ConnFile
		if name == "" {
			name = ConnFile
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read connections: %w", err)
		}
		s.ConnTable = string(b)
	}
	if parts&(PartServices|PartTimeouts|PartDaemons) == 0 {
		return &s, nil
	}
	c, err := ipvsnl.Dial()
	if err != nil {
		return nil, fmt.Errorf("connect to IPVS: %w", err)
	}
	defer c.Close()
	if err := readNetlink(c, &s, parts); err != nil {
		return nil, err
	}
	return &s, nil
}

// readNetlink fills in the parts that come from the kernel's IPVS family.
func readNetlink(c *ipvsnl.Conn, s *Snapshot, parts Part) error {
	if parts&PartTimeouts != 0 {
		t, err := c.Timeouts()
		if err != nil {
			return fmt.Errorf("get IPVS timeouts: %w", err)
		}
		s.Timeouts = &Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}
	}
	if parts&PartDaemons != 0 {
		ds, err := c.Daemons()
		if err != nil {
			return fmt.Errorf("get IPVS sync daemons: %w", err)
		}
		s.Daemons = fromNLDaemons(ds)
	}
	if parts&PartServices == 0 {
		return nil
	}
	info, err := c.Info()
	if err != nil {
		return fmt.Errorf("get IPVS info: %w", err)
	}
	v := info.Version
	s.Version = fmt.Sprintf("%d.%d.%d", v>>16&0xff, v>>8&0xff, v&0xff)
	s.ConnTableSize = info.ConnTabSize

	svcs, err := c.Services()
	if err != nil {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	s.Services = make([]Service, 0, len(svcs))
	for i := range svcs {
		svc := fromNLService(&svcs[i])
		ds, err := c.Dests(svcs[i].Key)
		if err != nil {
			return fmt.Errorf("list destinations of %s: %w", serviceName(&svc, false), err)
		}
		svc.Destinations = make([]Destination, 0, len(ds))
		for _, d := range ds {
			svc.Destinations = append(svc.Destinations, fromNL(d))
		}
		s.Services = append(s.Services, svc)
	}
	return nil
}

func fromNLService(ns *ipvsnl.Service) Service {
	svc := Service{
		Family:    Family(ns.Family),
		FWMark:    ns.FWMark,
		Scheduler: ns.Scheduler,
		Flags:     ns.Flags,
		Timeout:   ns.Timeout,
		PE:        ns.PEName,
		Stats:     fromNLStats(ns.Stats),
	}
	if ns.FWMark == 0 {
		svc.Protocol = Protocol(ns.Protocol)
		svc.Address = ns.Addr
		svc.Port = ns.Port
	}
	switch ns.Family {
	case ipvsnl.AFInet:
		svc.Netmask = netip.AddrFrom4([4]byte{byte(ns.Netmask >> 24), byte(ns.Netmask >> 16), byte(ns.Netmask >> 8), byte(ns.Netmask)}).String()
	case ipvsnl.AFInet6:
		if ns.Netmask <= 128 {
			svc.Netmask = strconv.Itoa(int(ns.Netmask))
		}
	}
	return svc
}

func fromNLStats(s ipvsnl.Stats) Stats {
	return Stats{
		Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes,
		CPS: s.CPS, InPPS: s.InPPS, OutPPS: s.OutPPS, InBPS: s.InBPS, OutBPS: s.OutBPS,
	}
}

func fromNL(d ipvsnl.Dest) Destination {
	return Destination{
		Family:         Family(d.Family),
		Address:        d.Addr,
		Port:           d.Port,
		Forward:        Forward(d.FwdMethod),
		Weight:         d.Weight,
		UpperThreshold: d.Upper,
		LowerThreshold: d.Lower,
		ActiveConns:    d.ActiveConns,
		InactiveConns:  d.InactiveConns,
		PersistConns:   d.PersistConns,
		TunnelType:     TunnelType(d.TunType),
		TunnelPort:     d.TunPort,
		TunnelFlags:    d.TunFlags,
		Stats:          fromNLStats(d.Stats),
	}
}

// fromNLDaemons converts the daemons the kernel lists; ipvsadm keeps two
// at most.
func fromNLDaemons(ds []ipvsnl.Daemon) []Daemon {
	var out []Daemon
	for _, d := range ds[:min(len(ds), 2)] {
		out = append(out, Daemon{State: DaemonState(d.State), Interface: d.Interface, SyncID: d.SyncID,
			MaxLen: d.MaxLen, Group: d.Group, Port: d.Port, TTL: d.TTL})
	}
	return out
}
