package checks

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// pingOnce is one ping attempt; safe on a namespace's thread (no Fatal).
func pingOnce(p Prober, a netip.Addr, timeout time.Duration) Result {
	t := Target{Addr: netip.AddrPortFrom(a, 0), Server: netip.AddrPortFrom(a, 0)}
	return ProbeOnce(context.Background(), p, t, timeout)
}

// The host's own loopback, with whatever socket the host allows.
func TestPingLoopback(t *testing.T) {
	noLeaks(t)
	c := Check{Server: netip.AddrPortFrom(lo4, 0), Spec: Spec{Type: TypePing}}
	target, err := c.target(c.Spec.Normalized())
	if err != nil {
		t.Fatalf("a ping check needs no port: %v", err)
	}
	p := mustProber(t, c.Spec)
	wantUp(t, ProbeOnce(t.Context(), p, target, 5*time.Second))
	wantUp(t, pingOnce(p, lo6, 5*time.Second))
	// From a source address, too.
	target.Source = netip.MustParseAddr("127.0.0.5")
	wantUp(t, ProbeOnce(t.Context(), p, target, 5*time.Second))
}

// An ICMP socket where ping_group_range lets the daemon's group have one,
// a raw socket where it does not (the default, "1 0"). Each namespace has
// its own range.
func TestPingSocketKinds(t *testing.T) {
	noLeaks(t)
	for _, c := range []struct{ rng, kind, reason string }{
		{"1 0", "raw", "echo reply (raw socket)"},
		{"0 2147483647", "icmp", "echo reply (ICMP socket)"},
	} {
		inNetns(t, map[string]string{"ipv4/ping_group_range": c.rng}, func() {
			p := newPingProber()
			for _, a := range []netip.Addr{lo4, lo6} {
				if r := pingOnce(p, a, 5*time.Second); !r.OK || r.Reason != c.reason {
					t.Errorf("range %q, %s: %+v, want up with %q", c.rng, a, r, c.reason)
				}
			}
			if got, want := p.String(), fmt.Sprintf("ping(v4 %s, v6 %s)", c.kind, c.kind); got != want {
				t.Errorf("range %q: %s, want %s", c.rng, got, want)
			}
		})
	}
}

// icmpResponder answers echo requests on a namespace's loopback in place
// of the kernel (whose replies the test turns off), with what handle makes
// of each request: the ICMP messages to send back.
type icmpResponder struct {
	conn net.PacketConn
	wg   sync.WaitGroup
}

// startResponder must run on the namespace's thread.
func startResponder(v6 bool, handle func(req []byte) [][]byte) (*icmpResponder, error) {
	network, addr := "ip4:icmp", "127.0.0.1"
	if v6 {
		network, addr = "ip6:ipv6-icmp", "::1"
	}
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	r := &icmpResponder{conn: conn}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			if n < 8 || (req[0] != icmpv4Echo && req[0] != icmpv6Echo) {
				continue
			}
			for _, out := range handle(req) {
				conn.WriteTo(out, from)
			}
		}
	}()
	return r, nil
}

func (r *icmpResponder) stop() { r.conn.Close(); r.wg.Wait() }

// icmpMsg builds an ICMP message of type typ with body after the 4-byte
// header, checksummed for ICMPv4 (the kernel fills in ICMPv6's).
func icmpMsg(v6 bool, typ, code byte, body []byte) []byte {
	b := append([]byte{typ, code, 0, 0}, body...)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], ^inetSum(b))
	}
	return b
}

// echoReply answers req, after edit has changed its body (id, seq, data).
func echoReply(v6 bool, req []byte, edit func(body []byte)) []byte {
	body := append([]byte(nil), req[4:]...)
	if edit != nil {
		edit(body)
	}
	typ := byte(icmpv4EchoReply)
	if v6 {
		typ = icmpv6EchoReply
	}
	return icmpMsg(v6, typ, 0, body)
}

// unreachable says that req could not be delivered: the quoted datagram
// is req behind an IP header from and to loopback.
func unreachable(v6 bool, req []byte) []byte {
	var ip []byte
	if v6 {
		ip = make([]byte, 40)
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(req)))
		ip[6], ip[7] = 58, 64
		copy(ip[8:], lo6.AsSlice())
		copy(ip[24:], lo6.AsSlice())
		return icmpMsg(true, icmpv6Unreachable, 3, append(append(make([]byte, 4), ip...), req...))
	}
	ip = make([]byte, 20)
	ip[0] = 4<<4 | 5
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(req)))
	ip[8], ip[9] = 64, 1
	copy(ip[12:], lo4.AsSlice())
	copy(ip[16:], lo4.AsSlice())
	binary.BigEndian.PutUint16(ip[10:], ^inetSum(ip))
	return icmpMsg(false, icmpv4Unreachable, 1, append(append(make([]byte, 4), ip...), req...))
}

// Servers that misbehave: each gives a clean DOWN (or UP where it does
// answer correctly) with both kinds of socket and both families.
func TestPingMisbehaving(t *testing.T) {
	noLeaks(t)
	const short, long = 300 * time.Millisecond, 5 * time.Second
	tests := []struct {
		name    string
		handle  func(v6 bool, req []byte, gaveUp <-chan struct{}) [][]byte // nil: no responder at all; gaveUp is closed once the probe returned
		up      bool
		timeout bool
	}{
		{"silent", nil, false, true},
		{"wrong sequence", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			return [][]byte{echoReply(v6, req, func(b []byte) { b[3]++ })}
		}, false, true},
		{"wrong identifier", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			return [][]byte{echoReply(v6, req, func(b []byte) { b[1]++ })}
		}, false, true},
		{"wrong payload", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			return [][]byte{echoReply(v6, req, func(b []byte) { b[len(b)-1]++ })}
		}, false, true},
		{"garbage", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			out := [][]byte{{0xde, 0xad}, []byte("garbage garbage garbage"), icmpMsg(v6, 42, 7, []byte("xyzw"))}
			if !v6 { // the kernel writes an ICMPv6 checksum itself
				bad := echoReply(v6, req, nil)
				bad[2]++
				out = append(out, bad)
			}
			return out
		}, false, true},
		{"garbage, then the reply", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			return [][]byte{[]byte("garbage garbage"), icmpMsg(v6, 42, 0, []byte("1234")), echoReply(v6, req, nil)}
		}, true, false},
		{"slow", func(v6 bool, req []byte, gaveUp <-chan struct{}) [][]byte {
			<-gaveUp // the reply comes only after the prober gave up on it
			return [][]byte{echoReply(v6, req, nil)}
		}, false, true},
		{"unreachable", func(v6 bool, req []byte, _ <-chan struct{}) [][]byte {
			return [][]byte{unreachable(v6, req)}
		}, false, false},
	}
	for _, kind := range []struct{ name, rng string }{{"raw", "1 0"}, {"icmp", "0 2147483647"}} {
		for _, tc := range tests {
			sysctls := map[string]string{
				"ipv4/ping_group_range":     kind.rng,
				"ipv4/icmp_echo_ignore_all": "1",
				"ipv6/icmp/echo_ignore_all": "1",
			}
			inNetns(t, sysctls, func() {
				for _, v6 := range []bool{false, true} {
					name := fmt.Sprintf("%s socket, %s, v6=%v", kind.name, tc.name, v6)
					var resp *icmpResponder
					gaveUp := make(chan struct{})
					if tc.handle != nil {
						var err error
						resp, err = startResponder(v6, func(req []byte) [][]byte { return tc.handle(v6, req, gaveUp) })
						if err != nil {
							t.Errorf("%s: responder: %v", name, err)
							return
						}
					}
					a := lo4
					if v6 {
						a = lo6
					}
					timeout := long
					if tc.timeout {
						timeout = short
					}
					r := pingOnce(newPingProber(), a, timeout)
					close(gaveUp)
					if resp != nil {
						resp.stop()
					}
					switch {
					case r.OK != tc.up:
						t.Errorf("%s: OK = %v (%s), want %v", name, r.OK, r.Reason, tc.up)
					case r.TimedOut != tc.timeout:
						t.Errorf("%s: TimedOut = %v (%s), want %v", name, r.TimedOut, r.Reason, tc.timeout)
					case !tc.up && !tc.timeout && !strings.Contains(r.Reason, "unreachable") && !strings.Contains(r.Reason, "no route to host"):
						t.Errorf("%s: reason %q, want it to say unreachable", name, r.Reason)
					case !tc.timeout && r.Latency > 2*time.Second:
						t.Errorf("%s: took %v", name, r.Latency)
					}
				}
			})
		}
	}
}

func TestJudgeICMP(t *testing.T) {
	data := []byte("director12345678")
	req := echoRequest(false, 0x1234, 7, data)
	reply := echoReply(false, req, nil)
	if v := judgeICMP(reply, false, true, 0x1234, 7, data); v != icmpReply {
		t.Errorf("reply: %v", v)
	}
	if v := judgeICMP(req, false, true, 0x1234, 7, data); v != icmpOther {
		t.Errorf("our own request taken for %v", v)
	}
	// An ICMP socket's identifier is the kernel's: not compared.
	if v := judgeICMP(reply, false, false, 0x9999, 7, data); v != icmpReply {
		t.Errorf("reply on an ICMP socket: %v", v)
	}
	if v := judgeICMP(reply, false, true, 0x9999, 7, data); v != icmpOther {
		t.Errorf("another identifier on a raw socket: %v", v)
	}
	if v := judgeICMP(unreachable(false, req), false, true, 0x1234, 7, data); v != icmpUnreachable {
		t.Errorf("unreachable: %v", v)
	}
	if v := judgeICMP(unreachable(false, req), false, true, 0x1234, 8, data); v != icmpOther {
		t.Errorf("unreachable about another request: %v", v)
	}
	req6 := echoRequest(true, 0x1234, 7, data)
	if v := judgeICMP(unreachable(true, req6), true, true, 0x1234, 7, data); v != icmpUnreachable {
		t.Errorf("unreachable v6: %v", v)
	}
}
