package checks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSSpec configures a DNS check (keepalived's DNS_CHECK): one query, and
// the reply must have RCODE NOERROR and, with Expect, an answer of the
// queried type that is that address or contains that text.
type DNSSpec struct {
	// Protocol is "udp" (default) or "tcp".
	Protocol string `json:"protocol,omitempty"`
	// Type is the query type: A, AAAA, NS, CNAME, SOA, PTR, MX, TXT or SRV;
	// SOA by default, as in keepalived.
	Type string `json:"type,omitempty"`
	// Name is the name to query; "." by default, as in keepalived.
	Name string `json:"name,omitempty"`
	// Expect, if set, is an address that an A/AAAA answer must equal, or
	// text that an answer's presentation (an SOA's "ns mbox serial ...",
	// an MX's "10 mx.example.") must contain, ignoring case.
	Expect string `json:"expect,omitempty"`
}

var dnsTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "AAAA": dnsmessage.TypeAAAA, "NS": dnsmessage.TypeNS,
	"CNAME": dnsmessage.TypeCNAME, "SOA": dnsmessage.TypeSOA, "PTR": dnsmessage.TypePTR,
	"MX": dnsmessage.TypeMX, "TXT": dnsmessage.TypeTXT, "SRV": dnsmessage.TypeSRV,
}

// maxUDPReply bounds the datagram read: we send no EDNS option, so a
// well-behaved server answers in 512 bytes or sets TC.
const maxUDPReply = 4 << 10

type dnsProber struct {
	tcp      bool
	question dnsmessage.Question
	query    []byte // ID 0; patched per probe
	expect   string
	addr     netip.Addr // Expect as an address
}

func newDNSProber(s DNSSpec) (*dnsProber, error) {
	p := &dnsProber{expect: strings.ToLower(s.Expect)}
	switch strings.ToLower(s.Protocol) {
	case "", "udp":
	case "tcp":
		p.tcp = true
	default:
		return nil, fmt.Errorf("protocol %q: want udp or tcp", s.Protocol)
	}
	typ := "SOA"
	if s.Type != "" {
		typ = strings.ToUpper(s.Type)
	}
	qtype, ok := dnsTypes[typ]
	if !ok {
		return nil, fmt.Errorf("type %q: want one of A, AAAA, NS, CNAME, SOA, PTR, MX, TXT, SRV", s.Type)
	}
	name := s.Name
	if name == "" {
		name = "."
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", s.Name, err)
	}
	p.question = dnsmessage.Question{Name: qname, Type: qtype, Class: dnsmessage.ClassINET}
	if a, err := netip.ParseAddr(s.Expect); err == nil {
		p.addr = a.Unmap()
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	if err := b.Question(p.question); err != nil {
		return nil, fmt.Errorf("build query for %q: %w", name, err)
	}
	if p.query, err = b.Finish(); err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return p, nil
}

func (p *dnsProber) Probe(ctx context.Context, t Target) Result {
	network := "udp"
	if p.tcp {
		network = "tcp"
	}
	c, err := dial(ctx, network, t)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	id := uint16(rand.Uint32())
	if p.tcp {
		return p.overTCP(c, id)
	}
	return p.overUDP(c, id)
}

func (p *dnsProber) packet(id uint16, lengthPrefix bool) []byte {
	off := 0
	if lengthPrefix {
		off = 2
	}
	q := make([]byte, off+len(p.query))
	copy(q[off:], p.query)
	binary.BigEndian.PutUint16(q[off:], id)
	if lengthPrefix {
		binary.BigEndian.PutUint16(q, uint16(len(p.query)))
	}
	return q
}

func (p *dnsProber) overUDP(c io.ReadWriter, id uint16) Result {
	if _, err := c.Write(p.packet(id, false)); err != nil {
		return ioFailure("send query", err)
	}
	buf := make([]byte, maxUDPReply)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return ioFailure("wait for reply", err)
		}
		// Datagrams that are not the reply to this query (late replies to
		// an earlier attempt, strays) are skipped until the deadline.
		if r, ours := p.judge(id, buf[:n], false); ours {
			return r
		}
	}
}

func (p *dnsProber) overTCP(c io.ReadWriter, id uint16) Result {
	if _, err := c.Write(p.packet(id, true)); err != nil {
		return ioFailure("send query", err)
	}
	var lenbuf [2]byte
	if _, err := io.ReadFull(c, lenbuf[:]); err != nil {
		return ioFailure("wait for reply", err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(lenbuf[:]))
	if _, err := io.ReadFull(c, msg); err != nil {
		return ioFailure("read reply", err)
	}
	r, ours := p.judge(id, msg, true)
	if !ours {
		return failure("DNS reply does not carry the query's ID")
	}
	return r
}

// judge decides whether msg answers query id as the check wants. ours is
// false when msg is not a reply to that query at all.
func (p *dnsProber) judge(id uint16, msg []byte, overTCP bool) (r Result, ours bool) {
	if len(msg) < 2 || binary.BigEndian.Uint16(msg) != id {
		return Result{}, false
	}
	var ps dnsmessage.Parser
	h, err := ps.Start(msg)
	if err != nil {
		return failure("malformed DNS reply: %v", err), true
	}
	if !h.Response {
		return failure("DNS message is not a response"), true
	}
	q, err := ps.Question()
	if err != nil {
		return failure("malformed DNS reply question: %v", err), true
	}
	if q.Type != p.question.Type || q.Class != p.question.Class ||
		!strings.EqualFold(q.Name.String(), p.question.Name.String()) {
		return failure("reply is for %s %s, want %s %s", q.Name, typeName(q.Type), p.question.Name, typeName(p.question.Type)), true
	}
	if err := ps.SkipAllQuestions(); err != nil {
		return failure("malformed DNS reply question: %v", err), true
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return failure("DNS rcode %s, want NOERROR", rcodeName(h.RCode)), true
	}
	if p.expect == "" {
		return success("NOERROR"), true
	}
	if h.Truncated && !overTCP {
		return failure("DNS reply truncated; use protocol tcp"), true
	}
	var seen []string
	for {
		rh, err := ps.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return failure("malformed DNS answer: %v", err), true
		}
		if rh.Type != p.question.Type || rh.Class != p.question.Class {
			if err := ps.SkipAnswer(); err != nil {
				return failure("malformed DNS answer: %v", err), true
			}
			continue
		}
		text, addr, err := presentAnswer(&ps, rh.Type)
		if err != nil {
			return failure("malformed DNS answer: %v", err), true
		}
		if (p.addr.IsValid() && addr == p.addr) || strings.Contains(strings.ToLower(text), p.expect) {
			return success("answer %s", text), true
		}
		if len(seen) < 3 {
			seen = append(seen, text)
		}
	}
	if len(seen) == 0 {
		return failure("no %s answer, want %q", typeName(p.question.Type), p.expect), true
	}
	return failure("%s answers %s, want %q", typeName(p.question.Type), strings.Join(seen, "; "), p.expect), true
}

// presentAnswer parses the current answer's body into text close to zone
// file syntax, and an address for A and AAAA.
func presentAnswer(ps *dnsmessage.Parser, t dnsmessage.Type) (string, netip.Addr, error) {
	switch t {
	case dnsmessage.TypeA:
		r, err := ps.AResource()
		a := netip.AddrFrom4(r.A)
		return a.String(), a, err
	case dnsmessage.TypeAAAA:
		r, err := ps.AAAAResource()
		a := netip.AddrFrom16(r.AAAA).Unmap()
		return a.String(), a, err
	case dnsmessage.TypeNS:
		r, err := ps.NSResource()
		return r.NS.String(), netip.Addr{}, err
	case dnsmessage.TypeCNAME:
		r, err := ps.CNAMEResource()
		return r.CNAME.String(), netip.Addr{}, err
	case dnsmessage.TypePTR:
		r, err := ps.PTRResource()
		return r.PTR.String(), netip.Addr{}, err
	case dnsmessage.TypeMX:
		r, err := ps.MXResource()
		return fmt.Sprintf("%d %s", r.Pref, r.MX), netip.Addr{}, err
	case dnsmessage.TypeSOA:
		r, err := ps.SOAResource()
		return fmt.Sprintf("%s %s %d %d %d %d %d", r.NS, r.MBox, r.Serial, r.Refresh, r.Retry, r.Expire, r.MinTTL), netip.Addr{}, err
	case dnsmessage.TypeTXT:
		r, err := ps.TXTResource()
		return strings.Join(r.TXT, " "), netip.Addr{}, err
	case dnsmessage.TypeSRV:
		r, err := ps.SRVResource()
		return fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, r.Target), netip.Addr{}, err
	}
	return "", netip.Addr{}, ps.SkipAnswer()
}

func typeName(t dnsmessage.Type) string {
	for name, v := range dnsTypes {
		if v == t {
			return name
		}
	}
	return fmt.Sprintf("TYPE%d", uint16(t))
}

func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return fmt.Sprintf("RCODE%d", uint16(r))
}
