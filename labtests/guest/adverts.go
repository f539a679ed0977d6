package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/director-lb/director/internal/rxstamp"
	"github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/vrrp"
)

// advertWatch records the IPv4 VRRP adverts the client hears on the main
// segment (multicast to 224.0.0.18, flooded by the bridge to every port),
// each with the kernel's receive time: when the last advert of a master
// reached the segment, and so its peer. It only listens.
type advertWatch struct {
	conn  *net.IPConn
	nodes map[netip.Addr]string
	done  chan struct{}

	mu      sync.Mutex
	events  []labplan.AdvertEvent
	dropped int // adverts past maxAdverts
}

// maxAdverts bounds the record: 2 hours of adverts every 20 ms from two
// nodes; past it the watch records no more.
const maxAdverts = 720_000

const vrrpProto = 112

// startAdvertWatch opens a raw VRRP socket in namespace ns, joined to
// VRRP's group on its eth0, and records until stop.
func startAdvertWatch(ns string) (*advertWatch, error) {
	var conn *net.IPConn
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrpProto)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		mreq := &unix.IPMreqn{Multiaddr: [4]byte{224, 0, 0, 18}, Ifindex: int32(ifi.Index)}
		if err := errors.Join(
			unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq),
			rxstamp.Enable(fd)); err != nil {
			unix.Close(fd)
			return err
		}
		f := os.NewFile(uintptr(fd), "vrrp-watch")
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			return err
		}
		conn = pc.(*net.IPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("advert watch in %s: %w", ns, err)
	}
	w := &advertWatch{conn: conn, nodes: map[netip.Addr]string{}, done: make(chan struct{})}
	for _, h := range labplan.Hosts() {
		w.nodes[h.IPv4.Addr()] = h.Name
	}
	go w.read()
	return w, nil
}

func (w *advertWatch) read() {
	defer close(w.done)
	buf := make([]byte, 1500)
	oob := make([]byte, rxstamp.OOBSize)
	for {
		n, oobn, _, from, err := w.conn.ReadMsgIP(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // not a spin on a failing socket
			continue
		}
		src, _ := netip.AddrFromSlice(from.IP)
		src = src.Unmap()
		e, ok := parseAdvert(buf[:n], src)
		if !ok {
			continue
		}
		e.At = rxstamp.Time(oob[:oobn])
		if e.At.IsZero() {
			e.At = time.Now()
		}
		e.From = w.nodes[src]
		if e.From == "" {
			e.From = src.String()
		}
		w.mu.Lock()
		if len(w.events) < maxAdverts {
			w.events = append(w.events, e)
		} else {
			w.dropped++
		}
		w.mu.Unlock()
	}
}

// parseAdvert reads the VRID and priority of a VRRP advert from src, as a
// raw IPv4 socket reads it: the IPv4 header (its destination is the
// advert's), then the message, which vrrp.Parse decodes and checks.
func parseAdvert(b []byte, src netip.Addr) (labplan.AdvertEvent, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return labplan.AdvertEvent{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return labplan.AdvertEvent{}, false
	}
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	p, err := vrrp.Parse(b[ihl:], src, dst)
	if err != nil {
		return labplan.AdvertEvent{}, false
	}
	return labplan.AdvertEvent{VRID: int(p.VRID), Priority: int(p.Priority)}, true
}

// stop closes the socket and returns the record, and how many adverts
// it had no room for.
func (w *advertWatch) stop() ([]labplan.AdvertEvent, int) {
	if w == nil {
		return nil, 0
	}
	_ = w.conn.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, w.dropped
}
