package checks

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func mustName(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }

// answer is the tiny test zone: the reply to one question.
func answer(q dnsmessage.Question) dnsmessage.Message {
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{Response: true, Authoritative: true},
		Questions: []dnsmessage.Question{q},
	}
	in := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
	add := func(b dnsmessage.ResourceBody) {
		m.Answers = append(m.Answers, dnsmessage.Resource{Header: in, Body: b})
	}
	switch name := strings.ToLower(q.Name.String()); {
	case name == "example.test." && q.Type == dnsmessage.TypeA:
		// A CNAME first, as resolvers often answer: it must be skipped.
		m.Answers = append(m.Answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET},
			Body:   &dnsmessage.CNAMEResource{CNAME: mustName("alias.example.test.")},
		})
		add(&dnsmessage.AResource{A: [4]byte{192, 0, 2, 10}})
		add(&dnsmessage.AResource{A: [4]byte{192, 0, 2, 11}})
	case name == "example.test." && q.Type == dnsmessage.TypeAAAA:
		add(&dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::10").As16()})
	case name == "example.test." && q.Type == dnsmessage.TypeSOA:
		add(&dnsmessage.SOAResource{NS: mustName("ns1.example.test."), MBox: mustName("hostmaster.example.test."),
			Serial: 2025010101, Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: 60})
	case name == "example.test." && q.Type == dnsmessage.TypeMX:
		add(&dnsmessage.MXResource{Pref: 10, MX: mustName("mx.example.test.")})
	case name == "example.test." && q.Type == dnsmessage.TypeTXT:
		add(&dnsmessage.TXTResource{TXT: []string{"v=spf1", "-all"}})
	case name == "example.test.":
		// NOERROR, no data.
	case name == "stray.test." && q.Type == dnsmessage.TypeA:
		add(&dnsmessage.AResource{A: [4]byte{192, 0, 2, 20}})
	case name == "refused.test.":
		m.RCode = dnsmessage.RCodeRefused
	case name == "trunc.test.":
		m.Truncated = true
	case name == "wrongq.test.":
		m.Questions[0].Name = mustName("other.test.")
	default:
		m.RCode = dnsmessage.RCodeNameError
	}
	return m
}

// reply parses a query and packs the zone's reply to it.
func reply(t *testing.T, query []byte) (resp []byte, stray bool) {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		t.Errorf("server: bad query: %v", err)
		return nil, false
	}
	a := answer(m.Questions[0])
	a.ID = m.ID
	out, err := a.Pack()
	if err != nil {
		t.Errorf("server: pack: %v", err)
	}
	return out, strings.EqualFold(m.Questions[0].Name.String(), "stray.test.")
}

func dnsUDPServer(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			resp, stray := reply(t, buf[:n])
			if stray {
				// A failing reply with another ID and a runt arrive first:
				// the check must skip them and wait for the real one.
				var other dnsmessage.Message
				other.Unpack(resp)
				other.ID++
				other.RCode = dnsmessage.RCodeServerFailure
				b, _ := other.Pack()
				pc.WriteTo(b, from)
				pc.WriteTo([]byte{1}, from)
			}
			pc.WriteTo(resp, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return addrOf(t, pc.LocalAddr())
}

func dnsTCPServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln := listen(t)
	stop := serveConns(ln, func(c net.Conn) {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp, _ := reply(t, q)
		c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp))))
		c.Write(resp)
	})
	t.Cleanup(stop)
	return addrOf(t, ln.Addr())
}

func TestDNS(t *testing.T) {
	noLeaks(t)
	servers := map[string]netip.AddrPort{"udp": dnsUDPServer(t), "tcp": dnsTCPServer(t)}
	tests := []struct {
		spec   DNSSpec
		reason string // empty: up
	}{
		{DNSSpec{Type: "A", Name: "example.test", Expect: "192.0.2.11"}, ""},
		{DNSSpec{Type: "a", Name: "EXAMPLE.test.", Expect: "192.0.2.10"}, ""},
		{DNSSpec{Type: "A", Name: "example.test", Expect: "192.0.2.99"}, `A answers 192.0.2.10; 192.0.2.11, want "192.0.2.99"`},
		{DNSSpec{Type: "AAAA", Name: "example.test", Expect: "2001:db8:0::10"}, ""},
		{DNSSpec{Type: "SOA", Name: "example.test", Expect: "ns1.example.test. hostmaster"}, ""},
		{DNSSpec{Type: "SOA", Name: "example.test", Expect: "2025010101"}, ""},
		{DNSSpec{Type: "MX", Name: "example.test", Expect: "10 mx.example.test."}, ""},
		{DNSSpec{Type: "TXT", Name: "example.test", Expect: "SPF1"}, ""},
		{DNSSpec{Type: "NS", Name: "example.test"}, ""},
		{DNSSpec{Type: "NS", Name: "example.test", Expect: "ns1"}, `no NS answer, want "ns1"`},
		{DNSSpec{Type: "A", Name: "missing.test"}, "DNS rcode NXDOMAIN, want NOERROR"},
		{DNSSpec{Name: "refused.test"}, "DNS rcode REFUSED, want NOERROR"},
		{DNSSpec{Type: "A", Name: "wrongq.test"}, "reply is for other.test. A, want wrongq.test. A"},
		{DNSSpec{Type: "A", Name: "trunc.test"}, ""}, // RCODE alone is enough
	}
	for proto, addr := range servers {
		for _, tc := range tests {
			tc.spec.Protocol = proto
			r := probe(t, mustProber(t, Spec{Type: TypeDNS, DNS: tc.spec}), addr, 5*time.Second)
			if r.OK != (tc.reason == "") || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("%s %+v: got ok=%v %q, want %q", proto, tc.spec, r.OK, r.Reason, tc.reason)
			}
		}
	}
	r := probe(t, mustProber(t, Spec{Type: TypeDNS, DNS: DNSSpec{Type: "A", Name: "trunc.test", Expect: "192.0.2.1"}}), servers["udp"], 5*time.Second)
	wantDown(t, r, "DNS reply truncated; use protocol tcp")
	// Stray datagrams are skipped, not taken for the answer.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeDNS, DNS: DNSSpec{Type: "A", Name: "stray.test", Expect: "192.0.2.20"}}), servers["udp"], 5*time.Second))
}

func TestDNSSilentUDP(t *testing.T) {
	noLeaks(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := addrOf(t, pc.LocalAddr())
	r := probe(t, mustProber(t, Spec{Type: TypeDNS}), addr, 200*time.Millisecond)
	wantDown(t, r, "timeout after 200ms (wait for reply)")
	if r.Refused {
		t.Error("a timeout is marked Refused")
	}
	pc.Close()
	// Nobody listening: ICMP port unreachable surfaces as a refusal.
	r = probe(t, mustProber(t, Spec{Type: TypeDNS}), addr, 5*time.Second)
	wantDown(t, r, "connection refused")
	if !r.Refused {
		t.Error("ICMP port unreachable is not marked Refused")
	}
}

func TestDNSSpecErrors(t *testing.T) {
	for _, s := range []DNSSpec{{Protocol: "sctp"}, {Type: "BOGUS"}, {Name: strings.Repeat("a", 64) + ".test"}} {
		if _, err := NewProber(Spec{Type: TypeDNS, DNS: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

// FuzzDNSJudge feeds arbitrary replies to the answer handling: it must not
// panic, and must accept only a response to our question with NOERROR and
// (for an address expectation) that address among the answers.
func FuzzDNSJudge(f *testing.F) {
	q := dnsmessage.Question{Name: mustName("example.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	for _, qt := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeSOA, dnsmessage.TypeMX, dnsmessage.TypeTXT} {
		q2 := q
		q2.Type = qt
		m := answer(q2)
		m.ID = 0x1234
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0x12, 0x34})
	f.Add([]byte{0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	p, err := newDNSProber(DNSSpec{Type: "A", Name: "example.test", Expect: "192.0.2.10"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, tcp := range []bool{false, true} {
			r, ours := p.judge(0x1234, msg, tcp)
			if !ours {
				if r.OK {
					t.Fatal("accepted a reply that is not ours")
				}
				continue
			}
			if !r.OK {
				continue
			}
			var m dnsmessage.Message
			if err := m.Unpack(msg); err != nil {
				// judge stops at the matching answer; the rest may be junk.
				var ps dnsmessage.Parser
				h, err := ps.Start(msg)
				if err != nil || !h.Response || h.RCode != dnsmessage.RCodeSuccess {
					t.Fatalf("accepted a bad reply: %v", err)
				}
				continue
			}
			if !m.Response || m.RCode != dnsmessage.RCodeSuccess || m.ID != 0x1234 {
				t.Fatalf("accepted %+v", m.Header)
			}
			found := false
			for _, a := range m.Answers {
				if ar, ok := a.Body.(*dnsmessage.AResource); ok && ar.A == [4]byte{192, 0, 2, 10} {
					found = true
				}
			}
			if !found {
				t.Fatalf("accepted a reply without 192.0.2.10: %+v", m.Answers)
			}
		}
	})
}

func TestDNSQueryWire(t *testing.T) {
	p, err := newDNSProber(DNSSpec{Type: "AAAA", Name: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	pkt := p.packet(0xbeef, true)
	if int(binary.BigEndian.Uint16(pkt)) != len(pkt)-2 {
		t.Fatalf("length prefix %d for %d bytes", binary.BigEndian.Uint16(pkt), len(pkt)-2)
	}
	if err := m.Unpack(pkt[2:]); err != nil {
		t.Fatal(err)
	}
	if m.ID != 0xbeef || m.Response || !m.RecursionDesired || len(m.Questions) != 1 ||
		m.Questions[0].Name.String() != "example.test." || m.Questions[0].Type != dnsmessage.TypeAAAA {
		t.Fatalf("query %+v", m)
	}
}
