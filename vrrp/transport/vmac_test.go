package transport

import (
	"bytes"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A VRRP virtual-MAC macvlan has no IPv4 address: adverts sent on it carry
// the parent's address (SourceInterface) and leave from the virtual MAC,
// and adverts from the segment arrive on it.
func TestSourceInterfaceOnMacvlan(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	vmac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 42}
	parent, err := l.hA.LinkByName(ifA)
	if err != nil {
		t.Fatal(err)
	}
	mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "vm0", ParentIndex: parent.Attrs().Index, HardwareAddr: vmac}, Mode: netlink.MACVLAN_MODE_PRIVATE}
	if err := l.hA.LinkAdd(mv); err != nil {
		t.Fatal(err)
	}
	link, _ := l.hA.LinkByName("vm0")
	if err := inNS(l.nsA, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/vm0/rp_filter", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.hA.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	l.waitUp(t, l.hA, "vm0")

	a := listen(t, l.nsA, Options{Interface: "vm0", Family: 4, Multicast: true, SourceInterface: ifA})
	if got := a.Source(); got != addr("10.99.0.1") {
		t.Fatalf("Source = %s, want the parent's 10.99.0.1", got)
	}
	b := listen(t, l.nsB, Options{Interface: ifB, Family: 4, Multicast: true})

	// Watch B's wire for the Ethernet source of VRRP frames.
	var pc *packet.Conn
	if err := inNS(l.nsB, func() error {
		ifi, err := net.InterfaceByName(ifB)
		if err != nil {
			return err
		}
		pc, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	if err := a.WriteTo(advert, MulticastGroup(4)); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, b)
	checkFrame(t, f, addr("10.99.0.1"), addr("224.0.0.18"), 255, l.idxB, advert)
	buf := make([]byte, 1600)
	var src net.HardwareAddr
	deadline := time.Now().Add(3 * time.Second)
	for src == nil {
		if err := pc.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no VRRP frame seen on %s: %v", ifB, err)
		}
		if n >= 14+20 && buf[14+9] == 112 {
			src = net.HardwareAddr(bytes.Clone(buf[6:12]))
		}
	}
	if !bytes.Equal(src, vmac) {
		t.Errorf("advert left from %s, want the virtual MAC %s", src, vmac)
	}

	// And the other way: the macvlan receives the segment's adverts.
	if err := b.WriteTo(advert, MulticastGroup(4)); err != nil {
		t.Fatal(err)
	}
	f = mustRead(t, a)
	checkFrame(t, f, addr("10.99.0.2"), addr("224.0.0.18"), 255, link.Attrs().Index, advert)
}
