//go:build linux

package ipvsadm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/cloudflare/ipvs"
	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// KernelSource reads the IPVS state of the calling process's network
// namespace: services, destinations, counters, version and timeouts through
// github.com/cloudflare/ipvs, what that library does not decode (sync
// daemons, persistence engine names) through generic netlink directly, and
// connections from /proc/net/ip_vs_conn. It needs no daemon.
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
	if parts&(PartServices|PartTimeouts) != 0 {
		if err := readLibrary(&s, parts); err != nil {
			return nil, err
		}
	}
	if parts&(PartServices|PartDaemons) != 0 {
		if err := readGenetlink(&s, parts); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func readLibrary(s *Snapshot, parts Part) error {
	c, err := ipvs.New()
	if err != nil {
		return fmt.Errorf("connect to IPVS: %w", err)
	}
	if cl, ok := c.(io.Closer); ok {
		defer cl.Close()
	}
	if parts&PartTimeouts != 0 {
		cfg, err := c.Config()
		if err != nil {
			return fmt.Errorf("get IPVS timeouts: %w", err)
		}
		s.Timeouts = &Timeouts{TCP: cfg.TCPTimeout, TCPFin: cfg.TCPFinTimeout, UDP: cfg.UDPTimeout}
	}
	if parts&PartServices == 0 {
		return nil
	}
	info, err := c.Info()
	if err != nil {
		return fmt.Errorf("get IPVS info: %w", err)
	}
	s.Version = fmt.Sprintf("%d.%d.%d", info.Version[0]&0xff, info.Version[1], info.Version[2])
	s.ConnTableSize = info.ConnectionTableSize

	svcs, err := c.Services()
	// The library reports an empty dump as os.ErrNotExist.
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	s.Services = make([]Service, 0, len(svcs))
	for _, ks := range svcs {
		// Destinations come from readGenetlink (see package ipvsnl).
		s.Services = append(s.Services, fromLibService(ks))
	}
	return nil
}

func fromLibService(ks ipvs.ServiceExtended) Service {
	svc := Service{
		Family:    Family(ks.Family),
		FWMark:    ks.FWMark,
		Scheduler: ks.Scheduler,
		Flags:     uint32(ks.Flags),
		Timeout:   ks.Timeout,
		Stats:     pickStats(ks.Stats64, ks.Stats),
	}
	if ks.FWMark == 0 {
		svc.Protocol = Protocol(ks.Protocol)
		svc.Address = ks.Address
		svc.Port = ks.Port
	}
	switch {
	case ks.Netmask.Is4():
		if a, ok := netip.AddrFromSlice(ks.Netmask.AsSlice()); ok {
			svc.Netmask = a.String()
		}
	case ks.Netmask.Is6():
		svc.Netmask = strconv.Itoa(ks.Netmask.Bits())
	}
	return svc
}

// pickStats prefers the 64-bit counters, as ipvsadm does; kernels before
// 4.1 send only the 32-bit ones, and the library then leaves Stats64 zero.
func pickStats(s64, s32 ipvs.Stats) Stats {
	s := s64
	if s64 == (ipvs.Stats{}) {
		s = s32
	}
	return Stats{
		Conns: s.Connections, InPkts: s.IncomingPackets, OutPkts: s.OutgoingPackets,
		InBytes: s.IncomingBytes, OutBytes: s.OutgoingBytes,
		CPS: s.ConnectionRate, InPPS: s.IncomingPacketRate, OutPPS: s.OutgoingPacketRate,
		InBPS: s.IncomingByteRate, OutBPS: s.OutgoingByteRate,
	}
}

// readGenetlink fills in what github.com/cloudflare/ipvs does not decode,
// and the destinations.
func readGenetlink(s *Snapshot, parts Part) error {
	c, err := genetlink.Dial(&netlink.Config{MessageBufferSize: ipvsnl.DumpBufferSize})
	if err != nil {
		return fmt.Errorf("dial generic netlink: %w", err)
	}
	defer c.Close()
	fam, err := c.GetFamily(genlName)
	if err != nil {
		return fmt.Errorf("find IPVS netlink family: %w", err)
	}
	dump := func(cmd uint8) ([]genetlink.Message, error) {
		return c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}},
			fam.ID, netlink.Request|netlink.Dump)
	}
	if parts&PartDaemons != 0 {
		msgs, err := dump(cmdGetDaemon)
		if err != nil {
			return fmt.Errorf("get IPVS sync daemons: %w", err)
		}
		if s.Daemons, err = parseDaemons(msgs); err != nil {
			return err
		}
	}
	if parts&PartServices != 0 && len(s.Services) > 0 {
		msgs, err := dump(cmdGetService)
		if err != nil {
			return fmt.Errorf("list IPVS services: %w", err)
		}
		pes, err := parsePENames(msgs)
		if err != nil {
			return err
		}
		for i := range s.Services {
			svc := &s.Services[i]
			k := keyOf(svc)
			svc.PE = pes[k]
			if svc.Destinations, err = dumpDests(c, fam.ID, k); err != nil {
				return fmt.Errorf("list destinations of %s: %w", serviceName(svc, false), err)
			}
		}
	}
	return nil
}

// Generic netlink names and numbers from linux/ip_vs.h.
const (
	genlName    = "IPVS"
	genlVersion = 1

	cmdGetService = 4
	cmdGetDaemon  = 11

	cmdAttrService = 1
	cmdAttrDaemon  = 3

	svcAttrAF       = 1
	svcAttrProtocol = 2
	svcAttrAddr     = 3
	svcAttrPort     = 4
	svcAttrFWMark   = 5
	svcAttrPEName   = 11

	daemonAttrState      = 1
	daemonAttrMcastIfn   = 2
	daemonAttrSyncID     = 3
	daemonAttrSyncMaxLen = 4
	daemonAttrGroup      = 5
	daemonAttrGroup6     = 6
	daemonAttrPort       = 7
	daemonAttrTTL        = 8
)

// svcKey identifies a service the way the kernel looks services up.
type svcKey struct {
	fam    Family
	proto  Protocol
	addr   [16]byte
	port   uint16
	fwmark uint32
}

func keyOf(s *Service) svcKey {
	if s.FWMark != 0 {
		return svcKey{fam: s.Family, fwmark: s.FWMark}
	}
	k := svcKey{fam: s.Family, proto: s.Protocol, port: s.Port, addr: rawAddr(s.Address)}
	if s.Family == INet {
		clear(k.addr[4:])
	}
	return k
}

// parsePENames maps services to their persistence engine's name.
func parsePENames(msgs []genetlink.Message) (map[svcKey]string, error) {
	out := make(map[svcKey]string)
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("decode IPVS service: %w", err)
		}
		for ad.Next() {
			if ad.Type() != cmdAttrService {
				continue
			}
			var k svcKey
			var pe string
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case svcAttrAF:
						k.fam = Family(nad.Uint16())
					case svcAttrProtocol:
						k.proto = Protocol(nad.Uint16())
					case svcAttrAddr:
						copy(k.addr[:], nad.Bytes())
					case svcAttrPort:
						// Ports travel in network byte order.
						if b := nad.Bytes(); len(b) == 2 {
							k.port = binary.BigEndian.Uint16(b)
						}
					case svcAttrFWMark:
						k.fwmark = nad.Uint32()
					case svcAttrPEName:
						pe = nad.String()
					}
				}
				return nil
			})
			if k.fwmark != 0 {
				k = svcKey{fam: k.fam, fwmark: k.fwmark}
			} else if k.fam == INet {
				clear(k.addr[4:])
			}
			if pe != "" {
				out[k] = pe
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode IPVS service: %w", err)
		}
	}
	return out, nil
}

// parseDaemons decodes IPVS_CMD_GET_DAEMON replies, one per daemon.
func parseDaemons(msgs []genetlink.Message) ([]Daemon, error) {
	var out []Daemon
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, fmt.Errorf("decode IPVS daemon: %w", err)
		}
		for ad.Next() {
			if ad.Type() != cmdAttrDaemon {
				continue
			}
			var d Daemon
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case daemonAttrState:
						d.State = DaemonState(nad.Uint32())
					case daemonAttrMcastIfn:
						d.Interface = nad.String()
					case daemonAttrSyncID:
						d.SyncID = nad.Uint32()
					case daemonAttrSyncMaxLen:
						d.MaxLen = nad.Uint16()
					case daemonAttrGroup:
						if a, ok := netip.AddrFromSlice(nad.Bytes()); ok && a.Is4() {
							d.Group = a
						}
					case daemonAttrGroup6:
						// ipvsadm prefers the IPv4 group when both come.
						if a, ok := netip.AddrFromSlice(nad.Bytes()); ok && !d.Group.Is4() {
							d.Group = a
						}
					case daemonAttrPort:
						d.Port = nad.Uint16()
					case daemonAttrTTL:
						d.TTL = nad.Uint8()
					}
				}
				return nil
			})
			out = append(out, d)
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode IPVS daemon: %w", err)
		}
	}
	// ipvsadm keeps two daemons at most.
	if len(out) > 2 {
		out = out[:2]
	}
	return out, nil
}
