package track

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

func script(name string, rise, fall int) config.Script {
	return config.Script{Name: name, Command: []string{"true"}, Interval: config.Duration(time.Second),
		Timeout: config.Duration(time.Second), Rise: rise, Fall: fall}
}

func TestScriptRiseFall(t *testing.T) {
	clk, run := newFakeClock(), newFakeRunner()
	var changes atomic.Int32
	m := New(Options{Clock: clk, Runner: run, OnChange: func() { changes.Add(1) }})
	defer m.Close()
	run.set("chk", true)
	m.Set(&config.Config{Scripts: []config.Script{script("chk", 2, 3)}})
	k := Key{KindScript, "chk"}
	if st, _ := m.State(k); st.Known || st.Status() != "init" || st.Result != notRun {
		t.Fatalf("before the first run: %+v, want init and not run yet", st)
	}
	clk.Advance(0) // the first run, at once
	if st, _ := m.State(k); !st.Up || st.Result != "exit status 0" {
		t.Fatalf("after a success: %+v", st)
	}
	run.set("chk", false)
	for i := 1; i <= 2; i++ {
		clk.Advance(time.Second)
		if st, _ := m.State(k); !st.Up || st.Falls != i {
			t.Fatalf("failure %d of fall 3: %+v, want still up with %d falls", i, st, i)
		}
	}
	clk.Advance(time.Second)
	st, _ := m.State(k)
	if st.Up || st.Status() != "down" || st.Result != "exit status 1" {
		t.Fatalf("after 3 failures: %+v, want down", st)
	}
	if n := changes.Load(); n != 2 {
		t.Errorf("OnChange called %d times, want 2 (the first result, then up to down)", n)
	}
	run.set("chk", true)
	clk.Advance(time.Second)
	if st, _ := m.State(k); st.Up {
		t.Fatalf("one success of rise 2 made it up: %+v", st)
	}
	clk.Advance(time.Second)
	if st, _ := m.State(k); !st.Up {
		t.Fatalf("two successes of rise 2: %+v, want up", st)
	}
	if n := run.count("chk"); n != 6 {
		t.Errorf("%d runs in 5 intervals from the start, want 6", n)
	}
}

// The first run decides at once: a node whose script fails at start does
// not wait fall runs to lower its priority.
func TestScriptFirstRunDecides(t *testing.T) {
	clk, run := newFakeClock(), newFakeRunner()
	m := New(Options{Clock: clk, Runner: run})
	defer m.Close()
	m.Set(&config.Config{Scripts: []config.Script{script("chk", 5, 5)}})
	clk.Advance(0)
	if st, _ := m.State(Key{KindScript, "chk"}); st.Up {
		t.Fatalf("after a failing first run: %+v, want down", st)
	}
}

func TestReloadKeepsUnchangedState(t *testing.T) {
	clk, run := newFakeClock(), newFakeRunner()
	m := New(Options{Clock: clk, Runner: run})
	defer m.Close()
	a, b := script("a", 1, 3), script("b", 1, 3)
	m.Set(&config.Config{Scripts: []config.Script{a, b}})
	run.set("a", true)
	run.set("b", true)
	clk.Advance(0)
	run.set("a", false)
	run.set("b", false)
	clk.Advance(time.Second) // one failure each, towards fall 3
	b2 := b
	b2.Fall = 4
	m.Set(&config.Config{Scripts: []config.Script{a, b2}})
	if st, _ := m.State(Key{KindScript, "a"}); st.Falls != 1 || st.Result != "exit status 1" {
		t.Errorf("unchanged script after reload: %+v, want its falls kept", st)
	}
	if st, _ := m.State(Key{KindScript, "b"}); st.Falls != 0 || st.Known {
		t.Errorf("changed script after reload: %+v, want started anew", st)
	}
	m.Set(&config.Config{Scripts: []config.Script{a}})
	if _, ok := m.State(Key{KindScript, "b"}); ok {
		t.Error("removed script still tracked")
	}
	before := run.count("b")
	clk.Advance(5 * time.Second)
	if run.count("b") != before {
		t.Error("removed script still runs")
	}
}

func TestTrackFile(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	content, readErr := []byte(nil), error(fs.ErrNotExist)
	setFile := func(data string, err error) {
		mu.Lock()
		defer mu.Unlock()
		content, readErr = []byte(data), err
	}
	var changes atomic.Int32
	m := New(Options{Clock: clk, OnChange: func() { changes.Add(1) }, ReadFile: func(string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		return content, readErr
	}})
	defer m.Close()
	w := 1
	m.Set(&config.Config{TrackFiles: []config.TrackFile{{Name: "maint", Path: "/x", Weight: &w}}})
	k := Key{KindFile, "maint"}
	tests := []struct {
		data   string
		err    error
		value  int
		result string
	}{
		{"", fs.ErrNotExist, 0, "missing (counts as 0)"},
		{"  -20\n", nil, -20, "value -20"},
		{"7", nil, 7, "value 7"},
		{"0x10", nil, 16, "value 16"},
		{"010", nil, 8, "value 8"},
		{"12 apples", nil, 12, "value 12"},
		{"9999", nil, 254, "value 254"},
		{"-9999", nil, -254, "value -254"},
		{"maintenance", nil, 0, `not a number (counts as 0): "maintenance"`},
		{"", errors.New("permission denied"), 0, "unreadable (counts as 0): permission denied"},
		{"", nil, 0, `not a number (counts as 0): ""`},
	}
	for _, tc := range tests {
		setFile(tc.data, tc.err)
		clk.Advance(PollInterval)
		st, _ := m.State(k)
		if st.Value != tc.value || !st.Up || st.Result != tc.result {
			t.Errorf("file %q (%v): %+v, want value %d result %q", tc.data, tc.err, st, tc.value, tc.result)
		}
	}
	if changes.Load() == 0 {
		t.Error("value changes did not call OnChange")
	}
}

func TestTrackProcessQuorumAndDelay(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	var procs []Proc
	setProcs := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		procs = []Proc{{Comm: "bash", Argv: []string{"bash"}}}
		for range n {
			procs = append(procs, Proc{Comm: "haproxy", Argv: []string{"/usr/sbin/haproxy", "-f", "/etc/haproxy"}})
		}
	}
	m := New(Options{Clock: clk, Procs: func() ([]Proc, error) {
		mu.Lock()
		defer mu.Unlock()
		return procs, nil
	}})
	defer m.Close()
	setProcs(2)
	m.Set(&config.Config{TrackProcesses: []config.TrackProcess{
		{Name: "hap", Process: "haproxy", Quorum: 1, QuorumMax: 2, Delay: config.Duration(3 * time.Second)},
	}})
	k := Key{KindProcess, "hap"}
	clk.Advance(0)
	if st, _ := m.State(k); !st.Up || st.Value != 2 || st.Result != "2 processes" {
		t.Fatalf("2 processes in quorum 1-2: %+v", st)
	}
	setProcs(0)
	clk.Advance(2 * time.Second)
	if st, _ := m.State(k); !st.Up {
		t.Fatalf("down for 2s of a 3s delay: %+v, want still up", st)
	}
	setProcs(1)
	clk.Advance(time.Second) // back in quorum before the delay passed
	setProcs(0)
	clk.Advance(3 * time.Second) // seen out of quorum at 4s, 5s, 6s
	if st, _ := m.State(k); !st.Up {
		t.Fatalf("out of quorum for 2s since the blip, of a 3s delay: %+v, want still up", st)
	}
	clk.Advance(time.Second)
	if st, _ := m.State(k); st.Up || st.Value != 0 {
		t.Fatalf("down for 3s of a 3s delay: %+v, want down", st)
	}
	setProcs(3)
	clk.Advance(3 * time.Second)
	if st, _ := m.State(k); st.Up {
		t.Fatalf("3 processes above quorum_max 2: %+v, want down", st)
	}
}

func TestCount(t *testing.T) {
	ps := []Proc{
		{Comm: "haproxy", Argv: []string{"/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg"}},
		{Comm: "haproxy", Argv: []string{"/usr/sbin/haproxy", "-W"}},
		{Comm: "kworker/0:1"},
		{Comm: "nginx", Argv: []string{"nginx: master process"}},
	}
	for _, tc := range []struct {
		c    config.TrackProcess
		want int
	}{
		{config.TrackProcess{Process: "haproxy"}, 2},
		{config.TrackProcess{Argv: []string{"/usr/sbin/haproxy", "-f"}}, 1},
		{config.TrackProcess{Argv: []string{"/usr/sbin/haproxy"}}, 2},
		{config.TrackProcess{Argv: []string{"nginx: master process"}}, 1},
		{config.TrackProcess{Process: "kworker"}, 0},
	} {
		if n := Count(ps, tc.c); n != tc.want {
			t.Errorf("%+v: %d, want %d", tc.c, n, tc.want)
		}
	}
}

// A nil Manager (a daemon built by hand in tests) tracks nothing.
func TestNilManager(t *testing.T) {
	var m *Manager
	m.Set(&config.Config{Scripts: []config.Script{script("a", 1, 1)}})
	if _, ok := m.State(Key{KindScript, "a"}); ok || m.States() != nil {
		t.Error("a nil manager reports state")
	}
	m.Close()
}

// A track file's change is seen when it is written, not at the next poll:
// the fake clock never moves, so only the inotify watch can re-read it.
func TestTrackFileWatched(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "maintenance")
	changed := make(chan struct{}, 16)
	m := New(Options{Clock: clk, OnChange: func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}})
	defer m.Close()
	w := 0
	m.Set(&config.Config{TrackFiles: []config.TrackFile{{Name: "maint", Path: path, Weight: &w}}})
	clk.Advance(0) // the first read: missing, counts as 0
	k := Key{KindFile, "maint"}
	for _, v := range []int{1, 0, 5} {
		if err := os.WriteFile(path+".tmp", []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for st, _ := m.State(k); st.Value != v; st, _ = m.State(k) {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("file set to %d: state %+v after 5s without a poll", v, st)
			}
		}
	}
}
