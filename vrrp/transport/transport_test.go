package transport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// advert is a VRRP-looking payload. Bytes 6-7 (where VRRP keeps its
// checksum) are deliberately wrong, so any kernel checksum handling would
// show up as a rejected or rewritten packet.
var advert = []byte{0x31, 0x2a, 0x64, 0x01, 0x00, 0x64, 0xde, 0xad, 10, 99, 0, 100}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// checkFrame compares the fields the IP layer reports.
func checkFrame(t *testing.T, f Frame, src, dst netip.Addr, ttl, ifIndex int, payload []byte) {
	t.Helper()
	if f.Src != src {
		t.Errorf("Src = %s, want %s", f.Src, src)
	}
	if f.Dst != dst {
		t.Errorf("Dst = %s, want %s", f.Dst, dst)
	}
	if f.TTL != ttl {
		t.Errorf("TTL = %d, want %d", f.TTL, ttl)
	}
	if f.IfIndex != ifIndex {
		t.Errorf("IfIndex = %d, want %d", f.IfIndex, ifIndex)
	}
	if !bytes.Equal(f.Payload, payload) {
		t.Errorf("Payload = %x, want %x", f.Payload, payload)
	}
}

func TestMulticastGroup(t *testing.T) {
	if g := MulticastGroup(4); g != addr("224.0.0.18") {
		t.Errorf("MulticastGroup(4) = %s", g)
	}
	if g := MulticastGroup(6); g != addr("ff02::12") {
		t.Errorf("MulticastGroup(6) = %s", g)
	}
	if g := MulticastGroup(5); g.IsValid() {
		t.Errorf("MulticastGroup(5) = %s, want invalid", g)
	}
}

func TestIPv4Multicast(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 4, Multicast: true})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4, Multicast: true})
	if got := a.Source(); got != addr("10.99.0.1") {
		t.Fatalf("default IPv4 Source = %s, want 10.99.0.1", got)
	}

	if err := a.WriteTo(advert, MulticastGroup(4)); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, b)
	checkFrame(t, f, addr("10.99.0.1"), addr("224.0.0.18"), 255, l.idxB, advert)
	expectNothing(t, a, "sender with multicast loop off")
}

func TestIPv4UnicastExplicitSource(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// A secondary address proves the source is the one asked for and not
	// whatever routing would pick (the primary, 10.99.0.1).
	l.addAddr(t, l.hA, ifA, "10.99.0.11/24")
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 4, Source: addr("10.99.0.11")})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4})
	if a.Source() != addr("10.99.0.11") {
		t.Fatalf("Source = %s, want 10.99.0.11", a.Source())
	}

	if err := a.WriteTo(advert, addr("10.99.0.2")); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, b)
	checkFrame(t, f, addr("10.99.0.11"), addr("10.99.0.2"), 255, l.idxB, advert)

	// And back, with B's default source.
	if err := b.WriteTo(advert[:8], addr("10.99.0.11")); err != nil {
		t.Fatal(err)
	}
	f = mustRead(t, a)
	checkFrame(t, f, addr("10.99.0.2"), addr("10.99.0.11"), 255, l.idxA, advert[:8])
}

func TestIPv6Multicast(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 6, Multicast: true})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 6, Multicast: true})
	if got := a.Source(); got != addr("fe80::1") {
		t.Fatalf("default IPv6 Source = %s, want the link-local fe80::1", got)
	}
	// Read the option directly: x/net's Checksum() reads -1 as a uint32.
	if off, err := rawChecksumOffset(b); err != nil || off != -1 {
		t.Fatalf("IPV6_CHECKSUM = %d (err %v), want -1 (off)", off, err)
	}

	if err := a.WriteTo(advert, MulticastGroup(6)); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, b)
	checkFrame(t, f, addr("fe80::1"), addr("ff02::12"), 255, l.idxB, advert)
	expectNothing(t, a, "sender with multicast loop off")
}

func TestIPv6Unicast(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.addAddr(t, l.hA, ifA, "fe80::11/64")
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 6, Source: addr("fe80::11")})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 6})

	if err := a.WriteTo(advert, addr("fe80::2")); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, b)
	checkFrame(t, f, addr("fe80::11"), addr("fe80::2"), 255, l.idxB, advert)

	if err := b.WriteTo(advert[:8], addr("fe80::11")); err != nil {
		t.Fatal(err)
	}
	f = mustRead(t, a)
	checkFrame(t, f, addr("fe80::2"), addr("fe80::11"), 255, l.idxA, advert[:8])
}

// A packet from an ordinary raw socket keeps its TTL of 64, so the caller
// can tell it did not come from a VRRP speaker on the link.
func TestForeignTTLReported(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	b4 := listen(t, l.nsB, Options{Interface: ifB, Family: 4})
	b6 := listen(t, l.nsB, Options{Interface: ifB, Family: 6})

	err := inNS(l.nsA, func() error {
		pc, err := net.ListenPacket("ip4:112", "10.99.0.1")
		if err != nil {
			return err
		}
		defer pc.Close()
		if err := ipv4.NewPacketConn(pc).SetTTL(64); err != nil {
			return err
		}
		if _, err := pc.WriteTo(advert, &net.IPAddr{IP: net.ParseIP("10.99.0.2")}); err != nil {
			return fmt.Errorf("send v4: %w", err)
		}

		pc6, err := net.ListenPacket("ip6:112", "fe80::1%"+ifA)
		if err != nil {
			return err
		}
		defer pc6.Close()
		if err := ipv6.NewPacketConn(pc6).SetHopLimit(64); err != nil {
			return err
		}
		if _, err := pc6.WriteTo(advert, &net.IPAddr{IP: net.ParseIP("fe80::2"), Zone: ifA}); err != nil {
			return fmt.Errorf("send v6: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, mustRead(t, b4), addr("10.99.0.1"), addr("10.99.0.2"), 64, l.idxB, advert)
	checkFrame(t, mustRead(t, b6), addr("fe80::1"), addr("fe80::2"), 64, l.idxB, advert)
}

// IPv4 options (IHL > 5) must not leak into the payload.
func TestIPv4OptionsStripped(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4})

	err := inNS(l.nsA, func() error {
		pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		defer pc.Close()
		rc, err := ipv4.NewRawConn(pc)
		if err != nil {
			return err
		}
		nops := []byte{1, 1, 1, 1, 1, 1, 1, 0} // NOPs, then End of Options List
		h := &ipv4.Header{
			Version: ipv4.Version, Len: ipv4.HeaderLen + len(nops), TotalLen: ipv4.HeaderLen + len(nops) + len(advert),
			TTL: 255, Protocol: protocolVRRP, Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Options: nops,
		}
		return rc.WriteTo(h, advert, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, mustRead(t, b), addr("10.99.0.1"), addr("10.99.0.2"), 255, l.idxB, advert)
}

// SO_BINDTODEVICE: a Conn on one interface must not see VRRP arriving on
// another interface of the same host.
func TestBoundToInterface(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	_, idxB2 := l.link(t, "veth-a2", "veth-b2", "10.98.0", "fe80::")
	for _, fam := range []int{4, 6} {
		t.Run(fmt.Sprintf("IPv%d", fam), func(t *testing.T) {
			onB := listen(t, l.nsB, Options{Interface: ifB, Family: fam, Multicast: true})
			onB2 := listen(t, l.nsB, Options{Interface: "veth-b2", Family: fam, Multicast: true})
			sender := listen(t, l.nsA, Options{Interface: "veth-a2", Family: fam, Multicast: true})

			if err := sender.WriteTo(advert, MulticastGroup(fam)); err != nil {
				t.Fatal(err)
			}
			f := mustRead(t, onB2)
			checkFrame(t, f, sender.Source(), MulticastGroup(fam), 255, idxB2, advert)
			expectNothing(t, onB, "Conn bound to the other interface")
		})
	}
}

// Several instances share one Conn: concurrent writers, one reader.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 4, Multicast: true})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4, Multicast: true})

	const writers, each = 8, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := a.WriteTo([]byte{0x31, byte(w + 1), byte(i)}, MulticastGroup(4)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	seen := map[[2]byte]bool{}
	for len(seen) < writers*each {
		f := mustRead(t, b)
		if len(f.Payload) != 3 {
			t.Fatalf("payload %x", f.Payload)
		}
		seen[[2]byte{f.Payload[1], f.Payload[2]}] = true
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, fam := range []int{4, 6} {
		c := listen(t, l.nsA, Options{Interface: ifA, Family: fam, Multicast: true})
		errc := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1500))
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if err := c.Close(); err != nil {
			t.Fatalf("IPv%d Close: %v", fam, err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("IPv%d Read after Close: %v, want net.ErrClosed", fam, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("IPv%d Read still blocked 3s after Close", fam)
		}
	}
}

func TestWriteToWrongFamily(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a4 := listen(t, l.nsA, Options{Interface: ifA, Family: 4})
	a6 := listen(t, l.nsA, Options{Interface: ifA, Family: 6})
	if err := a4.WriteTo(advert, addr("fe80::2")); err == nil {
		t.Error("IPv4 Conn sent to an IPv6 address")
	}
	if err := a6.WriteTo(advert, addr("10.99.0.2")); err == nil {
		t.Error("IPv6 Conn sent to an IPv4 address")
	}
	if err := a4.WriteTo(advert, netip.Addr{}); err == nil {
		t.Error("sent to the zero Addr")
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// An interface with no addresses at all.
	bare := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bare-x"}, PeerName: "bare-y"}
	if err := l.hA.LinkAdd(bare); err != nil {
		t.Fatalf("add veth without addresses: %v", err)
	}
	cases := []struct {
		name string
		opts Options
	}{
		{"no interface", Options{Family: 4}},
		{"bad family", Options{Interface: ifA, Family: 5}},
		{"unknown interface", Options{Interface: "nonesuch0", Family: 4}},
		{"v6 source on v4", Options{Interface: ifA, Family: 4, Source: addr("fe80::1")}},
		{"v4 source on v6", Options{Interface: ifA, Family: 6, Source: addr("10.99.0.1")}},
		{"no IPv4 address", Options{Interface: bare.Name, Family: 4}},
		{"no link-local", Options{Interface: bare.Name, Family: 6}},
	}
	for _, tc := range cases {
		err := inNS(l.nsA, func() error {
			c, err := Listen(tc.opts)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("%s: Listen(%+v) succeeded", tc.name, tc.opts)
		}
	}
}

func rawChecksumOffset(c *Conn) (int, error) {
	rc, err := c.ip.SyscallConn()
	if err != nil {
		return 0, err
	}
	var off int
	var gerr error
	err = rc.Control(func(fd uintptr) {
		off, gerr = unix.GetsockoptInt(int(fd), unix.SOL_RAW, unix.IPV6_CHECKSUM)
	})
	if err != nil {
		return 0, err
	}
	return off, gerr
}

func BenchmarkWriteTo(b *testing.B) {
	l := newLab(b)
	a := listen(b, l.nsA, Options{Interface: ifA, Family: 4, Multicast: true})
	for b.Loop() {
		if err := a.WriteTo(advert, MulticastGroup(4)); err != nil {
			b.Fatal(err)
		}
	}
}

// The kernel filter drops what no instance could accept, and lets the
// rest through; packets that queued up are read back in order, several
// per receive, whole.
func TestFilterOnSocketAndBatchedReads(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a := listen(t, l.nsA, Options{Interface: ifA, Family: 4, Multicast: true})
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4, Multicast: true})
	if err := b.SetFilter(Filter{VRIDs: []uint8{0x2a}, TTL255: true}); err != nil {
		t.Fatal(err)
	}
	other := append([]byte(nil), advert...)
	other[1] = 0x2b // another VRID
	const n = 3 * readBatch / 2
	for i := range n {
		p := append([]byte(nil), advert...)
		p[len(p)-1] = byte(i) // tell them apart
		for _, x := range [][]byte{other, p} {
			if err := a.WriteTo(x, MulticastGroup(4)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range n {
		f := mustRead(t, b)
		if f.Payload[1] != 0x2a || f.Payload[len(f.Payload)-1] != byte(i) {
			t.Fatalf("packet %d: %x, want VRID 0x2a and serial %d", i, f.Payload, i)
		}
	}
	expectNothing(t, b, "the other VRID's packets, dropped by the filter")
}
