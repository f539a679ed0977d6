package checks

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The Manager's event loop (Options.EventLoop) runs plain HTTP and TCP
// checks on one goroutine over non-blocking sockets and one epoll set, and
// reads the clock once per wake-up for every socket and timer that woke
// it, as keepalived's checker does. The goroutine per attempt costs about
// a dozen clock reads per check in the Go runtime (scheduler passes,
// timers, deadlines), and in a VM that traps clock reads (User-Mode Linux)
// those dominate a check's cost. See docs/design/check-worker.md.

// loopPlan is how the loop runs one attempt of a check: connect, send,
// then judge what the server sends.
type loopPlan struct {
	send      []byte
	sendStage string // how a failure to send is worded
	// judge judges the reply in buf, whose bytes from prev on are new; err
	// is nil while more may come, io.EOF once the server closed, or the
	// read's error (os.ErrDeadlineExceeded at the deadline). false asks
	// for more. With no judge nothing is read: the check is up once
	// connected and send is sent.
	judge func(buf []byte, prev int, err error) (Result, bool)
	max   int // reply bytes to read at most
}

// loopProber is a Prober whose checks the loop can run; false when this
// check needs a goroutine (TLS, a body to read).
type loopProber interface {
	loopPlan(Target) (loopPlan, bool)
}

// loopable reports whether e's checks can run in the loop.
func loopable(e *entry) bool {
	lp, ok := e.prober.(loopProber)
	if !ok {
		return false
	}
	_, ok = lp.loopPlan(e.target)
	return ok
}

type loop struct {
	m          *Manager
	epfd, evfd int
	// epf is epfd in the runtime's poller: the loop parks its goroutine
	// until the epoll set has events (or the next due time), rather than
	// blocking a thread in epoll_wait. A thread in a system call keeps
	// the runtime's monitor polling it every 20 µs (nanosleep), which cost
	// six system calls per check.
	epf     *os.File
	eprc    syscall.RawConn
	stopped chan struct{}

	mu       sync.Mutex
	due      dueHeap
	sleeping bool      // in epoll_wait, until wakeAt (zero: no timeout)
	wakeAt   time.Time // valid while sleeping
	closed   bool

	// The rest belongs to the loop's goroutine.
	base      time.Time // the wall clock, read at most every baseAge
	running   map[int32]*loopAttempt
	deadlines attemptHeap
	queue     []*entry // due beyond MaxInFlight
	readBuf   []byte
}

// startsPerRead is how many attempts the loop starts on one clock read.
const startsPerRead = 32

// baseAge is how long the loop goes by the monotonic clock alone before it
// reads the wall clock again (two clock reads instead of one).
const baseAge = 10 * time.Second

func newLoop(m *Manager) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	epf := os.NewFile(uintptr(epfd), "checks-epoll")
	eprc, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l := &loop{m: m, epfd: epfd, evfd: evfd, epf: epf, eprc: eprc, stopped: make(chan struct{}), running: map[int32]*loopAttempt{},
		base: time.Now(), readBuf: make([]byte, 4<<10)}
	go l.run()
	return l, nil
}

// loopTimer is a due attempt in the loop's schedule.
type loopTimer struct {
	at    time.Time
	e     *entry
	spent atomic.Bool // stopped, or taken by the loop
}

func (t *loopTimer) Stop() bool { return !t.spent.Swap(true) }

// schedule queues an attempt of e at at, waking the loop if it sleeps
// past that.
func (l *loop) schedule(e *entry, at time.Time) Timer {
	t := &loopTimer{at: at, e: e}
	l.mu.Lock()
	heap.Push(&l.due, t)
	wake := l.sleeping && (l.wakeAt.IsZero() || at.Before(l.wakeAt))
	if wake {
		l.sleeping = false // one wake-up is enough
	}
	l.mu.Unlock()
	if wake {
		l.kick()
	}
	return t
}

func (l *loop) kick() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.evfd, one[:])
}

// close stops the loop and waits for it; attempts under way are dropped.
func (l *loop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.kick()
	<-l.stopped
}

// now is the time, from one clock read.
func (l *loop) now() time.Time {
	d := time.Since(l.base)
	if d >= baseAge {
		l.base = time.Now()
		return l.base
	}
	return l.base.Add(d)
}

func (l *loop) run() {
	defer close(l.stopped)
	events := make([]unix.EpollEvent, 256)
	now := l.now()
	for {
		l.startDue(now)
		l.expire(now)
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			l.shutdown()
			return
		}
		next := time.Time{}
		if l.due.Len() > 0 {
			next = l.due[0].at
		}
		if len(l.deadlines) > 0 && (next.IsZero() || l.deadlines[0].deadline.Before(next)) {
			next = l.deadlines[0].deadline
		}
		if len(l.queue) > 0 && len(l.running) < l.m.maxFlight {
			next = now
		}
		l.sleeping, l.wakeAt = true, next
		l.mu.Unlock()
		n := l.wait(events, next)
		l.mu.Lock()
		l.sleeping = false
		l.mu.Unlock()
		now = l.now()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(l.evfd) {
				var b [8]byte
				_, _ = unix.Read(l.evfd, b[:])
				continue
			}
			if a := l.running[ev.Fd]; a != nil {
				l.ready(a, ev.Events, now)
			}
		}
	}
}

// wait waits until the epoll set has events or next comes (zero: no
// timeout), and returns the events, as many as fit.
func (l *loop) wait(events []unix.EpollEvent, next time.Time) int {
	n := 0
	collect := func(fd uintptr) bool {
		var err error
		for {
			n, err = unix.EpollWait(int(fd), events, 0)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if err != nil {
			// Not expected with valid arguments; go on by the clock.
			l.m.log.Error("health checks: epoll_wait failed", "err", err)
			n = 0
			return false // wait, rather than spin
		}
		return n > 0
	}
	_ = l.epf.SetReadDeadline(next)
	// Read tries collect before it waits, and again after each wake-up:
	// the runtime forgets readiness it saw before the call, so waiting
	// first could miss events that came while the loop worked.
	err := l.eprc.Read(collect)
	if errors.Is(err, os.ErrDeadlineExceeded) && n == 0 {
		// Woken by the clock: collect what came meanwhile, so that
		// answers are read before their attempts' deadlines are judged.
		collect(uintptr(l.epfd))
	}
	return n
}

// shutdown closes every socket of the loop, and the loop's own.
func (l *loop) shutdown() {
	for fd := range l.running {
		unix.Close(int(fd))
	}
	clear(l.running)
	l.deadlines = nil
	l.epf.Close()
	unix.Close(l.evfd)
}

// startDue starts the attempts due by now, up to MaxInFlight at once.
func (l *loop) startDue(now time.Time) {
	l.mu.Lock()
	for l.due.Len() > 0 && !l.due[0].at.After(now) {
		t := heap.Pop(&l.due).(*loopTimer)
		if !t.spent.Swap(true) {
			l.queue = append(l.queue, t.e)
		}
	}
	l.mu.Unlock()
	for i := 1; len(l.queue) > 0 && len(l.running) < l.m.maxFlight; i++ {
		e := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		if i%startsPerRead == 0 {
			// Starts cost a few system calls each: a long burst must not
			// shorten the last ones' timeouts.
			now = l.now()
		}
		l.start(e, now)
	}
}

// expire ends the attempts whose deadline has passed.
func (l *loop) expire(now time.Time) {
	for len(l.deadlines) > 0 && !l.deadlines[0].deadline.After(now) {
		a := l.deadlines[0]
		l.timeout(a, now)
	}
}

// loopAttempt is an attempt under way in the loop.
type loopAttempt struct {
	e        *entry
	b        begun
	plan     loopPlan
	fd       int
	deadline time.Time
	stage    int
	pending  bool // the connect is not yet known to have completed
	sent     int
	buf      []byte
	readLate bool // read after the deadline bytes received before it
	index    int  // in deadlines
}

const (
	stageConnect = iota // connecting; sending too when there is something to send
	stageRead
)

func (l *loop) start(e *entry, now time.Time) {
	b, ok := l.m.begin(e, now)
	if !ok {
		return
	}
	plan, _ := e.prober.(loopProber).loopPlan(e.target)
	fd, pending, err := connectNonblocking(e.target)
	if err != nil {
		l.m.finish(e, b, ioFailure("connect", err), now)
		return
	}
	// Edge-triggered, registered once: the connect's completion, the
	// reply and the server's close each wake the loop once.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		l.m.finish(e, b, failure("connect: epoll_ctl: %s", describe(err)), now)
		return
	}
	a := &loopAttempt{e: e, b: b, plan: plan, fd: fd, deadline: now.Add(b.timeout), pending: pending}
	l.running[int32(fd)] = a
	heap.Push(&l.deadlines, a)
	if !pending {
		l.advance(a, now)
	}
}

// ready handles epoll's events for a.
func (l *loop) ready(a *loopAttempt, events uint32, now time.Time) {
	if now.After(a.deadline) {
		// The loop woke late. expire judges the attempt, after the
		// attempts that fell due meanwhile have started and noted the
		// lag (the stall may be the checker's); it reads what came in
		// time without waiting for an event.
		return
	}
	if a.stage == stageConnect && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	l.advance(a, now)
}

// advance takes a as far as the socket allows without waiting.
func (l *loop) advance(a *loopAttempt, now time.Time) {
	if a.stage == stageConnect {
		if len(a.plan.send) == 0 {
			v, err := unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case err != nil:
				l.done(a, ioFailure("connect", err), now)
				return
			case v != 0:
				l.done(a, ioFailure("connect", syscall.Errno(v)), now)
				return
			}
			if _, err := unix.Getpeername(a.fd); err != nil {
				return // still connecting: a spurious wake-up
			}
			a.pending = false
		}
		for a.sent < len(a.plan.send) {
			n, err := unix.Write(a.fd, a.plan.send[a.sent:])
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return // connecting still, or a full send buffer
			case err != nil:
				// A refused connect shows in the first write.
				l.done(a, ioFailure(a.sendStage(), err), now)
				return
			}
			a.pending = false
			a.sent += n
		}
		if a.plan.judge == nil {
			l.done(a, success("connected"), now)
			return
		}
		a.stage = stageRead
	}
	l.read(a, now, now.After(a.deadline))
}

// read reads what the socket holds and judges it. A late loop (past the
// deadline) keeps only bytes the kernel received in time, and then ends
// the attempt: a timeout, unless what came in time suffices.
func (l *loop) read(a *loopAttempt, now time.Time, late bool) {
	for {
		if len(a.buf) >= a.plan.max {
			l.done(a, failure("reply longer than %d bytes", a.plan.max), now)
			return
		}
		p := l.readBuf[:min(len(l.readBuf), a.plan.max-len(a.buf))]
		var n int
		var err error
		if late {
			var at time.Time
			n, at = readStamped(a.fd, p)
			if n == 0 || at.IsZero() || at.After(a.deadline) {
				n, err = 0, os.ErrDeadlineExceeded
			} else {
				a.readLate = true
			}
		} else {
			n, err = unix.Read(a.fd, p)
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return
			case err != nil:
				n = 0
			case n == 0:
				err = io.EOF
			}
		}
		prev := len(a.buf)
		a.buf = append(a.buf, p[:n]...)
		if r, done := a.plan.judge(a.buf, prev, err); done {
			l.done(a, r, now)
			return
		}
		if err != nil {
			l.done(a, failure("reply not judged at %s", describe(err)), now)
			return
		}
	}
}

// timeout ends a at its deadline. Bytes the kernel received in time are
// still read and judged first.
func (l *loop) timeout(a *loopAttempt, now time.Time) {
	if a.stage == stageRead {
		l.read(a, now, true)
		return
	}
	l.done(a, ioFailure(a.sendStage(), os.ErrDeadlineExceeded), now)
}

// sendStage names the stage a failure before the reply belongs to: the
// connect's until it is known to have completed, as on the goroutine path.
func (a *loopAttempt) sendStage() string {
	if a.pending {
		return "connect"
	}
	return a.plan.sendStage
}

// done closes a's socket and hands its result to the Manager.
func (l *loop) done(a *loopAttempt, r Result, now time.Time) {
	delete(l.running, int32(a.fd))
	heap.Remove(&l.deadlines, a.index)
	unix.Close(a.fd) // also leaves the epoll set
	r.ReadLate = r.ReadLate || a.readLate
	l.m.finish(a.e, a.b, wordTimeout(r, a.b.timeout), now)
}

// dueHeap orders due attempts by time.
type dueHeap []*loopTimer

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(*loopTimer)) }
func (h *dueHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// attemptHeap orders attempts under way by deadline.
type attemptHeap []*loopAttempt

func (h attemptHeap) Len() int           { return len(h) }
func (h attemptHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h attemptHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *attemptHeap) Push(x any) {
	a := x.(*loopAttempt)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *attemptHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return a
}
