// Package childproc starts the daemon's helper processes, the check worker
// (internal/checkproc) and the VRRP process (internal/vrrpproc): a program
// that talks JSON, one message per line, on two pipes that are its file
// descriptors 3 (from the daemon) and 4 (to the daemon). Its standard
// output is discarded; its standard error is the daemon's log.
package childproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// Proc is one running child.
type Proc struct {
	Cmd *exec.Cmd
	In  io.WriteCloser // the child's descriptor 3
	Out io.ReadCloser  // its descriptor 4
}

// Start starts argv with env and stderr; what names it in errors.
func Start(what string, argv, env []string, stderr io.Writer) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: no command", what)
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: pipe: %w", what, err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		toR.Close()
		toW.Close()
		return nil, fmt.Errorf("%s: pipe: %w", what, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{toR, fromW}
	cmd.Stderr = stderr
	cmd.Env = env
	err = cmd.Start()
	// The child has its ends; these copies would keep the pipes open.
	toR.Close()
	fromW.Close()
	if err != nil {
		toW.Close()
		fromR.Close()
		return nil, fmt.Errorf("%s: start %s: %w", what, argv[0], err)
	}
	return &Proc{Cmd: cmd, In: toW, Out: fromR}, nil
}

// Send writes v to the child as one JSON line, in one write: messages from
// several goroutines never interleave.
func Send(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// ReadLine reads one newline-terminated line of at most max bytes.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		if len(line)+len(part) > max {
			return nil, fmt.Errorf("message longer than %d bytes", max)
		}
		line = append(line, part...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// Descriptors of the child's pipes, as Start passes them.
const (
	FromDaemonFD = 3
	ToDaemonFD   = 4
)

// Pipes is the child's side of Start: its pipes from and to the daemon,
// switched to non-blocking mode first. os.NewFile then hands them to Go's
// poller. On a blocking descriptor every read parks an OS thread in
// read(2), and each park and return wakes the runtime's monitor thread:
// a cost the VRRP process, which counts its wakes, does not want.
func Pipes() (from, to *os.File, err error) {
	for _, fd := range []int{FromDaemonFD, ToDaemonFD} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, nil, fmt.Errorf("descriptor %d from the daemon: %w", fd, err)
		}
	}
	return os.NewFile(FromDaemonFD, "from-daemon"), os.NewFile(ToDaemonFD, "to-daemon"), nil
}
