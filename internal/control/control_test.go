package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/director-lb/director/internal/routing"
)

type fakeBackend struct{ calls []string }

func (f *fakeBackend) State() State {
	return State{Version: "test", Instances: []InstanceState{{Name: "web", State: "MASTER", Priority: 150}}}
}
func (f *fakeBackend) Failback(_ context.Context, n string) error {
	f.calls = append(f.calls, "failback:"+n)
	if n == "nope" {
		return errors.New(`no instance "nope"`)
	}
	return nil
}
func (f *fakeBackend) Failover(_ context.Context, n string) error {
	f.calls = append(f.calls, "failover:"+n)
	return nil
}
func (f *fakeBackend) Reload(_ context.Context, dry bool) ([]string, error) {
	f.calls = append(f.calls, fmt.Sprintf("reload:%v", dry))
	return []string{"instance web: priority 100 -> 120"}, nil
}
func (f *fakeBackend) RunningConfig() ([]byte, error) { return []byte("log_level: info\n"), nil }
func (f *fakeBackend) RealServer(_ context.Context, target, action string, w int) error {
	f.calls = append(f.calls, fmt.Sprintf("%s:%s:%d", action, target, w))
	return nil
}

func (f *fakeBackend) DrainNode(context.Context) (routing.DrainProgress, error) {
	f.calls = append(f.calls, "drain-node")
	return routing.DrainProgress{State: "draining", Mode: "withdrawn", ActiveConns: 12}, nil
}
func (f *fakeBackend) UndrainNode(context.Context) error {
	f.calls = append(f.calls, "undrain-node")
	return errors.New("this node is not in routed mode (no routing section)")
}

func serve(t *testing.T, b Backend) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "director.sock")
	s, err := Listen(path, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return path
}

// TestMain doubles as the unprivileged client used below.
func TestMain(m *testing.M) {
	if p := os.Getenv("CONTROL_TEST_CLIENT"); p != "" {
		_, err := NewClient(p).State(context.Background())
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestClientServer(t *testing.T) {
	b := &fakeBackend{}
	path := serve(t, b)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	c := NewClient(path)
	ctx := context.Background()
	st, err := c.State(ctx)
	if err != nil || len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
		t.Fatalf("State = %+v, %v", st, err)
	}
	if err := c.Failback(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := c.Failover(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Failback(ctx, "nope"); err == nil || err.Error() != `no instance "nope"` {
		t.Errorf("failback error = %v", err)
	}
	r, err := c.Reload(ctx, true)
	if err != nil || !r.DryRun || len(r.Changes) != 1 {
		t.Errorf("Reload = %+v, %v", r, err)
	}
	if y, err := c.RunningConfig(ctx); err != nil || string(y) != "log_level: info\n" {
		t.Errorf("RunningConfig = %q, %v", y, err)
	}
	if err := c.RealServer(ctx, "10.0.0.21:80", "weight", 7); err != nil {
		t.Fatal(err)
	}
	if p, err := c.DrainNode(ctx); err != nil || p.State != "draining" || p.Mode != "withdrawn" || p.ActiveConns != 12 {
		t.Errorf("DrainNode = %+v, %v", p, err)
	}
	if err := c.UndrainNode(ctx); err == nil || !strings.Contains(err.Error(), "not in routed mode") {
		t.Errorf("UndrainNode error = %v", err)
	}
	if got := strings.Join(b.calls, ","); got != "failback:web,failover:,failback:nope,reload:true,weight:10.0.0.21:80:7,drain-node,undrain-node" {
		t.Errorf("calls = %s", got)
	}
	// A second daemon on the same socket is refused.
	if _, err := Listen(path, b, slog.Default()); err == nil || !strings.Contains(err.Error(), "another director") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Failback(context.Background(), "")
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("err = %v, want ErrNoDaemon", err)
	}
}

// A non-root user is refused: by the socket's mode, and, should the mode be
// loosened, by the peer-credential check.
func TestRefusesNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root to start an unprivileged client")
	}
	path := serve(t, &fakeBackend{})
	// The client binary and the socket's directories must be reachable by nobody.
	exe := filepath.Join(filepath.Dir(filepath.Dir(path)), "client.test")
	self, _ := os.ReadFile("/proc/self/exe")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	// (Below the temporary directory only: never loosen or tighten /tmp.)
	for d := filepath.Dir(path); d != os.TempDir() && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	asNobody := func() (int, string) {
		cmd := exec.Command(exe)
		cmd.Env = []string{"CONTROL_TEST_CLIENT=" + path}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.Output()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := asNobody(); code != 3 || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody with mode 0600: exit %d, %q", code, out)
	}
	os.Chmod(path, 0o666)
	if code, out := asNobody(); code != 3 || !strings.Contains(out, "uid 65534 is not root") {
		t.Errorf("nobody with mode 0666: exit %d, %q", code, out)
	}
}

// The socket's directory must be root's and writable by nobody else:
// whoever could write it could put a socket of their own there.
func TestListenRefusesLooseDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root to give a directory to another user")
	}
	b := &fakeBackend{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	if _, err := Listen(filepath.Join(open, "director.sock"), b, log); err == nil || !strings.Contains(err.Error(), open+": mode 0777") {
		t.Errorf("world-writable directory: %v", err)
	}
	theirs := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(theirs, 65534, 65534)
	if _, err := Listen(filepath.Join(theirs, "director.sock"), b, log); err == nil || !strings.Contains(err.Error(), theirs+": owned by uid 65534") {
		t.Errorf("directory of nobody: %v", err)
	}
}
