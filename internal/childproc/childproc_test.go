package childproc

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
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
