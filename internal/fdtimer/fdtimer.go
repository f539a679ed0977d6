// Package fdtimer is a one-shot timer on a Linux timerfd, waited for by Go's
// poller, for the VRRP instances' advert and Master_Down timers.
//
// Why not time.Timer: while a runtime timer is pending and the process is
// idle, the runtime's monitor thread (sysmon) sleeps only until the timer
// is due, and wakes with it, then polls a few times before it sleeps again;
// and the poller waits in epoll with millisecond timeouts, so it wakes early
// and spins to the deadline. At 20 ms adverts that is several thread wakes
// per advert, where keepalived's VRRP process wakes about once; inside UML,
// where each wake and clock read is a trapped system call, it is CPU that
// the VRRP process then lacks under load. A timerfd is waited for like a
// socket: one wake of the poller's thread, at the nanosecond.
package fdtimer

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Timer is a one-shot timer. Unlike time.Timer it holds a descriptor and a
// goroutine: Close releases them.
type Timer struct {
	f *os.File
	c chan time.Time
	// mu orders the reader's delivery after Reset and Stop: an expiry
	// read before a Reset is not delivered after it.
	mu sync.Mutex
}

// New returns a stopped timer.
func New() (*Timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	t := &Timer{f: os.NewFile(uintptr(fd), "timerfd"), c: make(chan time.Time, 1)}
	go t.run()
	return t, nil
}

// C receives once each time the timer fires. The value is the zero Time:
// callers that need the time read their clock (the instance loop does; the
// time a timer was due says nothing of how late it fired).
func (t *Timer) C() <-chan time.Time { return t.c }

// Reset arms the timer to fire after d (at once if d <= 0) and reports
// whether it was armed. A firing of the previous arming that was not
// received is dropped.
func (t *Timer) Reset(d time.Duration) bool {
	if d <= 0 {
		d = 1 // a zero value would disarm the timerfd
	}
	return t.set(d)
}

// Stop disarms the timer and reports whether it was armed. A firing that
// was not received is dropped.
func (t *Timer) Stop() bool { return t.set(0) }

func (t *Timer) set(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old unix.ItimerSpec
	t.control(func(fd int) {
		// timerfd_settime also zeroes the expiry count: an expiry the
		// reader has not read yet is gone with it.
		_ = unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}, &old)
	})
	select {
	case <-t.c:
	default:
	}
	return old.Value.Sec != 0 || old.Value.Nsec != 0
}

// Close releases the timer. It does not fire after Close.
func (t *Timer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

// control runs fn with the descriptor, unless the timer is closed.
func (t *Timer) control(fn func(fd int)) {
	rc, err := t.f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// run delivers each expiry until Close.
func (t *Timer) run() {
	var b [8]byte
	for {
		if _, err := t.f.Read(b[:]); err != nil {
			return // closed
		}
		t.mu.Lock()
		// The expiry was read before a Reset that holds mu re-armed the
		// timer: it belongs to the old arming. A one-shot timerfd reads
		// zero once it has fired.
		var cur unix.ItimerSpec
		live := false
		t.control(func(fd int) {
			live = unix.TimerfdGettime(fd, &cur) == nil && cur.Value.Sec == 0 && cur.Value.Nsec == 0
		})
		if live {
			select {
			case t.c <- time.Time{}:
			default:
			}
		}
		t.mu.Unlock()
	}
}
