package labplan

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Ports of the LVSFeatures services on the VIP.
const (
	TunnelPort = 8080 // TCP, tunnel forwarding with every encapsulation
	SIPPort    = 5060 // UDP, ops and the sip persistence engine
)

// Tunnel is one real server of the tunnel service and its encapsulation,
// as keepalived's lvs_method TUN options and as director's tunnel block.
type Tunnel struct {
	Addr       string
	Keepalived string // after "lvs_method TUN"
	Director   string // the real server's tunnel: {...}, "" for the service's
	TunInfo    string // ipvsadm -Ln --tun-info's TunnelInfo column
}

// Tunnels are the tunnel service's real servers: rs1 and rs2, and two
// addresses nobody holds (the kernel only needs a unicast route to them).
// The service's own encapsulation (GUE to 6080 with checksums) is rs1's;
// keepalived starts each real server's lvs_method TUN afresh, so the
// plain TUN of the last one is IPIP, written so for director.
func Tunnels() []Tunnel {
	return []Tunnel{
		{"10.0.0.21", "", "", "gue:6080:+c"},
		{"10.0.0.22", " type gre csum", "{type: gre, checksum: csum}", "gre:+c"},
		{"10.0.0.23", " type gue port 6081 remcsum", "{type: gue, port: 6081, checksum: remcsum}", "gue:6081:r+c"},
		{"10.0.0.24", "", "{type: ipip}", "ipip"},
	}
}

func directorFeatures(b *strings.Builder) {
	fmt.Fprintf(b, "  - name: tunnel\n    vip: %s\n    port: %d\n    protocol: tcp\n    scheduler: rr\n", VIP4.Addr(), TunnelPort)
	b.WriteString("    forwarding: tunnel\n    tunnel: {type: gue, port: 6080, checksum: csum}\n    real_servers:\n")
	for _, t := range Tunnels() {
		if t.Director == "" {
			fmt.Fprintf(b, "      - {address: %s}\n", t.Addr)
		} else {
			fmt.Fprintf(b, "      - {address: %s, tunnel: %s}\n", t.Addr, t.Director)
		}
	}
	fmt.Fprintf(b, "  - name: sip\n    vip: %s\n    port: %d\n    protocol: udp\n    scheduler: rr\n", VIP4.Addr(), SIPPort)
	b.WriteString("    ops: true\n    forwarding: dr\n    persistence: {timeout: 60s, engine: sip}\n    real_servers:\n")
	for _, rs := range []string{RS1, RS2} {
		h, _ := HostByName(rs)
		fmt.Fprintf(b, "      - {address: %s}\n", h.IPv4.Addr())
	}
}

func keepalivedFeatures(b *strings.Builder) {
	fmt.Fprintf(b, "\nvirtual_server %s %d {\n    lb_algo rr\n    lvs_method TUN type gue port 6080 csum\n    protocol TCP\n", VIP4.Addr(), TunnelPort)
	for _, t := range Tunnels() {
		fmt.Fprintf(b, "    real_server %s %d {\n", t.Addr, TunnelPort)
		if t.Keepalived != "" || t.Director != "" {
			fmt.Fprintf(b, "        lvs_method TUN%s\n", t.Keepalived)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(b, "\nvirtual_server %s %d {\n    lb_algo rr\n    lb_kind DR\n    protocol UDP\n    ops\n", VIP4.Addr(), SIPPort)
	b.WriteString("    persistence_timeout 60\n    persistence_engine sip\n")
	for _, rs := range []string{RS1, RS2} {
		h, _ := HostByName(rs)
		fmt.Fprintf(b, "    real_server %s %d {\n    }\n", h.IPv4.Addr(), SIPPort)
	}
	b.WriteString("}\n")
}

// keepalivedDNS renders the DNS service: ops with DNSOps, and with Checks
// a UDP_CHECK sending DNSQueryHex (DNSUDPCheck) or a DNS_CHECK.
func (v *IPVS) keepalivedDNS(b *strings.Builder) {
	fmt.Fprintf(b, "\nvirtual_server %s %d {\n    lb_algo %s\n    lb_kind DR\n    protocol UDP\n", VIP4.Addr(), DNSPort, v.scheduler())
	if v.DNSOps {
		b.WriteString("    ops\n")
	}
	if v.Checks != nil {
		fmt.Fprintf(b, "    delay_loop %s\n", strconv.FormatFloat(v.Checks.Interval.D().Seconds(), 'f', -1, 64))
	}
	for _, rs := range v.realServers() {
		h, _ := HostByName(rs)
		fmt.Fprintf(b, "    real_server %s %d {\n        weight %d\n", h.IPv4.Addr(), DNSPort, v.weight(rs))
		if c := v.Checks; c != nil {
			if v.DNSUDPCheck {
				b.WriteString("        UDP_CHECK {\n")
				c.keepalivedTimers(b)
				fmt.Fprintf(b, "            payload %s\n        }\n", DNSQueryHex())
			} else {
				b.WriteString("        DNS_CHECK {\n")
				c.keepalivedTimers(b)
				fmt.Fprintf(b, "            type A\n            name %s\n        }\n", DNSName)
			}
		}
		b.WriteString("    }\n")
	}
	b.WriteString("}\n")
}

// DNSQueryHex is the UDP checks' payload, in hex: an A query for DNSName
// (id 0x4c42, recursion desired), which the lab's DNS servers answer.
func DNSQueryHex() string {
	q := []byte{0x4c, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split(DNSName, ".") {
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, 1) // type A
	q = binary.BigEndian.AppendUint16(q, 1) // class IN
	return hex.EncodeToString(q)
}
