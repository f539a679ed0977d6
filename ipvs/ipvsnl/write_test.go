package ipvsnl

import (
	"encoding/binary"
	"errors"
	"iter"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/mdlayher/genetlink"
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
	if len(b) < 4 || b[1] != GenlVersion || b[2] != 0 || b[3] != 0 {
		t.Fatalf("generic netlink header % x", b[:min(4, len(b))])
	}
	top := nlAttrs(t, b[4:])
	svc = nlAttrs(t, top[CmdAttrService])
	if d, ok := top[CmdAttrDest]; ok {
		dest = nlAttrs(t, d)
	}
	if len(top) > 2 {
		t.Errorf("unexpected top-level attributes: %v", top)
	}
	return b[0], svc, dest
}

func ne16(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }
func ne32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

// union is addr as the kernel's 16-byte union nf_inet_addr.
func union(a netip.Addr) []byte {
	var raw [16]byte
	if a.Is4() {
		v4 := a.As4()
		copy(raw[:], v4[:])
	} else {
		raw = a.As16()
	}
	return raw[:]
}

var (
	web    = Key{Family: AFInet, Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80}
	web6   = Key{Family: AFInet6, Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}
	fwmark = Key{Family: AFInet6, FWMark: 7}
)

func mustEncode(t *testing.T, w Write) []byte {
	t.Helper()
	b, err := encodeWrite(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeServiceWrites(t *testing.T) {
	pers := Service{Key: web, Scheduler: "sh", Flags: 0x8 | FlagPersistent, Timeout: 600, Netmask: 0xffffff00}
	cmd, s, d := decodeWrite(t, mustEncode(t, Write{Cmd: CmdNewService, Service: pers}))
	if cmd != CmdNewService || d != nil {
		t.Errorf("cmd %d dest %v", cmd, d)
	}
	if ne16(s[SvcAttrAF]) != syscall.AF_INET || ne16(s[SvcAttrProtocol]) != syscall.IPPROTO_TCP {
		t.Errorf("af %v protocol %v", s[SvcAttrAF], s[SvcAttrProtocol])
	}
	if string(s[SvcAttrAddr]) != string(union(web.Addr)) {
		t.Errorf("addr % x, want the 16-byte union", s[SvcAttrAddr])
	}
	if binary.BigEndian.Uint16(s[SvcAttrPort]) != 80 {
		t.Errorf("port % x is not 80 in network order", s[SvcAttrPort])
	}
	if string(s[SvcAttrSchedName]) != "sh\x00" {
		t.Errorf("scheduler %q", s[SvcAttrSchedName])
	}
	if f := s[SvcAttrFlags]; len(f) != 8 || ne32(f) != 0x8|FlagPersistent || ne32(f[4:]) != ^uint32(0) {
		t.Errorf("flags % x", f)
	}
	if ne32(s[SvcAttrTimeout]) != 600 {
		t.Errorf("timeout %d", ne32(s[SvcAttrTimeout]))
	}
	if m := s[SvcAttrNetmask]; len(m) != 4 || m[0] != 255 || m[1] != 255 || m[2] != 255 || m[3] != 0 {
		t.Errorf("IPv4 netmask % x, want ff ff ff 00", m)
	}
	if _, ok := s[SvcAttrFWMark]; ok {
		t.Error("address service carries a firewall mark")
	}

	// IPv6 firewall mark: the netmask is a prefix length in host order.
	fwm6 := Service{Key: fwmark, Scheduler: "rr", Flags: FlagPersistent, Timeout: 60, Netmask: 64}
	cmd, s, _ = decodeWrite(t, mustEncode(t, Write{Cmd: CmdSetService, Service: fwm6}))
	if cmd != CmdSetService || ne16(s[SvcAttrAF]) != syscall.AF_INET6 || ne32(s[SvcAttrFWMark]) != 7 || ne32(s[SvcAttrNetmask]) != 64 {
		t.Errorf("fwmark v6: cmd %d attrs %v", cmd, s)
	}
	for _, a := range []uint16{SvcAttrProtocol, SvcAttrAddr, SvcAttrPort} {
		if _, ok := s[a]; ok {
			t.Errorf("firewall-mark service carries attribute %d", a)
		}
	}

	// A delete names the service only.
	cmd, s, _ = decodeWrite(t, mustEncode(t, Write{Cmd: CmdDelService, Service: pers}))
	if cmd != CmdDelService || len(s) != 4 {
		t.Errorf("delete: cmd %d attrs %v", cmd, s)
	}
	_, s, _ = decodeWrite(t, mustEncode(t, Write{Cmd: CmdDelService, Service: Service{Key: web6}}))
	if a, _ := netip.AddrFromSlice(s[SvcAttrAddr]); a != web6.Addr || binary.BigEndian.Uint16(s[SvcAttrPort]) != 443 {
		t.Errorf("v6 key: %v", s)
	}
}

func TestEncodeDestinationWrites(t *testing.T) {
	d := Dest{Addr: netip.MustParseAddr("10.0.0.21"), Port: 8080, Weight: 7, FwdMethod: 2, Upper: 100, Lower: 10}
	svc := Service{Key: web6} // a tunnelled IPv4 real server of an IPv6 service
	cmd, s, a := decodeWrite(t, mustEncode(t, Write{Cmd: CmdNewDest, Service: svc, Dest: d}))
	if cmd != CmdNewDest || len(s) != 4 || ne16(s[SvcAttrAF]) != syscall.AF_INET6 {
		t.Errorf("cmd %d service %v", cmd, s)
	}
	if ne16(a[DestAttrAddrFamily]) != syscall.AF_INET || binary.BigEndian.Uint16(a[DestAttrPort]) != 8080 {
		t.Errorf("family %v port % x", a[DestAttrAddrFamily], a[DestAttrPort])
	}
	if string(a[DestAttrAddr]) != string(union(d.Addr)) {
		t.Errorf("addr % x, want the 16-byte union", a[DestAttrAddr])
	}
	if ne32(a[DestAttrFwdMethod]) != 2 || ne32(a[DestAttrWeight]) != 7 || ne32(a[DestAttrUThresh]) != 100 || ne32(a[DestAttrLThresh]) != 10 {
		t.Errorf("dest config %v", a)
	}
	cmd, _, a = decodeWrite(t, mustEncode(t, Write{Cmd: CmdSetDest, Service: svc, Dest: d}))
	if cmd != CmdSetDest || len(a) != 7 {
		t.Errorf("update: cmd %d attrs %v", cmd, a)
	}
	cmd, _, a = decodeWrite(t, mustEncode(t, Write{Cmd: CmdDelDest, Service: svc, Dest: d}))
	if _, ok := a[DestAttrWeight]; cmd != CmdDelDest || ok || len(a) != 3 {
		t.Errorf("delete: cmd %d attrs %v", cmd, a)
	}
}

func TestEncodeRefusesNonsense(t *testing.T) {
	for _, w := range []Write{
		{Cmd: CmdGetService, Service: Service{Key: web}},
		{Cmd: CmdNewService, Service: Service{Key: Key{Family: 5}}},
		{Cmd: CmdNewDest, Service: Service{Key: web}},
	} {
		if _, err := encodeWrite(&w); err == nil {
			t.Errorf("%+v encoded", w)
		}
	}
}

func TestEncodeWriteAllocatesOnce(t *testing.T) {
	w := Write{Cmd: CmdNewService, Service: Service{Key: web6, Scheduler: "wrr", Netmask: 128}}
	d := Write{Cmd: CmdSetDest, Service: Service{Key: web6}, Dest: Dest{Addr: web6.Addr, Port: 80, Weight: 1}}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = encodeWrite(&w)
		_, _ = encodeWrite(&d)
	}); n != 2 {
		t.Errorf("%v allocations for two writes, want one each", n)
	}
}

// kernelSock is a netlink socket that answers as the kernel does: it
// handles a batch at once, acks each failure (and the messages asking for
// an ack) in a datagram of its own, and drops acks beyond room, reporting
// ENOBUFS on the next read.
type kernelSock struct {
	fail    func(n int) syscall.Errno // by message number, from 0, over all batches
	room    int                       // queued datagrams the receive buffer holds; 0: unlimited
	sendErr error
	// answer, when set, answers each request: the generic netlink
	// payloads of its replies (a dump's are followed by NLMSG_DONE), or
	// an errno.
	answer func(req netlink.Message) ([][]byte, syscall.Errno)

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
		if errno == 0 && s.answer != nil {
			var replies [][]byte
			replies, errno = s.answer(m)
			dump := m.Header.Flags&netlink.Dump == netlink.Dump
			h := netlink.Header{Type: m.Header.Type, Sequence: m.Header.Sequence, PID: m.Header.PID}
			if dump {
				h.Flags = netlink.Multi
			}
			for _, r := range replies {
				s.queue = append(s.queue, netlink.Message{Header: h, Data: r})
			}
			if dump && errno == 0 {
				h.Type = netlink.Done
				s.queue = append(s.queue, netlink.Message{Header: h, Data: make([]byte, 4)})
				continue
			}
		}
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

func newTestConn(s *kernelSock, maxMsgs, maxBytes int) *Conn {
	return newConn(netlink.NewConn(s, 77), 42, maxMsgs, maxBytes)
}

func destWrites(n int) []Write {
	ws := make([]Write, n)
	for i := range ws {
		ws[i] = Write{Cmd: CmdNewDest, Service: Service{Key: web}, Dest: Dest{Addr: netip.MustParseAddr("10.0.0.21"), Port: uint16(1000 + i), Weight: 1}}
	}
	return ws
}

func TestBatchSplitsAndAcksOnlyTheLast(t *testing.T) {
	s := &kernelSock{}
	b := newTestConn(s, 3, 1<<20)
	errs := b.Batch(destWrites(7))
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

	// Bytes bound the batch too: each of these messages takes 140.
	s = &kernelSock{}
	newTestConn(s, 100, 300).Batch(destWrites(5))
	if len(s.sends) != 3 {
		t.Errorf("%d sends under a 300-byte limit, want 3", len(s.sends))
	}
}

func TestBatchAttributesFailures(t *testing.T) {
	failing := map[int]syscall.Errno{1: syscall.EEXIST, 4: syscall.ESRCH, 6: syscall.ENOENT}
	s := &kernelSock{fail: func(n int) syscall.Errno { return failing[n] }}
	ws := destWrites(7)
	ws[5].Cmd = CmdGetService // cannot be encoded: fails alone, never sent
	errs := newTestConn(s, 4, 1<<20).Batch(ws)
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
	errs = newTestConn(s, 10, 1<<20).Batch(destWrites(3))
	if errs[0] != nil || errs[1] != nil || errs[2] != syscall.EINVAL {
		t.Errorf("errs %v", errs)
	}
}

func TestBatchLostAnswersAreUnknown(t *testing.T) {
	s := &kernelSock{room: 1, fail: func(n int) syscall.Errno {
		if n == 1 || n == 2 {
			return syscall.EEXIST
		}
		return 0
	}}
	b := newTestConn(s, 10, 1<<20)
	errs := b.Batch(destWrites(4))
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
	for i, err := range b.Batch(destWrites(2)) {
		if err != nil {
			t.Errorf("next batch, write %d: %v", i, err)
		}
	}
}

func TestBatchSendFailure(t *testing.T) {
	s := &kernelSock{sendErr: syscall.EMSGSIZE}
	for i, err := range newTestConn(s, 10, 1<<20).Batch(destWrites(3)) {
		if !errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("write %d: %v", i, err)
		}
	}
}

func TestErrnoOf(t *testing.T) {
	err := errnoOf(&netlink.OpError{Op: "receive", Err: syscall.EEXIST})
	if err != syscall.EEXIST || err.Error() != "file exists" {
		t.Errorf("got %#v", err)
	}
	other := errors.New("plain")
	if errnoOf(other) != other {
		t.Error("non-errno error changed")
	}
	if errnoOf(nil) != nil {
		t.Error("nil changed")
	}
}

// A persistence engine and a tunnel's encapsulation go out as the kernel
// reads them (a NUL-terminated name; the port in network order), only when
// set, and read back the same through the dump decoders.
func TestEncodePEAndTunnel(t *testing.T) {
	sip := Service{Key: Key{Family: AFInet, Protocol: syscall.IPPROTO_UDP, Addr: web.Addr, Port: 5060},
		Scheduler: "rr", PEName: "sip", Flags: FlagPersistent | FlagOnePacket, Timeout: 60, Netmask: ^uint32(0)}
	b := mustEncode(t, Write{Cmd: CmdNewService, Service: sip})
	if _, s, _ := decodeWrite(t, b); string(s[SvcAttrPEName]) != "sip\x00" {
		t.Errorf("pe name %q, want sip and a NUL", s[SvcAttrPEName])
	}
	got, err := ParseServices([]genetlink.Message{{Data: b[4:]}})
	if err != nil || len(got) != 1 || got[0] != sip {
		t.Errorf("round trip: %+v, %v\nwant %+v", got, err, sip)
	}
	sip.PEName = ""
	if _, s, _ := decodeWrite(t, mustEncode(t, Write{Cmd: CmdSetService, Service: sip})); s[SvcAttrPEName] != nil {
		t.Errorf("update without an engine sends %q", s[SvcAttrPEName])
	}
	for _, bad := range []string{"sip\x00x", "0123456789abcdef"} {
		sip.PEName = bad
		if _, err := encodeWrite(&Write{Cmd: CmdNewService, Service: sip}); err == nil {
			t.Errorf("engine name %q encoded", bad)
		}
	}

	for _, tc := range []struct {
		d    Dest
		want map[uint16][]byte // tunnel attributes sent
	}{
		{Dest{FwdMethod: FwdTunnel, TunType: TunGUE, TunPort: 6080, TunFlags: TunFlagRemCsum}, map[uint16][]byte{
			DestAttrTunType: {TunGUE}, DestAttrTunPort: {0x17, 0xc0}, DestAttrTunFlags: binary.NativeEndian.AppendUint16(nil, TunFlagRemCsum)}},
		{Dest{FwdMethod: FwdTunnel, TunType: TunGRE, TunFlags: TunFlagCsum}, map[uint16][]byte{
			DestAttrTunType: {TunGRE}, DestAttrTunFlags: binary.NativeEndian.AppendUint16(nil, TunFlagCsum)}},
		{Dest{FwdMethod: FwdTunnel}, map[uint16][]byte{}},          // plain IPIP: as before 5.3
		{Dest{FwdMethod: 3, TunType: TunGUE}, map[uint16][]byte{}}, // not a tunnel: nothing
	} {
		tc.d.Addr, tc.d.Port, tc.d.Weight = netip.MustParseAddr("10.0.0.21"), 80, 1
		b := mustEncode(t, Write{Cmd: CmdNewDest, Service: Service{Key: web}, Dest: tc.d})
		_, _, a := decodeWrite(t, b)
		for _, typ := range []uint16{DestAttrTunType, DestAttrTunPort, DestAttrTunFlags} {
			if string(a[typ]) != string(tc.want[typ]) {
				t.Errorf("%+v: attribute %d = % x, want % x", tc.d, typ, a[typ], tc.want[typ])
			}
		}
		if tc.d.FwdMethod != FwdTunnel {
			continue
		}
		ds, err := ParseDests([]genetlink.Message{{Data: b[4:]}}, AFInet)
		want := tc.d
		want.Family = AFInet
		if err != nil || len(ds) != 1 || ds[0] != want {
			t.Errorf("round trip: %+v, %v\nwant %+v", ds, err, want)
		}
	}
}
