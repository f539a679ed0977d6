package checks

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func fileProbe(t *testing.T, s FileSpec) Result {
	t.Helper()
	return probe(t, mustProber(t, Spec{Type: TypeFile, File: s}), srvA, time.Second)
}

func TestFileCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weight")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		content string // "" : no file
		spec    FileSpec
		up      bool
		adjust  int
		reason  string
	}{
		// weight 0: a switch.
		{"", FileSpec{}, true, 0, "missing, counts as 0"},
		{"0\n", FileSpec{}, true, 0, "value 0"},
		{"1\n", FileSpec{}, false, 0, "value 1: down"},
		{"1\n", FileSpec{Reverse: true}, true, 0, "value 1"},
		{"0\n", FileSpec{Reverse: true}, false, 0, "value 0: down"},
		{"", FileSpec{Reverse: true}, false, 0, "missing, counts as 0: down"},
		{"maintenance\n", FileSpec{}, true, 0, "not a number, counts as 0"},
		// a weight: value × weight is added.
		{"5", FileSpec{Weight: 2}, true, 10, "value 5: weight +10"},
		{"  -3 # comment", FileSpec{Weight: 2}, true, -6, "value -3: weight -6"},
		{"0x10", FileSpec{Weight: 1}, true, 16, "value 16: weight +16"},
		{"010", FileSpec{Weight: 1}, true, 8, "value 8: weight +8"},
		{"5", FileSpec{Weight: 2, Reverse: true}, true, -10, "value 5: weight -10"},
		{"-2147483648", FileSpec{Weight: 1}, false, 0, "value -2147483648 × weight 1: down"},
		{"-1", FileSpec{Weight: math.MaxInt32}, true, -math.MaxInt32, "weight -2147483647"},
		{"-2", FileSpec{Weight: math.MaxInt32}, false, 0, "× weight 2147483647: down"},
		{"99999999999", FileSpec{Weight: 3}, true, math.MaxInt32, "value 2147483647: weight +2147483647"},
	}
	for _, c := range tests {
		os.Remove(path)
		if c.content != "" {
			write(c.content)
		}
		c.spec.Path = path
		r := fileProbe(t, c.spec)
		if r.OK != c.up || r.Adjust != c.adjust || !strings.Contains(r.Reason, c.reason) {
			t.Errorf("%q %+v: OK %v adjust %d %q; want %v %d %q", c.content, c.spec, r.OK, r.Adjust, r.Reason, c.up, c.adjust, c.reason)
		}
	}
	// A FIFO with no writer must not hang the check.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := fileProbe(t, FileSpec{Path: fifo}); !r.OK || r.Latency > 500*time.Millisecond {
		t.Errorf("fifo: %+v", r)
	}
	// A directory is unreadable: 0.
	if r := fileProbe(t, FileSpec{Path: t.TempDir(), Reverse: true}); r.OK || !strings.Contains(r.Reason, "unreadable, counts as 0: is a directory") {
		t.Errorf("directory: %+v", r)
	}
}

func TestParseFileValue(t *testing.T) {
	for in, want := range map[string]int64{
		"12": 12, "+7\n": 7, " \t-20": -20, "0x1f": 31, "0X1F": 31, "017": 15, "0": 0, "08": 0,
		"0x": 0, "12abc": 12, "4294967296": math.MaxInt32, "-4294967296": math.MinInt32,
		strings.Repeat("9", 100): math.MaxInt32,
	} {
		if got, _ := ParseFileValue([]byte(in)); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
	for _, in := range []string{"", "x", "-", " + 1", "\n"} {
		if v, ok := ParseFileValue([]byte(in)); ok || v != 0 {
			t.Errorf("%q: %d %v, want no number", in, v, ok)
		}
	}
}

func TestFileSpecErrors(t *testing.T) {
	for _, s := range []FileSpec{{}, {Path: "relative/file"}, {Path: "/x", Weight: math.MaxInt32 + 1}} {
		if _, err := NewProber(Spec{Type: TypeFile, File: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	s := Spec{Type: TypeFile, File: FileSpec{Path: "/x"}}.Normalized()
	if s.Interval != time.Second || s.Rise != 1 || s.Fall != 1 {
		t.Errorf("file defaults %+v", s)
	}
}

// The manager carries a file check's adjustment into its status, and a
// change of it is an event, as a dynamic weight is.
func TestManagerFileAdjust(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "w")
	if err := os.WriteFile(path, []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 10)
	m := NewManager(Options{StartSpread: 10 * time.Millisecond, Logger: quiet, OnEvent: func(e Event) { events <- e }})
	defer m.Close()
	id, err := m.Add(Check{Server: srvA, Spec: Spec{Type: TypeFile, Interval: 20 * time.Millisecond, File: FileSpec{Path: path, Weight: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	next := func() Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	if e := next(); e.Status.Health != Up || e.Status.Adjust != 15 {
		t.Fatalf("first event %+v", e.Status)
	}
	if err := os.WriteFile(path, []byte("-2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Prev != Up || e.Status.Health != Up || e.Status.Adjust != -10 {
		t.Fatalf("second event %+v", e.Status)
	}
	if st, _ := m.Status(id); st.Adjust != -10 {
		t.Fatalf("status %+v", st)
	}
}
