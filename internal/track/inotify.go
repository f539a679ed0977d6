package track

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A file tracker re-reads its file as soon as the kernel says it changed,
// as keepalived's track_file does with inotify: the maintenance-file
// pattern then moves mastership within a few milliseconds, not up to a
// poll interval later. The poll stays as the fallback (a file system
// without inotify, a directory created later).

// dirEvents is what a watched directory reports about a file in it: it was
// written and closed, created, deleted or renamed in or out.
const dirEvents = unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_MODIFY

// WatchFile calls changed each time path (which need not exist yet) may
// have changed, until ctx ends. It watches the parent directory, so that
// a file replaced by rename (how editors and configuration tools write) is
// seen too. It returns an error if the directory cannot be watched.
func WatchFile(ctx context.Context, path string, changed func()) error {
	dir, name := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, dirEvents|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// A non-blocking fd under os.File waits in Go's poller, and Close
	// wakes the reader.
	f := os.NewFile(uintptr(fd), "inotify:"+dir)
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return // closed, or the watch is gone: the poll carries on
			}
			hit := false
			for _, ev := range parseInotify(buf[:n]) {
				hit = hit || ev.name == name || ev.mask&unix.IN_Q_OVERFLOW != 0
			}
			if hit && ctx.Err() == nil {
				changed()
			}
		}
	}()
	return nil
}

// inotifyEvent is one decoded event: its mask and the name within the
// watched directory.
type inotifyEvent struct {
	mask uint32
	name string
}

var errShortEvent = errors.New("inotify: truncated event")

// parseInotify decodes a read of inotify events: each a fixed header
// (wd, mask, cookie, len) and len bytes of NUL-padded name. A truncated
// tail is dropped.
func parseInotify(b []byte) []inotifyEvent {
	var out []inotifyEvent
	for len(b) > 0 {
		ev, rest, err := nextInotify(b)
		if err != nil {
			break
		}
		out = append(out, ev)
		b = rest
	}
	return out
}

func nextInotify(b []byte) (inotifyEvent, []byte, error) {
	if len(b) < unix.SizeofInotifyEvent {
		return inotifyEvent{}, nil, errShortEvent
	}
	mask := binary.NativeEndian.Uint32(b[4:8])
	l := int(binary.NativeEndian.Uint32(b[12:16]))
	if l < 0 || l > len(b)-unix.SizeofInotifyEvent {
		return inotifyEvent{}, nil, errShortEvent
	}
	raw := b[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+l]
	for i, c := range raw {
		if c == 0 {
			raw = raw[:i]
			break
		}
	}
	return inotifyEvent{mask: mask, name: string(raw)}, b[unix.SizeofInotifyEvent+l:], nil
}
