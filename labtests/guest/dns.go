package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/director-lb/director/labtests/labplan"
)

// startDNS runs, in real server h, a tiny DNS server on UDP :DNSPort
// that answers any A question with the host's own address, so the client
// can tell which real server answered for the VIP. It listens on the VIP
// and on the host's address separately: replies then leave from the
// address the query went to (direct server return needs the VIP as
// source), which a wildcard UDP socket would not guarantee. Once stopped,
// queries get an ICMP port unreachable.
func startDNS(h labplan.Host) (stop func(), err error) {
	var conns []net.PacketConn
	stop = func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for _, addr := range []string{labplan.VIP4Addr, h.IPv4.Addr().String()} {
		c, err := listenPacketIn(h.Name, net.JoinHostPort(addr, strconv.Itoa(labplan.DNSPort)))
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, c)
		go serveDNS(c, h.IPv4.Addr().As4())
	}
	return stop, nil
}

func listenPacketIn(ns, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := inNetns(ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in %s: %w", addr, ns, err)
	}
	return c, nil
}

func serveDNS(c net.PacketConn, self [4]byte) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply, err := dnsAnswer(buf[:n], self); err == nil {
			_, _ = c.WriteTo(reply, from)
		}
	}
}

// dnsAnswer answers the first question of query: A questions with self,
// anything else with an empty NOERROR reply.
func dnsAnswer(query []byte, self [4]byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, fmt.Errorf("parse query: %w", err)
	}
	q, err := p.Question()
	if err != nil {
		return nil, fmt.Errorf("parse question: %w", err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
		if err := b.AResource(rh, dnsmessage.AResource{A: self}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// dnsQuery asks conn (already connected) for name's A record and returns
// the first address answered.
func dnsQuery(conn net.Conn, id uint16, name string, timeout time.Duration) (string, error) {
	qname, err := dnsmessage.NewName(name + ".")
	if err != nil {
		return "", err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return "", err
	}
	if err := b.Question(dnsmessage.Question{Name: qname, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}); err != nil {
		return "", err
	}
	msg, err := b.Finish()
	if err != nil {
		return "", err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(msg); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	var p dnsmessage.Parser
	// On a socket that lives across queries, a late answer to an earlier
	// one may come first: skip it.
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		h, err := p.Start(buf[:n])
		if err != nil {
			return "", err
		}
		if !h.Response {
			return "", errors.New("reply is not a response")
		}
		if h.ID == id {
			break
		}
	}
	if err := p.SkipAllQuestions(); err != nil {
		return "", err
	}
	for {
		rh, err := p.AnswerHeader()
		if err != nil {
			return "", fmt.Errorf("no A answer: %w", err)
		}
		if rh.Type != dnsmessage.TypeA {
			if err := p.SkipAnswer(); err != nil {
				return "", err
			}
			continue
		}
		a, err := p.AResource()
		if err != nil {
			return "", err
		}
		return net.IP(a.A[:]).String(), nil
	}
}

// stepDNSQuery sends Count queries from the client to VIP:DNSPort, each on
// a new socket (a new source port, so IPVS schedules each afresh), and
// lists one line per query: the answered address or "error: ...".
func stepDNSQuery(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	addr := net.JoinHostPort(labplan.VIP4Addr, strconv.Itoa(labplan.DNSPort))
	var lines []string
	failed := 0
	err := inNetns(labplan.Client, func() error {
		for i := 0; i < s.Count && ctx.Err() == nil; i++ {
			ans, err := func() (string, error) {
				conn, err := net.Dial("udp4", addr)
				if err != nil {
					return "", err
				}
				defer conn.Close()
				return dnsQuery(conn, uint16(i+1), labplan.DNSName, 500*time.Millisecond)
			}()
			if err != nil {
				failed++
				ans = "error: " + shortErr(err)
			}
			lines = append(lines, ans)
			time.Sleep(s.Interval.D())
		}
		return nil
	})
	sr.Exec = &labplan.ExecOutput{Stdout: strings.Join(lines, "\n") + "\n"}
	r.log.Info(fmt.Sprintf("%d DNS queries to %s, %d failed", len(lines), addr, failed))
	return err
}

// dnsProbe returns the DNS prober's probe function, for startProber: one
// UDP socket connected to addr, made in the calling thread's namespace,
// and one A query on it per call. A sample's From is the host whose
// address answered.
func dnsProbe(addr string) func() (func(time.Duration) labplan.Sample, func(), error) {
	return func() (func(time.Duration) labplan.Sample, func(), error) {
		conn, err := net.Dial("udp4", addr)
		if err != nil {
			return nil, nil, err
		}
		names := map[string]string{}
		for _, h := range labplan.Hosts() {
			names[h.IPv4.Addr().String()] = h.Name
		}
		var id uint16
		probe := func(timeout time.Duration) labplan.Sample {
			id++
			ans, err := dnsQuery(conn, id, labplan.DNSName, timeout)
			if err != nil {
				return labplan.Sample{Err: shortErr(err)}
			}
			from, ok := names[ans]
			if !ok {
				from = ans
			}
			return labplan.Sample{OK: true, From: from}
		}
		return probe, func() { _ = conn.Close() }, nil
	}
}

func stepServe(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	if r.web == nil {
		return errors.New("no HTTP servers")
	}
	return r.web.set(s.Node, s.Mode, s.Duration.D())
}
