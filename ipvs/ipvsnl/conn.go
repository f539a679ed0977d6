package ipvsnl

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
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

// ErrOutcomeUnknown marks a batched write whose answer never came back (the
// socket lost it, or the batch could not be sent whole).
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Conn is a generic netlink socket speaking the IPVS family, in the
// network namespace it was dialled in. Requests go one at a time (it is
// safe for concurrent use). A refusal by the kernel comes back as the bare
// syscall.Errno, so that messages read "file exists" and callers add their
// own context; errors.Is works either way.
type Conn struct {
	mu       sync.Mutex
	c        *netlink.Conn
	g        *genetlink.Conn // c, for requests with one answer or a dump
	family   uint16
	maxMsgs  int
	maxBytes int
}

// Dial opens the socket and resolves the IPVS family; it fails when the
// kernel has no IPVS (the ip_vs module is not loaded).
func Dial() (*Conn, error) {
	// A fixed receive buffer saves the peek before each read; answers
	// here are acks of a few dozen bytes, and dumps.
	c, err := netlink.Dial(unix.NETLINK_GENERIC, &netlink.Config{MessageBufferSize: DumpBufferSize})
	if err != nil {
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	g := genetlink.NewConn(c)
	f, err := g.GetFamily(GenlName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("resolve generic netlink family %s (is the ip_vs module loaded?): %w", GenlName, err)
	}
	// Error acks without a copy of the failed request: smaller, so more fit.
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("set NETLINK_CAP_ACK: %w", err)
	}
	n := &Conn{c: c, g: g, family: f.ID}
	rcv, snd := n.growBuffers()
	n.maxMsgs = min(max(rcv/ackCost, batchMinMsgs), batchMaxMsgs)
	n.maxBytes = min(max(snd/2, 4096), batchMaxBytes)
	return n, nil
}

// newConn wraps a socket whose family is already known (tests).
func newConn(c *netlink.Conn, family uint16, maxMsgs, maxBytes int) *Conn {
	return &Conn{c: c, g: genetlink.NewConn(c), family: family, maxMsgs: maxMsgs, maxBytes: maxBytes}
}

// growBuffers enlarges the socket buffers, beyond the sysctl limits when
// allowed (CAP_NET_ADMIN, which IPVS needs anyway), and returns the sizes
// obtained. Failures only mean smaller batches.
func (n *Conn) growBuffers() (rcv, snd int) {
	if rc, err := n.c.SyscallConn(); err == nil {
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
	rcv, err := n.c.ReadBuffer()
	if err != nil {
		rcv = 0
	}
	snd, err = n.c.WriteBuffer()
	if err != nil {
		snd = 0
	}
	return rcv / 2, snd / 2
}

// Close closes the socket; running sync daemons keep running.
func (n *Conn) Close() error { return n.c.Close() }

// execute sends one request and returns its answers.
func (n *Conn) execute(cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	msgs, err := n.g.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: GenlVersion},
		Data:   data,
	}, n.family, flags)
	return msgs, errnoOf(err)
}

// dump runs a dump request.
func (n *Conn) dump(cmd uint8, data []byte) ([]genetlink.Message, error) {
	return n.execute(cmd, data, netlink.Request|netlink.Dump)
}

// keyRequest is the payload naming service k (without the genetlink header).
func keyRequest(k *Key) []byte {
	e := encoder{buf: make([]byte, 0, 48)}
	at := e.begin(CmdAttrService)
	e.key(k)
	e.end(at)
	return e.buf
}

// Services lists every service (without destinations); an empty table is
// an empty list.
func (n *Conn) Services() ([]Service, error) {
	msgs, err := n.dump(CmdGetService, nil)
	if err != nil {
		return nil, err
	}
	return ParseServices(msgs)
}

// Service reads one service; ESRCH when there is none.
func (n *Conn) Service(k Key) (Service, error) {
	msgs, err := n.execute(CmdGetService, keyRequest(&k), netlink.Request)
	if err != nil {
		return Service{}, err
	}
	svcs, err := ParseServices(msgs)
	if err != nil {
		return Service{}, err
	}
	if len(svcs) != 1 {
		return Service{}, syscall.ESRCH
	}
	return svcs[0], nil
}

// Dests lists the destinations of service k; a service that does not
// exist (any more) has none.
func (n *Conn) Dests(k Key) ([]Dest, error) {
	msgs, err := n.dump(CmdGetDest, keyRequest(&k))
	if err != nil {
		return nil, err
	}
	return ParseDests(msgs, k.Family)
}

// Daemons lists the sync daemons the kernel runs.
func (n *Conn) Daemons() ([]Daemon, error) {
	msgs, err := n.dump(CmdGetDaemon, nil)
	if err != nil {
		return nil, err
	}
	return ParseDaemons(msgs)
}

// StartDaemon starts d; EEXIST when one already runs in its state.
func (n *Conn) StartDaemon(d Daemon) error {
	_, err := n.execute(CmdNewDaemon, encodeDaemon(&d, true), netlink.Request|netlink.Acknowledge)
	return err
}

// StopDaemon stops the daemon in state (IP_VS_STATE_*); ESRCH when none runs.
func (n *Conn) StopDaemon(state uint32) error {
	_, err := n.execute(CmdDelDaemon, encodeDaemon(&Daemon{State: state}, false), netlink.Request|netlink.Acknowledge)
	return err
}

// Info reads the IPVS version and connection table size.
func (n *Conn) Info() (Info, error) {
	msgs, err := n.execute(CmdGetInfo, nil, netlink.Request)
	if err != nil {
		return Info{}, err
	}
	return ParseInfo(msgs)
}

// Timeouts reads the connection timeouts.
func (n *Conn) Timeouts() (Timeouts, error) {
	msgs, err := n.execute(CmdGetConfig, nil, netlink.Request)
	if err != nil {
		return Timeouts{}, err
	}
	return ParseTimeouts(msgs)
}

// Batch performs ws in order, each on its own, in as few system calls as
// the buffers allow, and returns one result per write: nil, the kernel's
// errno, or an error matching ErrOutcomeUnknown when the answer was lost.
//
// github.com/cloudflare/ipvs sends one request and waits for its ack;
// here many requests go in one sendmsg, only the last asks for an ack, and
// the kernel answers the others only when they fail (it acks every error,
// ack flag or not), naming them by sequence number.
func (n *Conn) Batch(ws []Write) []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	errs := make([]error, len(ws))
	msgs := make([]netlink.Message, 0, min(len(ws), n.maxMsgs))
	idx := make([]int, 0, cap(msgs))
	size := 0
	flush := func() {
		if len(msgs) > 0 {
			n.round(msgs, idx, errs)
		}
		msgs, idx, size = msgs[:0], idx[:0], 0
	}
	for i := range ws {
		data, err := encodeWrite(&ws[i])
		if err != nil {
			errs[i] = err
			continue
		}
		size1 := 16 + len(data) // nlmsghdr
		if len(msgs) == n.maxMsgs || (len(msgs) > 0 && size+size1 > n.maxBytes) {
			flush()
		}
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(n.family), Flags: netlink.Request},
			Data:   data,
		})
		idx = append(idx, i)
		size += size1
	}
	flush()
	return errs
}

// round sends msgs (answering for ws[idx[i]]) in one sendmsg and collects
// the answers. Only the last message asks for an ack; since the kernel
// handles the batch in order before sendmsg returns, that ack comes after
// every error ack of the batch.
func (n *Conn) round(msgs []netlink.Message, idx []int, errs []error) {
	msgs[len(msgs)-1].Header.Flags |= netlink.Acknowledge
	sent, err := n.c.SendMessages(msgs)
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
	_ = n.c.SetReadDeadline(time.Now().Add(batchTimeout))
	defer n.c.SetReadDeadline(time.Time{})
	var lost error
	for {
		replies, err := n.c.Receive()
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
			_ = n.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
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

// errnoOf reduces a netlink error to its errno, so that messages read
// "file exists" rather than "netlink receive: file exists" and errors.Is
// keeps working. Other errors pass through.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
