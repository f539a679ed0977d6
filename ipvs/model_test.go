package ipvs

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestServiceKeyString(t *testing.T) {
	for _, c := range []struct {
		k    ServiceKey
		want string
	}{
		{tcp("10.0.0.100", 80), "TCP 10.0.0.100:80"},
		{key(UDP, "2001:db8::1", 53), "UDP [2001:db8::1]:53"},
		{key(SCTP, "10.0.0.1", 3868), "SCTP 10.0.0.1:3868"},
		{ServiceKey{Family: 4, FWMark: 7}, "FWM 7"},
		{ServiceKey{Family: 6, FWMark: 7}, "FWM 7 IPv6"},
	} {
		if got := c.k.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.k, got, c.want)
		}
	}
}

func TestNormalizeDefaults(t *testing.T) {
	s := Service{
		Key:          ServiceKey{Family: 4, Protocol: TCP, Addr: netip.MustParseAddr("::ffff:10.0.0.100"), Port: 80},
		Persistent:   true,
		Destinations: []Destination{dst("::ffff:10.0.0.22", 0, 1), dst("10.0.0.21", 8080, 1)},
	}
	n, err := normalize(s)
	if err != nil {
		t.Fatal(err)
	}
	if n.Scheduler != "wlc" || n.Timeout != DefaultPersistTimeout || n.Netmask != 32 {
		t.Errorf("defaults: %q %s %d", n.Scheduler, n.Timeout, n.Netmask)
	}
	if n.Key.Addr != netip.MustParseAddr("10.0.0.100") {
		t.Errorf("service address not unmapped: %s", n.Key.Addr)
	}
	if got := []netip.AddrPort{n.Destinations[0].AddrPort(), n.Destinations[1].AddrPort()}; got[0] != ap("10.0.0.21:8080") || got[1] != ap("10.0.0.22:80") {
		t.Errorf("destinations not unmapped, defaulted and sorted: %v", got)
	}
	if s.Destinations[0].Port != 0 {
		t.Error("normalize changed its argument")
	}

	v6 := svc(tcp("2001:db8::1", 80))
	v6.Persistent = true
	if n, err := normalize(v6); err != nil || n.Netmask != 128 {
		t.Errorf("v6 netmask %d %v", n.Netmask, err)
	}
}

func TestNormalizeRejects(t *testing.T) {
	ok := func() Service { return webSvc(1, 1) }
	for _, c := range []struct {
		want string
		mod  func(*Service)
	}{
		{"family must be 4 or 6", func(s *Service) { s.Key.Family = 0 }},
		{"is not IPv6", func(s *Service) { s.Key.Family = 6 }},
		{"address missing", func(s *Service) { s.Key.Addr = netip.Addr{} }},
		{"has a zone", func(s *Service) { s.Key = tcp("fe80::1%eth0", 80) }},
		{"not TCP, UDP or SCTP", func(s *Service) { s.Key.Protocol = 1 }},
		{"no address, port or protocol", func(s *Service) { s.Key.FWMark = 3 }},
		{"unknown scheduler", func(s *Service) { s.Scheduler = "fastest" }},
		{"only one-packet and scheduler flags", func(s *Service) { s.Flags = flagPersistent }},
		{"whole seconds", func(s *Service) { s.Persistent, s.Timeout = true, 1500*time.Millisecond }},
		{"netmask must be 1-32", func(s *Service) { s.Persistent, s.Netmask = true, 33 }},
		{"not persistent", func(s *Service) { s.Timeout = time.Minute }},
		{"not persistent", func(s *Service) { s.Netmask = 24 }},
		{"port 0 needs a persistent", func(s *Service) { s.Key.Port = 0 }},
		{"weight -1 out of range", func(s *Service) { s.Destinations[0].Weight = -1 }},
		{"weight 65536 out of range", func(s *Service) { s.Destinations[0].Weight = 65536 }},
		{"lower threshold 5 above upper threshold 0", func(s *Service) { s.Destinations[0].Lower = 5 }},
		{"forwarding Local", func(s *Service) { s.Destinations[0].Forward = Local }},
		{"needs IPv4 destinations", func(s *Service) { s.Destinations[0].Addr = netip.MustParseAddr("2001:db8::1") }},
		{"listed twice", func(s *Service) { s.Destinations[1] = s.Destinations[0] }},
		{"listed twice", func(s *Service) { s.Destinations[1] = s.Destinations[0]; s.Destinations[1].Port = 0 }},
		{"address missing", func(s *Service) { s.Destinations[0].Addr = netip.IPv4Unspecified() }},
		{"sorry server 10.0.0.21:80 is also a destination", func(s *Service) { d := dst("10.0.0.21", 0, 1); s.Sorry = &d }},
		{"sorry server: weight", func(s *Service) { d := dst("10.0.0.9", 0, -3); s.Sorry = &d }},
		{"one-packet scheduling is for UDP", func(s *Service) { s.Flags = FlagOnePacket }},
		{"unknown persistence engine", func(s *Service) { s.Key.Protocol, s.Persistent, s.PE = UDP, true, "rtsp" }},
		{"sip needs a persistent service", func(s *Service) { s.Key.Protocol, s.PE = UDP, "sip" }},
		{"sip is for UDP and firewall-mark", func(s *Service) { s.Persistent, s.PE = true, "sip" }},
		{"tunnel options (gue) with Route", func(s *Service) { s.Destinations[0].Encap = Encap{Type: TunnelGUE, Port: 6080} }},
		{"tunnel options (ipip) with Masq", func(s *Service) {
			s.Destinations[0].Forward, s.Destinations[0].Encap.Checksum = Masq, TunnelChecksumOn
		}},
		{"GUE tunnel needs a port", func(s *Service) { s.Destinations[0].Forward, s.Destinations[0].Encap.Type = Tunnel, TunnelGUE }},
		{"only GUE tunnels have a port", func(s *Service) {
			s.Destinations[0].Forward, s.Destinations[0].Encap = Tunnel, Encap{Type: TunnelGRE, Port: 1}
		}},
		{"IPIP tunnel has no checksum option", func(s *Service) {
			s.Destinations[0].Forward, s.Destinations[0].Encap.Checksum = Tunnel, TunnelChecksumOn
		}},
		{"remote checksum offload is for GUE", func(s *Service) {
			s.Destinations[0].Forward, s.Destinations[0].Encap = Tunnel, Encap{Type: TunnelGRE, Checksum: TunnelRemoteChecksum}
		}},
		{"csum-flags-3 is not", func(s *Service) {
			s.Destinations[0].Forward, s.Destinations[0].Encap = Tunnel, Encap{Type: TunnelGRE, Checksum: 3}
		}},
		{"tunnel type tun-3", func(s *Service) { s.Destinations[0].Forward, s.Destinations[0].Encap.Type = Tunnel, 3 }},
	} {
		s := ok()
		c.mod(&s)
		_, err := normalize(s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
		}
	}
	// Tunnelling may change family.
	s := ok()
	s.Destinations[0] = Destination{Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Weight: 1, Forward: Tunnel}
	if _, err := normalize(s); err != nil {
		t.Errorf("tunnel to IPv6: %v", err)
	}
}

// What ipvsadm accepts of ops, pe sip and tunnel options, normalize does.
func TestNormalizeAcceptsLVSFeatures(t *testing.T) {
	tun := func(e Encap) Destination {
		return Destination{Addr: netip.MustParseAddr("10.0.0.21"), Weight: 1, Forward: Tunnel, Encap: e}
	}
	for _, s := range []Service{
		{Key: key(UDP, "10.0.0.100", 53), Flags: FlagOnePacket},
		{Key: ServiceKey{Family: 6, FWMark: 7}, Flags: FlagOnePacket},
		{Key: key(UDP, "10.0.0.100", 5060), Persistent: true, PE: "sip", Flags: FlagOnePacket},
		{Key: ServiceKey{Family: 4, FWMark: 7}, Persistent: true, PE: "sip"},
		{Key: web, Destinations: []Destination{tun(Encap{Type: TunnelGUE, Port: 6080, Checksum: TunnelRemoteChecksum})}},
		{Key: web, Destinations: []Destination{tun(Encap{Type: TunnelGUE, Port: 6080})}},
		{Key: web, Destinations: []Destination{tun(Encap{Type: TunnelGRE, Checksum: TunnelChecksumOn})}},
		{Key: web, Destinations: []Destination{tun(Encap{Type: TunnelGRE})}},
	} {
		n, err := normalize(s)
		if err != nil {
			t.Errorf("%s: %v", s.Key, err)
			continue
		}
		if n.PE != s.PE || n.Flags != s.Flags || (len(s.Destinations) > 0 && n.Destinations[0].Encap != s.Destinations[0].Encap) {
			t.Errorf("%s: normalized to %+v", s.Key, n)
		}
	}
}

func TestNormalizeAllRejectsDuplicateKeys(t *testing.T) {
	_, err := normalizeAll([]Service{webSvc(1, 1), webSvc(2, 2)})
	if err == nil || !strings.Contains(err.Error(), "service 1 (TCP 10.0.0.100:80): listed twice") {
		t.Errorf("got %v", err)
	}
}

func TestEffectiveSorry(t *testing.T) {
	sorry := dst("10.0.0.250", 80, 0)
	s := webSvc(0, 0)
	s.Sorry = &sorry
	eff := s.Effective()
	if len(eff) != 3 || eff[2].Addr != sorry.Addr || eff[2].Weight != 1 {
		t.Errorf("all weights 0: %v", eff)
	}
	if sorry.Weight != 0 || len(s.Destinations) != 2 {
		t.Error("Effective changed its receiver")
	}
	s.Destinations[1].Weight = 1
	if eff := s.Effective(); len(eff) != 2 {
		t.Errorf("a live server: %v", eff)
	}
	s.Destinations = nil
	sorry.Weight = 5
	if eff := s.Effective(); len(eff) != 1 || eff[0].Weight != 5 {
		t.Errorf("no servers: %v", eff)
	}
	if eff := webSvc(0, 0).Effective(); len(eff) != 2 {
		t.Errorf("no sorry server: %v", eff)
	}
}
