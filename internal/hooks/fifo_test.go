package hooks

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLines(t *testing.T) {
	vs := ServiceAddr(netip.MustParseAddrPort("192.0.2.10:80"), "tcp", 0)
	rs := ServiceAddr(netip.MustParseAddrPort("10.0.0.21:80"), "tcp", 0)
	for _, c := range []struct{ got, want string }{
		{InstanceLine("web", "MASTER", 100), `INSTANCE "web" MASTER 100`},
		{GroupLine("g1", "FAULT"), `GROUP "g1" FAULT`},
		{RealServerLine(rs, vs, true), "RS [10.0.0.21]:tcp:80 [192.0.2.10]:tcp:80 UP"},
		{ServiceLine(vs, false), "VS [192.0.2.10]:tcp:80 DOWN"},
		{ServiceLine(ServiceAddr(netip.AddrPort{}, "", 7), true), "VS FWM 7 UP"},
		{RealServerLine(rs, GroupAddr("VSG_1"), false), "RS [10.0.0.21]:tcp:80 [VSG_1]:0 DOWN"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// Without a reader lines are dropped at once; with one they arrive whole;
// after the reader goes, the writer reopens for the next one.
func TestFIFONeverBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.fifo")
	f, err := NewFIFO(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("FIFO not created: %v", err)
	}
	if f.WriteLine("lost") {
		t.Error("a line with no reader was reported written")
	}
	rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !f.WriteLine(`INSTANCE "web" MASTER 100`) {
		t.Fatal("line not written with a reader")
	}
	line, err := bufio.NewReader(rd).ReadString('\n')
	if err != nil || line != "INSTANCE \"web\" MASTER 100\n" {
		t.Errorf("read %q, %v", line, err)
	}
	// Fill the pipe: writes past its capacity are dropped, not waited for.
	full := false
	for i := 0; i < 100000 && !full; i++ {
		full = !f.WriteLine("filler line to fill the pipe buffer up")
	}
	if !full {
		t.Error("a full pipe never refused a line")
	}
	rd.Close()
	f.WriteLine("reader gone") // EPIPE: closes, reopens on the next line
	rd2, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	if !f.WriteLine("again") {
		t.Error("the writer did not reopen for a new reader")
	}
	if w, d := f.Counts(); w < 2 || d < 2 {
		t.Errorf("written %d dropped %d", w, d)
	}
}

func TestFIFORefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(path, nil, 0o600)
	if _, err := NewFIFO(path, nil); err == nil {
		t.Error("a regular file was accepted as notify_fifo")
	}
}

// Whatever the names and states, a FIFO record is one line of at most
// PIPE_BUF bytes: a reader can split the stream on newlines.
func FuzzFIFOLine(f *testing.F) {
	f.Add("web", "MASTER", 100, "10.0.0.21", uint16(80))
	f.Add("a\nINSTANCE \"x\" MASTER 1", "FAULT\n", -1, "::1", uint16(0))
	f.Add(strings.Repeat("x", 5000), "BACKUP", 254, "fd00::21", uint16(65535))
	f.Fuzz(func(t *testing.T, name, state string, prio int, addr string, port uint16) {
		ap := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
		if a, err := netip.ParseAddr(addr); err == nil {
			ap = netip.AddrPortFrom(a, port)
		}
		rs := ServiceAddr(ap, "tcp", 0)
		for _, line := range []string{InstanceLine(name, state, prio), GroupLine(name, state),
			RealServerLine(rs, GroupAddr(name), prio > 0), ServiceLine(rs, prio < 0)} {
			b := frame(line)
			if len(b) > pipeBuf || len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte{'\n'}) != 1 {
				t.Fatalf("record %q: want one line of at most %d bytes", b, pipeBuf)
			}
		}
	})
}
