package childproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("a\n"+long+"\n"+long+long+"\ntail"), 16)
	if got, err := ReadLine(r, 300); err != nil || string(got) != "a\n" {
		t.Fatalf("first line %q, %v", got, err)
	}
	if got, err := ReadLine(r, 300); err != nil || string(got) != long+"\n" {
		t.Fatalf("a line longer than the buffer: %q, %v", got, err)
	}
	if _, err := ReadLine(r, 150); err == nil || !strings.Contains(err.Error(), "longer than 150 bytes") {
		t.Fatalf("a line over the limit: %v", err)
	}
	r = bufio.NewReader(strings.NewReader("cut short"))
	if _, err := ReadLine(r, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a line without its newline: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := ReadLine(bufio.NewReader(strings.NewReader("")), 100); !errors.Is(err, io.EOF) {
		t.Fatalf("the end: %v, want EOF", err)
	}
}

// A child's pipes: what it writes on descriptor 4 comes back; closing
// its descriptor 3 ends it.
func TestStartAndSend(t *testing.T) {
	p, err := Start("test child", []string{"/bin/sh", "-c", "cat <&3 >&4"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := Send(p.In, map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	p.In.Close()
	got, err := ReadLine(bufio.NewReader(p.Out), 100)
	if err != nil || string(got) != `{"n":1}`+"\n" {
		t.Fatalf("echoed %q, %v", got, err)
	}
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if _, err := Start("test child", nil, nil, nil); err == nil {
		t.Fatal("Start without a command: no error")
	}
}

// childArg makes the test binary a child that calls Pipes, reports
// whether its descriptors are non-blocking, and echoes a line.
const childArg = "childproc-test-child"

func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == childArg {
		from, to, err := Pipes()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var flags []string
		for _, fd := range []int{FromDaemonFD, ToDaemonFD} {
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			flags = append(flags, fmt.Sprint(err == nil && fl&unix.O_NONBLOCK != 0))
		}
		line, err := ReadLine(bufio.NewReader(from), 100)
		if err != nil {
			os.Exit(1)
		}
		fmt.Fprintf(to, "%s %s", strings.Join(flags, " "), line)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The child's side: Pipes gives descriptors in non-blocking mode, and
// reads and writes on them work through Go's poller.
func TestPipes(t *testing.T) {
	p, err := Start("test child", []string{os.Args[0], childArg}, nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := Send(p.In, "hello"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLine(bufio.NewReader(p.Out), 100)
	if err != nil || string(got) != `true true "hello"`+"\n" {
		t.Fatalf("child said %q, %v; want both descriptors non-blocking and the line echoed", got, err)
	}
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
