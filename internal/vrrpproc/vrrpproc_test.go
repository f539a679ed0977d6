package vrrpproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/testwait"
)

// The test binary is its own child: run with the argument below, it
// serves a fake Handler on descriptors 3 and 4.
const childArg = "vrrpproc-test-child"

func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == childArg {
		from, to, err := childproc.Pipes()
		if err == nil {
			o := NewOut(to)
			err = Serve(context.Background(), from, o, &fakeHandler{out: o})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeHandler stands for the daemon's instances: one instance, "web",
// master once configured; its state's reason tells what it was given.
type fakeHandler struct {
	out     *Out
	mu      sync.Mutex
	configs []string
	tracks  map[string]bool
}

func (h *fakeHandler) Configure(_ context.Context, c ConfigMsg) error {
	if string(c.Text) == "refuse" {
		return errors.New("refused: " + c.File)
	}
	h.mu.Lock()
	h.configs = append(h.configs, string(c.Text))
	first := len(h.configs) == 1
	h.mu.Unlock()
	if first {
		h.out.Master("web", true)
	}
	return nil
}

func (h *fakeHandler) SetTracks(t map[string]bool) {
	h.mu.Lock()
	h.tracks = t
	h.mu.Unlock()
}

func (h *fakeHandler) State(context.Context) ([]control.InstanceState, []control.SyncGroupState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var keys []string
	for k, up := range h.tracks {
		keys = append(keys, fmt.Sprintf("%s=%v", k, up))
	}
	slices.Sort(keys)
	return []control.InstanceState{{Name: "web", State: "MASTER",
		LastReason: fmt.Sprintf("configs %s tracks %s pid %d", strings.Join(h.configs, ","), strings.Join(keys, ","), os.Getpid())}}, nil
}

func (h *fakeHandler) Failover(_ context.Context, name string) error { return h.known(name) }
func (h *fakeHandler) Failback(_ context.Context, name string) error { return h.known(name) }
func (h *fakeHandler) Ping(context.Context) error                    { return nil }

func (h *fakeHandler) known(name string) error {
	if name != "" && name != "web" {
		return fmt.Errorf("no instance named %q", name)
	}
	return nil
}

type rig struct {
	c       *Client
	mu      sync.Mutex
	masters []string
}

func start(t *testing.T, text string) (*rig, error) {
	t.Helper()
	r := &rig{}
	c, err := Start(Config{
		Argv:         []string{os.Args[0], childArg},
		Env:          ChildEnv(os.Environ()),
		RestartDelay: 10 * time.Millisecond,
		OnMaster: func(in string, m bool) {
			r.mu.Lock()
			r.masters = append(r.masters, fmt.Sprintf("%s=%v", in, m))
			r.mu.Unlock()
		},
	}, ConfigMsg{File: "director.yaml", Text: []byte(text)})
	if err != nil {
		return nil, err
	}
	r.c = c
	t.Cleanup(func() { c.Close(context.Background()) })
	return r, nil
}

func (r *rig) reason(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ins, _, err := r.c.State(ctx)
	if err != nil || len(ins) != 1 {
		t.Fatalf("State: %v, %v", ins, err)
	}
	return ins[0].LastReason
}

func TestChildRunsTheInstances(t *testing.T) {
	r, err := start(t, "v1")
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "the master report", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Equal(r.masters, []string{"web=true"})
	})
	r.c.SetTracks(map[string]bool{TrackKey("service", "http"): false})
	ctx := context.Background()
	if err := r.c.Reload(ctx, ConfigMsg{File: "director.yaml", Text: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	if got := r.reason(t); !strings.HasPrefix(got, "configs v1,v2 tracks service http=false ") {
		t.Errorf("the child has %q, want both configurations and the tracks", got)
	}
	if err := r.c.Reload(ctx, ConfigMsg{File: "director.yaml", Text: []byte("refuse")}); err == nil || !strings.Contains(err.Error(), "refused: director.yaml") {
		t.Errorf("a refused reload: %v, want the child's refusal", err)
	}
	if err := r.c.Failover(ctx, "web"); err != nil {
		t.Errorf("Failover: %v", err)
	}
	if err := r.c.Failback(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `no instance named "nope"`) {
		t.Errorf("Failback of an unknown instance: %v", err)
	}
	if err := r.c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestChildRefusingToStartFailsTheStart(t *testing.T) {
	if _, err := start(t, "refuse"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Start: %v, want the child's refusal", err)
	}
}

// A child that dies is replaced, and the new one gets the configuration
// and the tracks the old one had.
func TestDeadChildIsReplaced(t *testing.T) {
	r, err := start(t, "v1")
	if err != nil {
		t.Fatal(err)
	}
	r.c.SetTracks(map[string]bool{TrackKey("real_server", "http/10.0.0.21:80"): true})
	before := r.reason(t)
	r.c.mu.Lock()
	first := r.c.cur
	r.c.mu.Unlock()
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "a second child", func() bool { return r.c.Starts() == 2 })
	var after string
	testwait.Eventually(t, 10*time.Second, "the second child answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ins, _, err := r.c.State(ctx)
		if err != nil || len(ins) != 1 {
			return false
		}
		after = ins[0].LastReason
		return strings.Contains(after, "tracks real_server")
	})
	if !strings.HasPrefix(after, "configs v1 tracks real_server http/10.0.0.21:80=true pid ") || after == before {
		t.Errorf("the new child has %q (the old had %q), want v1 and the tracks, in another process", after, before)
	}
}

func TestCloseEndsTheChild(t *testing.T) {
	r, err := start(t, "v1")
	if err != nil {
		t.Fatal(err)
	}
	r.c.mu.Lock()
	ch := r.c.cur
	r.c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.c.Close(ctx)
	if ch.cmd.ProcessState == nil || !ch.cmd.ProcessState.Success() {
		t.Fatalf("the child did not exit cleanly: %v", ch.cmd.ProcessState)
	}
	if _, _, err := r.c.State(context.Background()); !errors.Is(err, ErrEnded) {
		t.Errorf("State after Close: %v, want ErrEnded", err)
	}
}

func TestChildEnvDropsSystemdsVariables(t *testing.T) {
	got := ChildEnv([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1000", "AWS_REGION=eu-west-1", "WATCHDOG_PID=1"})
	if !slices.Equal(got, []string{"PATH=/bin", "AWS_REGION=eu-west-1"}) {
		t.Errorf("ChildEnv = %v", got)
	}
}

func TestDecodeRefusesMixedMessages(t *testing.T) {
	for _, line := range []string{`{}`, `{"state":true,"ping":true,"id":1}`, `{"state":true}`, `not json`} {
		if _, err := DecodeToChild([]byte(line)); err == nil {
			t.Errorf("DecodeToChild(%s): no error", line)
		}
	}
	for _, line := range []string{`{}`, `{"master":{"instance":"a"},"reply":{"id":1}}`, `[`} {
		if _, err := DecodeFromChild([]byte(line)); err == nil {
			t.Errorf("DecodeFromChild(%s): no error", line)
		}
	}
}

// "Nothing is tracked" is a message too: an empty map must not encode to
// an empty message the child refuses (found by FuzzDecodeToChild).
func TestEmptyTracksCrossThePipe(t *testing.T) {
	b, err := json.Marshal(ToChild{Tracks: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeToChild(b)
	if err != nil || m.Tracks == nil || len(m.Tracks) != 0 {
		t.Fatalf("DecodeToChild(%s) = %+v, %v; want an empty tracks message", b, m, err)
	}
}
