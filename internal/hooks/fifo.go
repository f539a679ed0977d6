package hooks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"syscall"
)

// pipeBuf is the size up to which a pipe write is atomic (POSIX PIPE_BUF
// on Linux): longer lines could interleave with another writer's.
const pipeBuf = 4096

// FIFO writes whole lines to a named pipe without ever blocking: it opens
// the pipe non-blocking, and a line that cannot be written at once (no
// reader, pipe full) is dropped and counted. After an error it reopens on
// the next line. It uses raw system calls because an *os.File would park
// the writer until the pipe drains.
type FIFO struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	fd      int // -1 when closed
	dropped uint64
	written uint64
	closed  bool
}

// NewFIFO prepares a writer for path, creating the FIFO (mode 0600) if
// nothing is there. It opens the pipe only when a line is written.
func NewFIFO(path string, log *slog.Logger) (*FIFO, error) {
	if log == nil {
		log = slog.Default()
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("notify_fifo: create %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("notify_fifo: %w", err)
	case fi.Mode()&os.ModeNamedPipe == 0:
		return nil, fmt.Errorf("notify_fifo: %s exists and is not a FIFO", path)
	}
	return &FIFO{path: path, log: log, fd: -1}, nil
}

// Path is the FIFO's path.
func (f *FIFO) Path() string { return f.path }

// WriteLine writes line and a newline as one write; it reports whether the
// line went out. It never blocks.
func (f *FIFO) WriteLine(line string) bool {
	b := frame(line)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	if f.fd < 0 {
		fd, err := syscall.Open(f.path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			// ENXIO: nobody reads. Normal while no consumer runs.
			f.drop(err)
			return false
		}
		f.fd = fd
	}
	n, err := syscall.Write(f.fd, b)
	if err != nil || n != len(b) {
		if err == nil {
			err = fmt.Errorf("short write %d of %d", n, len(b))
		}
		if !errors.Is(err, syscall.EAGAIN) {
			// EPIPE: the reader went away; open afresh next time.
			syscall.Close(f.fd)
			f.fd = -1
		}
		f.drop(err)
		return false
	}
	f.written++
	return true
}

// frame is line as one record of the FIFO: no newline but the last, and
// no longer than PIPE_BUF, so that one write(2) is atomic and a reader
// never sees two writers' lines interleaved or one line split in two. An
// embedded newline (the lines are built from validated names, so only a
// bug would put one there) becomes a space.
func frame(line string) []byte {
	b := []byte(line)
	if len(b) > pipeBuf-1 {
		b = b[:pipeBuf-1]
	}
	for i, c := range b {
		if c == '\n' {
			b[i] = ' '
		}
	}
	return append(b, '\n')
}

// drop counts a lost line, logging the first and then every 2^n-th.
func (f *FIFO) drop(err error) {
	f.dropped++
	if n := f.dropped; n&(n-1) == 0 {
		f.log.Warn("notify_fifo: line dropped", "path", f.path, "err", err, "dropped", n)
	}
}

// Counts returns the lines written and dropped so far.
func (f *FIFO) Counts() (written, dropped uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written, f.dropped
}

// Close closes the pipe; later lines are dropped silently.
func (f *FIFO) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.fd >= 0 {
		err := syscall.Close(f.fd)
		f.fd = -1
		return err
	}
	return nil
}

// InstanceLine is keepalived's line for an instance's state change:
// INSTANCE "web" MASTER 100.
func InstanceLine(name, state string, priority int) string {
	return fmt.Sprintf("INSTANCE %q %s %d", name, state, priority)
}

// GroupLine is keepalived's line for a sync group: GROUP "g1" FAULT.
func GroupLine(name, state string) string { return fmt.Sprintf("GROUP %q %s", name, state) }

// ServiceAddr is how keepalived writes a virtual or real server in its
// lines: [10.0.0.21]:tcp:80, or FWM 7 for a firewall-mark service.
func ServiceAddr(ap netip.AddrPort, proto string, fwmark int) string {
	if fwmark != 0 {
		return fmt.Sprintf("FWM %d", fwmark)
	}
	return fmt.Sprintf("[%s]:%s:%d", ap.Addr(), proto, ap.Port())
}

// GroupAddr is how keepalived's lines name a virtual server group:
// [NAME]:0 (a group has no address or port of its own).
func GroupAddr(name string) string { return "[" + name + "]:0" }

// RealServerLine is keepalived's line for a real server's transition:
// RS [10.0.0.21]:tcp:80 [192.0.2.10]:tcp:80 UP.
func RealServerLine(rs, vs string, up bool) string { return "RS " + rs + " " + vs + " " + upDown(up) }

// ServiceLine is keepalived's line for a quorum change: VS [192.0.2.10]:tcp:80 DOWN.
func ServiceLine(vs string, up bool) string { return "VS " + vs + " " + upDown(up) }

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}
