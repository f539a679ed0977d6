package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/director-lb/director/ipvs/ipvsnl"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Generic netlink IPVS commands and attributes (linux/ip_vs.h).
const (
	ipvsGenlName    = "IPVS"
	ipvsGenlVersion = 1

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7

	cmdAttrService = 1
	cmdAttrDest    = 2

	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFWMark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9

	destAttrAddr       = 1
	destAttrPort       = 2
	destAttrFwdMethod  = 3
	destAttrWeight     = 4
	destAttrUThresh    = 5
	destAttrLThresh    = 6
	destAttrAddrFamily = 11
)

// Batch sizing. Every failed write queues an error ack on our socket while
// the kernel is still inside our sendmsg; if the receive buffer fills, acks
// are dropped and we can no longer tell which writes failed. So one system
// call carries at most as many writes as the receive buffer has room for
// acks (each costs well under ackCost bytes of buffer with NETLINK_CAP_ACK),
// and at most batchMaxBytes, below the send buffer (the kernel refuses a
// message larger than it).
const (
	batchRcvBuf   = 4 << 20
	batchSndBuf   = 1 << 20
	ackCost       = 1024
	batchMinMsgs  = 16
	batchMaxMsgs  = 2048
	batchMaxBytes = 256 << 10
	// batchTimeout bounds the wait for answers the kernel has already
	// queued (it handles the whole batch inside sendmsg).
	batchTimeout = 10 * time.Second
)

// batchConn is a generic netlink socket for batched IPVS writes.
// github.com/cloudflare/ipvs sends one request and waits for its ack; here
// many requests go in one sendmsg, only the last asks for an ack, and the
// kernel answers the others only when they fail (it acks every error,
// ack flag or not), naming them by sequence number.
type batchConn struct {
	c        *netlink.Conn
	family   uint16
	maxMsgs  int
	maxBytes int
}

func dialBatch() (*batchConn, error) {
	// A fixed receive buffer saves the peek before each read; answers
	// here are acks of a few dozen bytes, and destination dumps.
	c, err := netlink.Dial(unix.NETLINK_GENERIC, &netlink.Config{MessageBufferSize: ipvsnl.DumpBufferSize})
	if err != nil {
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	f, err := genetlink.NewConn(c).GetFamily(ipvsGenlName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("resolve generic netlink family %s: %w", ipvsGenlName, err)
	}
	// Error acks without a copy of the failed request: smaller, so more fit.
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("set NETLINK_CAP_ACK: %w", err)
	}
	b := &batchConn{c: c, family: f.ID}
	rcv, snd := b.growBuffers()
	b.maxMsgs = min(max(rcv/ackCost, batchMinMsgs), batchMaxMsgs)
	b.maxBytes = min(max(snd/2, 4096), batchMaxBytes)
	return b, nil
}

// growBuffers enlarges the socket buffers, beyond the sysctl limits when
// allowed (CAP_NET_ADMIN, which programming IPVS needs anyway), and
// returns the sizes obtained. Failures only mean smaller batches.
func (b *batchConn) growBuffers() (rcv, snd int) {
	if rc, err := b.c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchRcvBuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, batchRcvBuf)
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchSndBuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, batchSndBuf)
			}
		})
	}
	// The kernel reports twice the size asked for; half of it is usable.
	rcv, err := b.c.ReadBuffer()
	if err != nil {
		rcv = 0
	}
	snd, err = b.c.WriteBuffer()
	if err != nil {
		snd = 0
	}
	return rcv / 2, snd / 2
}

func (b *batchConn) Close() error { return b.c.Close() }

// batch sends ws in as few system calls as the buffers allow and returns
// one result per write.
func (b *batchConn) batch(ws []Write) []error {
	errs := make([]error, len(ws))
	msgs := make([]netlink.Message, 0, min(len(ws), b.maxMsgs))
	idx := make([]int, 0, cap(msgs))
	size := 0
	flush := func() {
		if len(msgs) > 0 {
			b.round(msgs, idx, errs)
		}
		msgs, idx, size = msgs[:0], idx[:0], 0
	}
	for i, w := range ws {
		data, err := encodeWrite(w)
		if err != nil {
			errs[i] = err
			continue
		}
		n := 16 + len(data) // nlmsghdr
		if len(msgs) == b.maxMsgs || (len(msgs) > 0 && size+n > b.maxBytes) {
			flush()
		}
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(b.family), Flags: netlink.Request},
			Data:   data,
		})
		idx = append(idx, i)
		size += n
	}
	flush()
	return errs
}

// round sends msgs (answering for ws[idx[i]]) in one sendmsg and collects
// the answers. Only the last message asks for an ack; since the kernel
// handles the batch in order before sendmsg returns, that ack comes after
// every error ack of the batch.
func (b *batchConn) round(msgs []netlink.Message, idx []int, errs []error) {
	msgs[len(msgs)-1].Header.Flags |= netlink.Acknowledge
	sent, err := b.c.SendMessages(msgs)
	if err != nil {
		// Nothing was handled: netlink refuses a batch as a whole.
		for _, i := range idx {
			errs[i] = fmt.Errorf("send batch: %w", errnoOf(err))
		}
		return
	}
	bySeq := make(map[uint32]int, len(sent))
	for k, m := range sent {
		bySeq[m.Header.Sequence] = idx[k]
	}
	last := sent[len(sent)-1].Header.Sequence
	_ = b.c.SetReadDeadline(time.Now().Add(batchTimeout))
	defer b.c.SetReadDeadline(time.Time{})
	var lost error
	for {
		replies, err := b.c.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) && oe.Sequence != 0 {
				// An error ack. Ones for other sequence numbers are
				// late answers to an earlier, abandoned batch.
				if i, ok := bySeq[oe.Sequence]; ok {
					errs[i] = errnoOf(oe.Err)
				}
				if oe.Sequence == last {
					break
				}
				continue
			}
			if lost != nil {
				break // nothing more to read
			}
			// Answers were lost (ENOBUFS: the receive buffer overflowed;
			// the kernel reports it before what it did queue) or the
			// socket broke. Read on what is queued, briefly.
			lost = errnoOf(err)
			_ = b.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			continue
		}
		if slices.ContainsFunc(replies, func(m netlink.Message) bool {
			return m.Header.Type == netlink.Error && m.Header.Sequence == last
		}) {
			break
		}
	}
	if lost != nil {
		// A write without an error ack may have failed all the same.
		for _, i := range idx {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("%w: %w", ErrOutcomeUnknown, lost)
			}
		}
	}
}

// encodeWrite builds the generic netlink payload (header and attributes)
// of one write.
func encodeWrite(w Write) ([]byte, error) {
	var cmd uint8
	fullSvc, dest, fullDest := false, false, false
	switch w.Kind {
	case OpCreateService:
		cmd, fullSvc = cmdNewService, true
	case OpUpdateService:
		cmd, fullSvc = cmdSetService, true
	case OpDeleteService:
		cmd = cmdDelService
	case OpCreateDestination:
		cmd, dest, fullDest = cmdNewDest, true, true
	case OpUpdateDestination:
		cmd, dest, fullDest = cmdSetDest, true, true
	case OpDeleteDestination:
		cmd, dest = cmdDelDest, true
	default:
		return nil, fmt.Errorf("ipvs: %q is not a write", w.Kind)
	}
	k := w.Service.Key
	if k.Family != 4 && k.Family != 6 {
		return nil, fmt.Errorf("ipvs: service %s: family %d", k, k.Family)
	}
	e := nlEncoder{buf: make([]byte, 0, 160)}
	e.buf = append(e.buf, cmd, ipvsGenlVersion, 0, 0)

	svc := e.begin(cmdAttrService)
	e.u16(svcAttrAF, afOf(k.Family))
	if k.FWMark != 0 {
		e.u32(svcAttrFWMark, k.FWMark)
	} else {
		e.u16(svcAttrProtocol, uint16(k.Protocol))
		e.bytes(svcAttrAddr, k.Addr.AsSlice())
		e.be16(svcAttrPort, k.Port)
	}
	if fullSvc {
		e.serviceConfig(&w.Service)
	}
	e.end(svc)

	if dest {
		d := &w.Dest
		if !d.Addr.IsValid() {
			return nil, fmt.Errorf("ipvs: destination without an address in %s", k)
		}
		nd := e.begin(cmdAttrDest)
		e.u16(destAttrAddrFamily, afOf(familyOf(d.Addr)))
		e.bytes(destAttrAddr, d.Addr.AsSlice())
		e.be16(destAttrPort, d.Port)
		if fullDest {
			e.u32(destAttrFwdMethod, uint32(d.Forward))
			e.u32(destAttrWeight, uint32(d.Weight))
			e.u32(destAttrUThresh, d.Upper)
			e.u32(destAttrLThresh, d.Lower)
		}
		e.end(nd)
	}
	return e.buf, nil
}

// serviceConfig adds what a service create or update must carry. The
// kernel wants every one of these (EINVAL otherwise), netmask included:
// without persistence it is the host mask, as ipvsadm sends.
func (e *nlEncoder) serviceConfig(s *Service) {
	e.bytes(svcAttrSchedName, append([]byte(s.Scheduler), 0))
	flags := s.Flags
	var timeout uint32
	bits := 32
	if s.Key.Family == 6 {
		bits = 128
	}
	mask := bits
	if s.Persistent {
		flags |= flagPersistent
		timeout = uint32(s.Timeout / time.Second)
		if s.Netmask > 0 {
			mask = s.Netmask
		}
	}
	// struct ip_vs_flags: the flags, then which of them to set (all).
	var fl [8]byte
	binary.NativeEndian.PutUint32(fl[0:], flags)
	binary.NativeEndian.PutUint32(fl[4:], ^uint32(0))
	e.bytes(svcAttrFlags, fl[:])
	e.u32(svcAttrTimeout, timeout)
	if bits == 32 {
		// IPv4: the mask itself, in network order.
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-mask))
		e.bytes(svcAttrNetmask, m[:])
	} else {
		// IPv6: the prefix length, in host order.
		e.u32(svcAttrNetmask, uint32(mask))
	}
}

func afOf(family int) uint16 {
	if family == 6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// nlEncoder appends netlink attributes.
type nlEncoder struct{ buf []byte }

func (e *nlEncoder) bytes(typ uint16, v []byte) {
	e.buf = binary.NativeEndian.AppendUint16(e.buf, uint16(4+len(v)))
	e.buf = binary.NativeEndian.AppendUint16(e.buf, typ)
	e.buf = append(e.buf, v...)
	for len(e.buf)%4 != 0 {
		e.buf = append(e.buf, 0)
	}
}

func (e *nlEncoder) u16(typ, v uint16) {
	e.bytes(typ, binary.NativeEndian.AppendUint16(nil, v))
}

func (e *nlEncoder) be16(typ, v uint16) {
	e.bytes(typ, binary.BigEndian.AppendUint16(nil, v))
}

func (e *nlEncoder) u32(typ uint16, v uint32) {
	e.bytes(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// begin opens a nested attribute; end closes it by fixing its length.
func (e *nlEncoder) begin(typ uint16) int {
	at := len(e.buf)
	e.buf = binary.NativeEndian.AppendUint16(e.buf, 0)
	e.buf = binary.NativeEndian.AppendUint16(e.buf, typ)
	return at
}

func (e *nlEncoder) end(at int) {
	binary.NativeEndian.PutUint16(e.buf[at:], uint16(len(e.buf)-at))
}
