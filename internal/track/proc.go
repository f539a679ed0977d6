package track

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/director-lb/director/internal/config"
)

// Proc is one running process as a track process sees it.
type Proc struct {
	Comm string   // /proc/PID/comm
	Argv []string // /proc/PID/cmdline
}

// ReadProcs lists the processes in /proc. A process that exits while it is
// read is skipped.
func ReadProcs() ([]Proc, error) { return readProcs("/proc") }

func readProcs(root string) ([]Proc, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(root, name, "comm"))
		if err != nil {
			continue
		}
		p := Proc{Comm: strings.TrimSuffix(string(comm), "\n")}
		if cl, err := os.ReadFile(filepath.Join(root, name, "cmdline")); err == nil && len(cl) > 0 {
			p.Argv = strings.Split(string(bytes.TrimSuffix(cl, []byte{0})), "\x00")
		}
		out = append(out, p)
	}
	return out, nil
}

// Count is how many of ps match c: by comm, or by a command line that
// starts with c.Argv. Kernel threads (no command line) never match argv.
func Count(ps []Proc, c config.TrackProcess) int {
	n := 0
	for _, p := range ps {
		switch {
		case c.Process != "":
			if p.Comm == c.Process {
				n++
			}
		case len(p.Argv) >= len(c.Argv) && slices.Equal(p.Argv[:len(c.Argv)], c.Argv):
			n++
		}
	}
	return n
}
