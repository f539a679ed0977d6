package ipvs

import (
	"encoding/binary"
	"errors"
	"iter"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// nlAttrs splits netlink attributes by type.
func nlAttrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatalf("attributes: %v", err)
	}
	out := map[uint16][]byte{}
	for _, a := range as {
		if _, dup := out[a.Type]; dup {
			t.Errorf("attribute %d twice", a.Type)
		}
		out[a.Type] = a.Data
	}
	return out
}

// decodeWrite splits an encoded write into command, service and
// destination attributes.
func decodeWrite(t *testing.T, b []byte) (cmd uint8, svc, dest map[uint16][]byte) {
	t.Helper()
	if len(b) < 4 || b[1] != ipvsGenlVersion || b[2] != 0 || b[3] != 0 {
		t.Fatalf("generic netlink header % x", b[:min(4, len(b))])
	}
	top := nlAttrs(t, b[4:])
	svc = nlAttrs(t, top[cmdAttrService])
	if d, ok := top[cmdAttrDest]; ok {
		dest = nlAttrs(t, d)
	}
	if len(top) > 2 {
		t.Errorf("unexpected top-level attributes: %v", top)
	}
	return b[0], svc, dest
}

func ne16(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }
func ne32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

func TestEncodeServiceWrites(t *testing.T) {
	pers := Service{Key: web, Scheduler: "sh", Flags: FlagSchedFallback, Persistent: true, Timeout: 600 * time.Second, Netmask: 24}
	cmd, s, d := decodeWrite(t, mustEncode(t, Write{Kind: OpCreateService, Service: pers}))
	if cmd != cmdNewService || d != nil {
		t.Errorf("cmd %d dest %v", cmd, d)
	}
	if ne16(s[svcAttrAF]) != syscall.AF_INET || ne16(s[svcAttrProtocol]) != uint16(TCP) {
		t.Errorf("af %v protocol %v", s[svcAttrAF], s[svcAttrProtocol])
	}
	if a, _ := netip.AddrFromSlice(s[svcAttrAddr]); a != web.Addr {
		t.Errorf("addr % x", s[svcAttrAddr])
	}
	if binary.BigEndian.Uint16(s[svcAttrPort]) != 80 {
		t.Errorf("port % x is not 80 in network order", s[svcAttrPort])
	}
	if string(s[svcAttrSchedName]) != "sh\x00" {
		t.Errorf("scheduler %q", s[svcAttrSchedName])
	}
	if f := s[svcAttrFlags]; len(f) != 8 || ne32(f) != FlagSchedFallback|flagPersistent || ne32(f[4:]) != ^uint32(0) {
		t.Errorf("flags % x", f)
	}
	if ne32(s[svcAttrTimeout]) != 600 {
		t.Errorf("timeout %d", ne32(s[svcAttrTimeout]))
	}
	if m := s[svcAttrNetmask]; len(m) != 4 || m[0] != 255 || m[1] != 255 || m[2] != 255 || m[3] != 0 {
		t.Errorf("IPv4 netmask % x, want ff ff ff 00", m)
	}
	if _, ok := s[svcAttrFWMark]; ok {
		t.Error("address service carries a firewall mark")
	}

	// Not persistent: the host mask, as the kernel insists on one.
	_, s, _ = decodeWrite(t, mustEncode(t, Write{Kind: OpUpdateService, Service: svc(web)}))
	if m := s[svcAttrNetmask]; len(m) != 4 || ne32(m) != ^uint32(0) || ne32(s[svcAttrTimeout]) != 0 || ne32(s[svcAttrFlags]) != 0 {
		t.Errorf("plain service: netmask % x timeout % x flags % x", m, s[svcAttrTimeout], s[svcAttrFlags])
	}

	// IPv6 firewall mark: the netmask is a prefix length in host order.
	fwm6 := Service{Key: ServiceKey{Family: 6, FWMark: 7}, Scheduler: "rr", Persistent: true, Timeout: time.Minute, Netmask: 64}
	cmd, s, _ = decodeWrite(t, mustEncode(t, Write{Kind: OpUpdateService, Service: fwm6}))
	if cmd != cmdSetService || ne16(s[svcAttrAF]) != syscall.AF_INET6 || ne32(s[svcAttrFWMark]) != 7 || ne32(s[svcAttrNetmask]) != 64 {
		t.Errorf("fwmark v6: cmd %d attrs %v", cmd, s)
	}
	for _, a := range []uint16{svcAttrProtocol, svcAttrAddr, svcAttrPort} {
		if _, ok := s[a]; ok {
			t.Errorf("firewall-mark service carries attribute %d", a)
		}
	}

	// A delete names the service only.
	cmd, s, _ = decodeWrite(t, mustEncode(t, Write{Kind: OpDeleteService, Service: pers}))
	if cmd != cmdDelService || len(s) != 4 {
		t.Errorf("delete: cmd %d attrs %v", cmd, s)
	}
	v6 := tcp("2001:db8::1", 443)
	_, s, _ = decodeWrite(t, mustEncode(t, Write{Kind: OpDeleteService, Service: Service{Key: v6}}))
	if a, _ := netip.AddrFromSlice(s[svcAttrAddr]); a != v6.Addr || binary.BigEndian.Uint16(s[svcAttrPort]) != 443 {
		t.Errorf("v6 key: %v", s)
	}
}

func TestEncodeDestinationWrites(t *testing.T) {
	d := Destination{Addr: netip.MustParseAddr("10.0.0.21"), Port: 8080, Weight: 7, Forward: Tunnel, Upper: 100, Lower: 10}
	key := tcp("2001:db8::1", 80) // a tunnelled IPv4 real server of an IPv6 service
	cmd, s, a := decodeWrite(t, mustEncode(t, Write{Kind: OpCreateDestination, Service: Service{Key: key}, Dest: d}))
	if cmd != cmdNewDest || len(s) != 4 || ne16(s[svcAttrAF]) != syscall.AF_INET6 {
		t.Errorf("cmd %d service %v", cmd, s)
	}
	if ne16(a[destAttrAddrFamily]) != syscall.AF_INET || binary.BigEndian.Uint16(a[destAttrPort]) != 8080 {
		t.Errorf("family %v port % x", a[destAttrAddrFamily], a[destAttrPort])
	}
	if addr, _ := netip.AddrFromSlice(a[destAttrAddr]); addr != d.Addr {
		t.Errorf("addr % x", a[destAttrAddr])
	}
	if ne32(a[destAttrFwdMethod]) != 2 || ne32(a[destAttrWeight]) != 7 || ne32(a[destAttrUThresh]) != 100 || ne32(a[destAttrLThresh]) != 10 {
		t.Errorf("dest config %v", a)
	}
	cmd, _, a = decodeWrite(t, mustEncode(t, Write{Kind: OpUpdateDestination, Service: Service{Key: key}, Dest: d}))
	if cmd != cmdSetDest || len(a) != 7 {
		t.Errorf("update: cmd %d attrs %v", cmd, a)
	}
	cmd, _, a = decodeWrite(t, mustEncode(t, Write{Kind: OpDeleteDestination, Service: Service{Key: key}, Dest: d}))
	if _, ok := a[destAttrWeight]; cmd != cmdDelDest || ok || len(a) != 3 {
		t.Errorf("delete: cmd %d attrs %v", cmd, a)
	}
}

func TestEncodeRefusesNonsense(t *testing.T) {
	for _, w := range []Write{
		{Kind: OpListServices, Service: svc(web)},
		{Kind: OpCreateService, Service: Service{Key: ServiceKey{Family: 5}}},
		{Kind: OpCreateDestination, Service: svc(web)},
	} {
		if _, err := encodeWrite(w); err == nil {
			t.Errorf("%+v encoded", w)
		}
	}
}

func mustEncode(t *testing.T, w Write) []byte {
	t.Helper()
	b, err := encodeWrite(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kernelSock is a netlink socket that answers as the kernel does: it
// handles a batch at once, acks each failure (and the messages asking for
// an ack) in a datagram of its own, and drops acks beyond room, reporting
// ENOBUFS on the next read.
type kernelSock struct {
	fail    func(n int) syscall.Errno // by message number, from 0, over all batches
	room    int                       // queued datagrams the receive buffer holds; 0: unlimited
	sendErr error

	n       int
	sends   [][]netlink.Message
	queue   []netlink.Message
	overrun bool
}

func (s *kernelSock) Close() error                 { return nil }
func (s *kernelSock) Send(m netlink.Message) error { return s.SendMessages([]netlink.Message{m}) }

func (s *kernelSock) SendMessages(ms []netlink.Message) error {
	if s.sendErr != nil {
		return s.sendErr
	}
	s.sends = append(s.sends, slices.Clone(ms))
	for _, m := range ms {
		errno := syscall.Errno(0)
		if s.fail != nil {
			errno = s.fail(s.n)
		}
		s.n++
		if errno == 0 && m.Header.Flags&netlink.Acknowledge == 0 {
			continue
		}
		if s.room > 0 && len(s.queue) >= s.room {
			s.overrun = true
			continue
		}
		data := binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
		h := m.Header
		data = binary.NativeEndian.AppendUint32(data, h.Length)
		data = binary.NativeEndian.AppendUint16(data, uint16(h.Type))
		data = binary.NativeEndian.AppendUint16(data, uint16(h.Flags))
		data = binary.NativeEndian.AppendUint32(data, h.Sequence)
		data = binary.NativeEndian.AppendUint32(data, h.PID)
		s.queue = append(s.queue, netlink.Message{
			Header: netlink.Header{Type: netlink.Error, Flags: netlink.Capped, Sequence: h.Sequence, PID: h.PID},
			Data:   data,
		})
	}
	return nil
}

func (s *kernelSock) Receive() ([]netlink.Message, error) {
	var out []netlink.Message
	for m, err := range s.ReceiveIter() {
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *kernelSock) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		switch {
		case s.overrun:
			s.overrun = false
			yield(netlink.Message{}, syscall.ENOBUFS)
		case len(s.queue) == 0:
			yield(netlink.Message{}, os.ErrDeadlineExceeded) // a real read would block
		default:
			m := s.queue[0]
			s.queue = s.queue[1:]
			yield(m, nil)
		}
	}
}

func newTestBatchConn(s *kernelSock, maxMsgs, maxBytes int) *batchConn {
	return &batchConn{c: netlink.NewConn(s, 77), family: 42, maxMsgs: maxMsgs, maxBytes: maxBytes}
}

func destWrites(n int) []Write {
	ws := make([]Write, n)
	for i := range ws {
		ws[i] = Write{Kind: OpCreateDestination, Service: Service{Key: web}, Dest: dst("10.0.0.21", uint16(1000+i), 1)}
	}
	return ws
}

func TestBatchConnSplitsAndAcksOnlyTheLast(t *testing.T) {
	s := &kernelSock{}
	b := newTestBatchConn(s, 3, 1<<20)
	errs := b.batch(destWrites(7))
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if len(s.sends) != 3 || len(s.sends[0]) != 3 || len(s.sends[1]) != 3 || len(s.sends[2]) != 1 {
		t.Fatalf("sends of %d, %d, ... messages", len(s.sends[0]), len(s.sends[1]))
	}
	for _, ms := range s.sends {
		for j, m := range ms {
			ack := m.Header.Flags&netlink.Acknowledge != 0
			if ack != (j == len(ms)-1) || m.Header.Flags&netlink.Request == 0 || m.Header.Type != 42 {
				t.Errorf("message %d of %d: type %d flags %s", j, len(ms), m.Header.Type, m.Header.Flags)
			}
		}
	}
	if len(s.queue) != 0 {
		t.Errorf("%d answers left unread", len(s.queue))
	}

	// Bytes bound the batch too: each of these messages takes 116.
	s = &kernelSock{}
	newTestBatchConn(s, 100, 250).batch(destWrites(5))
	if len(s.sends) != 3 {
		t.Errorf("%d sends under a 250-byte limit, want 3", len(s.sends))
	}
}

func TestBatchConnAttributesFailures(t *testing.T) {
	failing := map[int]syscall.Errno{1: syscall.EEXIST, 4: syscall.ESRCH, 6: syscall.ENOENT}
	s := &kernelSock{fail: func(n int) syscall.Errno { return failing[n] }}
	ws := destWrites(7)
	ws[5].Kind = OpListServices // cannot be encoded: fails alone, never sent
	errs := newTestBatchConn(s, 4, 1<<20).batch(ws)
	// Message numbers skip the unsent write: 0-4 are writes 0-4, 5 is write 6.
	want := map[int]error{1: syscall.EEXIST, 4: syscall.ESRCH}
	for i, err := range errs {
		switch i {
		case 5:
			if err == nil || errors.Is(err, ErrOutcomeUnknown) {
				t.Errorf("write 5: %v", err)
			}
		case 6:
			if err != nil {
				t.Errorf("write 6 (message 5): %v", err)
			}
		default:
			if err != want[i] {
				t.Errorf("write %d: %v, want %v", i, err, want[i])
			}
		}
	}

	// The last message of a batch failing is its only answer.
	s = &kernelSock{fail: func(n int) syscall.Errno {
		if n == 2 {
			return syscall.EINVAL
		}
		return 0
	}}
	errs = newTestBatchConn(s, 10, 1<<20).batch(destWrites(3))
	if errs[0] != nil || errs[1] != nil || errs[2] != syscall.EINVAL {
		t.Errorf("errs %v", errs)
	}
}

func TestBatchConnLostAnswersAreUnknown(t *testing.T) {
	s := &kernelSock{room: 1, fail: func(n int) syscall.Errno {
		if n == 1 || n == 2 {
			return syscall.EEXIST
		}
		return 0
	}}
	b := newTestBatchConn(s, 10, 1<<20)
	errs := b.batch(destWrites(4))
	if errs[1] != syscall.EEXIST {
		t.Errorf("write 1: %v", errs[1])
	}
	for _, i := range []int{0, 2, 3} {
		if !errors.Is(errs[i], ErrOutcomeUnknown) || !errors.Is(errs[i], syscall.ENOBUFS) {
			t.Errorf("write %d: %v, want outcome unknown (ENOBUFS)", i, errs[i])
		}
	}
	// The socket is clean again for the next batch.
	s.fail = nil
	for i, err := range b.batch(destWrites(2)) {
		if err != nil {
			t.Errorf("next batch, write %d: %v", i, err)
		}
	}
}

func TestBatchConnSendFailure(t *testing.T) {
	s := &kernelSock{sendErr: syscall.EMSGSIZE}
	for i, err := range newTestBatchConn(s, 10, 1<<20).batch(destWrites(3)) {
		if !errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("write %d: %v", i, err)
		}
	}
}

// Without a batch socket (as in tests over the library), Batch makes one
// library call per write.
func TestNetlinkBatchFallback(t *testing.T) {
	c := &stubClient{}
	n := &Netlink{c: c}
	errs := n.Batch([]Write{
		{Kind: OpCreateService, Service: svc(web)},
		{Kind: OpCreateService, Service: svc(api)},
		{Kind: OpGetService, Service: svc(api)},
	})
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || errs[2] == nil {
		t.Errorf("errs %v", errs)
	}
	if len(c.sent) != 2 || c.sent[1].Port != 443 {
		t.Errorf("sent %+v", c.sent)
	}
}
