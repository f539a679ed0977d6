package vip

// Helpers that build a two-namespace segment for the tests: "dut" holds the
// Mover's interface, "peer" is a neighbour on the other end of a veth.
// Everything they create is removed in t.Cleanup.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	dutIf   = "seg0"
	peerIf  = "seg1"
	dutMAC  = "02:00:5e:00:00:11"
	peerMAC = "02:00:5e:00:00:02"
	// wrongMAC is what the peer believes the VIP's MAC is before failover.
	wrongMAC = "02:00:5e:00:00:99"
)

type lab struct {
	t        *testing.T
	dutName  string
	peerName string
	dutNS    netns.NsHandle
	peerNS   netns.NsHandle
}

type labOptions struct {
	// noLinkLocal leaves the dut interface without an IPv6 link-local address.
	noLinkLocal bool
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// newLab creates the namespaces, the veth pair (dut seg0 <-> peer seg1) and
// base addresses: dut 10.0.0.11/24, 2001:db8::11/64; peer 10.0.0.2/24,
// 2001:db8::2/64.
func newLab(t *testing.T, opt labOptions) *lab {
	t.Helper()
	requireRoot(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(rnd[:])
	l := &lab{t: t, dutName: "vipt-" + id + "-dut", peerName: "vipt-" + id + "-peer"}
	for _, name := range []string{l.dutName, l.peerName} {
		l.ip("netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
		})
	}
	var err error
	if l.dutNS, err = netns.GetFromName(l.dutName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.dutNS.Close() })
	if l.peerNS, err = netns.GetFromName(l.peerName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.peerNS.Close() })

	l.ip("-n", l.dutName, "link", "add", dutIf, "address", dutMAC, "type", "veth",
		"peer", "name", peerIf, "address", peerMAC, "netns", l.peerName)
	if opt.noLinkLocal {
		l.ip("-n", l.dutName, "link", "set", dutIf, "addrgenmode", "none")
	}
	l.ip("-n", l.dutName, "addr", "add", "10.0.0.11/24", "dev", dutIf)
	l.ip("-n", l.dutName, "addr", "add", "2001:db8::11/64", "dev", dutIf, "nodad")
	l.ip("-n", l.peerName, "addr", "add", "10.0.0.2/24", "dev", peerIf)
	l.ip("-n", l.peerName, "addr", "add", "2001:db8::2/64", "dev", peerIf, "nodad")
	for _, ns := range []string{l.dutName, l.peerName} {
		l.ip("-n", ns, "link", "set", "lo", "up")
	}
	l.ip("-n", l.dutName, "link", "set", dutIf, "up")
	l.ip("-n", l.peerName, "link", "set", peerIf, "up")
	return l
}

// ip runs ip(8) and fails the test on error.
func (l *lab) ip(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs fn on a fresh OS thread switched into ns. The thread stays
// locked, so the Go runtime discards it afterwards instead of reusing a
// thread that is in the wrong namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (l *lab) inDut(fn func() error) error  { return inNS(l.dutNS, fn) }
func (l *lab) inPeer(fn func() error) error { return inNS(l.peerNS, fn) }

// sysctl writes a /proc/sys value inside ns.
func (l *lab) sysctl(ns netns.NsHandle, path, value string) {
	l.t.Helper()
	err := inNS(ns, func() error {
		return os.WriteFile("/proc/sys/"+path, []byte(value+"\n"), 0o644)
	})
	if err != nil {
		l.t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// readSysctl reads a /proc/sys value inside ns.
func (l *lab) readSysctl(ns netns.NsHandle, path string) string {
	l.t.Helper()
	var v string
	err := inNS(ns, func() error {
		b, err := os.ReadFile("/proc/sys/" + path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		l.t.Fatalf("read sysctl %s: %v", path, err)
	}
	return v
}

// handle returns a netlink handle for ns.
func (l *lab) handle(ns netns.NsHandle) *netlink.Handle {
	l.t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(h.Close)
	return h
}

// dutAddrs lists the addresses on the dut interface.
func (l *lab) dutAddrs() []netlink.Addr {
	l.t.Helper()
	h := l.handle(l.dutNS)
	link, err := h.LinkByName(dutIf)
	if err != nil {
		l.t.Fatal(err)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		l.t.Fatal(err)
	}
	return addrs
}

// findAddr returns the dut address equal to ip, if present.
func (l *lab) findAddr(ip netip.Addr) (netlink.Addr, bool) {
	l.t.Helper()
	for _, a := range l.dutAddrs() {
		if got, _ := netip.AddrFromSlice(a.IP); got.Unmap() == ip {
			return a, true
		}
	}
	return netlink.Addr{}, false
}

// setPeerNeigh makes the peer believe ip is at mac, in state nud.
func (l *lab) setPeerNeigh(ip netip.Addr, mac, nud string) {
	l.t.Helper()
	l.ip("-n", l.peerName, "neigh", "replace", ip.String(), "lladdr", mac, "dev", peerIf, "nud", nud)
}

// peerNeigh returns the peer's neighbour entry for ip.
func (l *lab) peerNeigh(ip netip.Addr) (mac string, state int, ok bool) {
	l.t.Helper()
	h := l.handle(l.peerNS)
	link, err := h.LinkByName(peerIf)
	if err != nil {
		l.t.Fatal(err)
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(link.Attrs().Index, family)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, n := range neighs {
		if got, _ := netip.AddrFromSlice(n.IP); got.Unmap() == ip {
			return n.HardwareAddr.String(), n.State, true
		}
	}
	return "", 0, false
}

// waitPeerNeigh waits until the peer's entry for ip points at mac.
func (l *lab) waitPeerNeigh(ip netip.Addr, mac string, within time.Duration) error {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, state, ok := l.peerNeigh(ip)
		if ok && got == mac {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peer neighbour %s: got %q (state %#x, present %v), want %s", ip, got, state, ok, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// announcement is one GARP or NA seen on the wire.
type announcement struct {
	at        time.Time
	kind      string // "garp" or "na"
	op        arp.Operation
	target    netip.Addr // announced address
	src       netip.Addr // ARP sender IP / IPv6 source
	dst       netip.Addr // ARP target IP / IPv6 destination
	srcMAC    string     // Ethernet source
	dstMAC    string     // Ethernet destination
	llAddr    string     // ARP sender hardware address / NA target LLA option
	tha       string     // ARP target hardware address
	router    bool
	solicited bool
	override  bool
	hopLimit  uint8
}

// capture records the announcements arriving at the peer.
type capture struct {
	mu   sync.Mutex
	seen []announcement
	conn *packet.Conn
	done chan struct{}
}

// capturePeer starts capturing GARPs and NAs on the peer interface.
func (l *lab) capturePeer() *capture {
	l.t.Helper()
	c := &capture{done: make(chan struct{})}
	err := l.inPeer(func() error {
		ifi, err := net.InterfaceByName(peerIf)
		if err != nil {
			return err
		}
		c.conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		l.t.Fatalf("capture on peer: %v", err)
	}
	go c.loop()
	l.t.Cleanup(c.stop)
	return c
}

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 2048)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if a, ok := parseAnnouncement(buf[:n]); ok {
			a.at = time.Now()
			c.mu.Lock()
			c.seen = append(c.seen, a)
			c.mu.Unlock()
		}
	}
}

func (c *capture) stop() {
	_ = c.conn.Close()
	<-c.done
}

// matching returns the announcements of kind for target sent by dutMAC.
func (c *capture) matching(kind string, target netip.Addr) []announcement {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []announcement
	for _, a := range c.seen {
		if a.kind == kind && a.target == target && a.srcMAC == dutMAC {
			out = append(out, a)
		}
	}
	return out
}

// waitCount waits until at least n matching announcements arrived.
func (c *capture) waitCount(kind string, target netip.Addr, n int, within time.Duration) []announcement {
	deadline := time.Now().Add(within)
	for {
		got := c.matching(kind, target)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func parseAnnouncement(b []byte) (announcement, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		return announcement{}, false
	}
	a := announcement{srcMAC: f.Source.String(), dstMAC: f.Destination.String()}
	switch f.EtherType {
	case ethernet.EtherTypeARP:
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil || p.SenderIP != p.TargetIP {
			return announcement{}, false
		}
		a.kind, a.op = "garp", p.Operation
		a.target, a.src, a.dst = p.SenderIP, p.SenderIP, p.TargetIP
		a.llAddr, a.tha = p.SenderHardwareAddr.String(), p.TargetHardwareAddr.String()
		return a, true
	case ethernet.EtherTypeIPv6:
		const hdr = 40
		ip := f.Payload
		if len(ip) < hdr || ip[6] != unix.IPPROTO_ICMPV6 {
			return announcement{}, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if len(ip) < hdr+plen {
			return announcement{}, false
		}
		m, err := ndp.ParseMessage(ip[hdr : hdr+plen])
		if err != nil {
			return announcement{}, false
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok {
			return announcement{}, false
		}
		a.kind, a.target = "na", na.TargetAddress
		a.src, _ = netip.AddrFromSlice(ip[8:24])
		a.dst, _ = netip.AddrFromSlice(ip[24:40])
		a.hopLimit = ip[7]
		a.router, a.solicited, a.override = na.Router, na.Solicited, na.Override
		for _, o := range na.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
				a.llAddr = lla.Addr.String()
			}
		}
		return a, true
	}
	return announcement{}, false
}
