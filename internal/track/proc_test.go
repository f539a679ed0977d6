package track

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/director-lb/director/internal/config"
)

// readProcs reads comm and cmdline of numeric entries only, and skips a
// process that vanished while it was read.
func TestReadProcs(t *testing.T) {
	root := t.TempDir()
	write := func(pid, name, data string) {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "comm", "systemd\n")
	write("1", "cmdline", "/sbin/init\x00splash\x00")
	write("42", "comm", "kworker/0:1\n")
	write("42", "cmdline", "")
	write("self", "comm", "nope\n")
	if err := os.MkdirAll(filepath.Join(root, "77"), 0o755); err != nil { // exited: no comm
		t.Fatal(err)
	}
	ps, err := readProcs(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d processes %+v, want 2", len(ps), ps)
	}
	byComm := map[string]Proc{}
	for _, p := range ps {
		byComm[p.Comm] = p
	}
	if p := byComm["systemd"]; !slices.Equal(p.Argv, []string{"/sbin/init", "splash"}) {
		t.Errorf("systemd argv %q", p.Argv)
	}
	if p, ok := byComm["kworker/0:1"]; !ok || p.Argv != nil {
		t.Errorf("kernel thread %+v, want no argv", p)
	}
	if _, err := readProcs(filepath.Join(root, "missing")); err == nil {
		t.Error("no error for a missing /proc")
	}
}

// The real /proc lists this test's own process.
func TestReadProcsReal(t *testing.T) {
	ps, err := ReadProcs()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if n := Count(ps, configProcess(filepath.Base(self))); n < 1 {
		t.Errorf("this test's process %s not found among %d", filepath.Base(self), len(ps))
	}
}

func configProcess(comm string) config.TrackProcess {
	if len(comm) > 15 {
		comm = comm[:15] // the kernel keeps 15 bytes of a name
	}
	return config.TrackProcess{Process: comm}
}
