package track

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Writing, replacing by rename and removing the watched file are each
// reported; a sibling file is not.
func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maintenance")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hits := make(chan struct{}, 64)
	if err := WatchFile(ctx, path, func() { hits <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-hits:
			if !want {
				t.Fatalf("%s: reported", what)
			}
			for len(hits) > 0 { // one change may be several events
				<-hits
			}
		case <-time.After(map[bool]time.Duration{true: 5 * time.Second, false: 200 * time.Millisecond}[want]):
			if want {
				t.Fatalf("%s: not reported within 5s", what)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("a sibling written", false)
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("written", true)
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for len(hits) > 0 {
		<-hits
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	expect("replaced by rename", true)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	expect("removed", true)
	if err := WatchFile(ctx, filepath.Join(dir, "no-such-dir", "f"), func() {}); err == nil {
		t.Error("watching a file in a missing directory: no error")
	}
}

func inotifyRecord(mask uint32, name string, pad int) []byte {
	b := make([]byte, unix.SizeofInotifyEvent+len(name)+pad)
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[12:], uint32(len(name)+pad))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

func TestParseInotify(t *testing.T) {
	b := append(inotifyRecord(unix.IN_CREATE, "a", 3), inotifyRecord(unix.IN_DELETE, "maintenance", 5)...)
	got := parseInotify(append(b, 1, 2, 3)) // a truncated tail is dropped
	if len(got) != 2 || got[0].name != "a" || got[1].name != "maintenance" || got[1].mask != unix.IN_DELETE {
		t.Fatalf("parsed %+v", got)
	}
}

// The decoder never panics and never reads past its input.
func FuzzParseInotify(f *testing.F) {
	f.Add(inotifyRecord(unix.IN_CLOSE_WRITE, "maintenance", 4))
	f.Add(append(inotifyRecord(unix.IN_Q_OVERFLOW, "", 0), inotifyRecord(unix.IN_MOVED_TO, "x", 15)...))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ev := range parseInotify(b) {
			if len(ev.name) > len(b) {
				t.Fatalf("name longer than the input: %q", ev.name)
			}
		}
	})
}
