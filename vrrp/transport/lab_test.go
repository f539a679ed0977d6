package transport

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// lab is two fresh network namespaces, A and B, joined by a veth pair:
// A's "veth-a" has 10.99.0.1/24 and fe80::1/64, B's "veth-b" has
// 10.99.0.2/24 and fe80::2/64. Nothing touches the host's namespace, and
// closing the handles (t.Cleanup) lets the kernel destroy everything.
type lab struct {
	nsA, nsB   netns.NsHandle
	hA, hB     *netlink.Handle
	idxA, idxB int
}

const (
	ifA = "veth-a"
	ifB = "veth-b"
)

func newLab(t testing.TB) *lab {
	t.Helper()
	l := &lab{}
	var err error
	// netns.New moves the calling thread into the new namespace; do it on
	// a throw-away locked thread that dies with its goroutine.
	err = onFreshThread(func() error {
		if l.nsA, err = netns.New(); err != nil {
			return fmt.Errorf("new netns A: %w", err)
		}
		if l.nsB, err = netns.New(); err != nil {
			return fmt.Errorf("new netns B: %w", err)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, ns := range []*netns.NsHandle{&l.nsA, &l.nsB} {
			if ns.IsOpen() {
				ns.Close()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.hA, err = netlink.NewHandleAt(l.nsA); err != nil {
		t.Fatalf("netlink handle A: %v", err)
	}
	t.Cleanup(l.hA.Close)
	if l.hB, err = netlink.NewHandleAt(l.nsB); err != nil {
		t.Fatalf("netlink handle B: %v", err)
	}
	t.Cleanup(l.hB.Close)

	l.idxA, l.idxB = l.link(t, ifA, ifB, "10.99.0", "fe80::")
	return l
}

// link adds a veth pair between A (name a) and B (name b), with
// prefix.1/24 and v6prefix1/64 on A, .2 and 2 on B, both up, and returns
// the two interface indexes.
func (l *lab) link(t testing.TB, a, b, prefix, v6prefix string) (int, int) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: a},
		PeerName:      b,
		PeerNamespace: netlink.NsFd(l.nsB),
	}
	if err := l.hA.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", a, b, err)
	}
	idxA := l.configure(t, l.nsA, l.hA, a, prefix+".1/24", v6prefix+"1/64")
	idxB := l.configure(t, l.nsB, l.hB, b, prefix+".2/24", v6prefix+"2/64")
	l.waitUp(t, l.hA, a)
	l.waitUp(t, l.hB, b)
	return idxA, idxB
}

func (l *lab) configure(t testing.TB, ns netns.NsHandle, h *netlink.Handle, name, v4, v6 string) int {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	// No automatic link-local: the test wants exactly one, a known one.
	if err := h.LinkSetIP6AddrGenMode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
		t.Fatalf("addrgenmode none on %s: %v", name, err)
	}
	err = inNS(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/accept_dad", []byte("0"), 0o644)
	})
	if err != nil {
		t.Fatalf("accept_dad=0 on %s: %v", name, err)
	}
	l.addAddr(t, h, name, v4)
	l.addAddr(t, h, name, v6)
	if err := h.LinkSetUp(link); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
	return link.Attrs().Index
}

func (l *lab) addAddr(t testing.TB, h *netlink.Handle, name, cidr string) {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatalf("parse %s: %v", cidr, err)
	}
	if a.IP.To4() == nil {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(link, a); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, name, err)
	}
}

func (l *lab) waitUp(t testing.TB, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		link, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("find %s: %v", name, err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up after 5s: %v", name, link.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen opens a Conn inside ns and closes it when the test ends.
func listen(t testing.TB, ns netns.NsHandle, opts Options) *Conn {
	t.Helper()
	var c *Conn
	err := inNS(ns, func() (err error) {
		c, err = Listen(opts)
		return err
	})
	if err != nil {
		t.Fatalf("Listen(%+v): %v", opts, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inNS runs fn on a thread inside ns. The thread is locked and never
// unlocked, so the runtime discards it instead of reusing a thread left in
// the wrong namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	return onFreshThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter netns: %w", err)
		}
		return fn()
	})
}

func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// readWithin reads one frame from c, giving up after d.
func readWithin(t testing.TB, c *Conn, d time.Duration) (Frame, error) {
	t.Helper()
	if err := c.ip.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatalf("set read deadline: %v", err)
	}
	defer c.ip.SetReadDeadline(time.Time{})
	return c.Read(make([]byte, 1500))
}

// mustRead reads one frame from c or fails the test.
func mustRead(t testing.TB, c *Conn) Frame {
	t.Helper()
	f, err := readWithin(t, c, 3*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// expectNothing asserts that c receives nothing for a while.
func expectNothing(t testing.TB, c *Conn, why string) {
	t.Helper()
	f, err := readWithin(t, c, 300*time.Millisecond)
	if err == nil {
		t.Fatalf("%s: got a frame from %s to %s: %x", why, f.Src, f.Dst, f.Payload)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: want timeout, got %v", why, err)
	}
}
