package track

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/config"
)

// scriptResult counts one run towards rise or fall. The first run sets
// the state directly: until a script has run it counts as up, and making
// a node wait rise or fall runs to learn its real state would only delay
// the right priority.
func scriptResult(st *State, first, ok bool, rise, fall int) {
	switch {
	case first:
		st.Up, st.Rises, st.Falls = ok, 0, 0
	case ok && st.Up, !ok && !st.Up:
		st.Rises, st.Falls = 0, 0
	case ok:
		st.Falls = 0
		st.Rises++
		if st.Rises >= rise {
			st.Up, st.Rises = true, 0
		}
	default:
		st.Rises = 0
		st.Falls++
		if st.Falls >= fall {
			st.Up, st.Falls = false, 0
		}
	}
}

// fileResult reads a track file's content as keepalived does: the
// integer it starts with, in C's notation (decimal, 0x hex, 0 octal),
// clamped to -254..254. A missing or unreadable file, or one that does
// not start with a number, counts as 0; the result says so.
func fileResult(st *State, data []byte, err error) {
	st.Up = true
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st.Value, st.Result = 0, "missing (counts as 0)"
	case err != nil:
		st.Value, st.Result = 0, "unreadable (counts as 0): "+err.Error()
	default:
		if len(data) > 127 {
			data = data[:127] // all keepalived reads
		}
		v, ok := checks.ParseFileValue(data)
		st.Value = int(min(max(v, -254), 254))
		st.Result = fmt.Sprintf("value %d", st.Value)
		if !ok {
			s := strings.TrimSpace(string(data))
			if len(s) > 32 {
				s = s[:32] + "…"
			}
			st.Result = fmt.Sprintf("not a number (counts as 0): %q", s)
		}
	}
}

// processResult applies a process count: the state follows whether the
// count is within quorum..quorum_max once the disagreement has lasted
// the delay.
func processResult(st *State, pending *time.Time, now time.Time, c config.TrackProcess, n int) {
	st.Value = n
	st.Result = fmt.Sprintf("%d processes", n)
	if n == 1 {
		st.Result = "1 process"
	}
	in := n >= c.Quorum && (c.QuorumMax == 0 || n <= c.QuorumMax)
	if in == st.Up {
		*pending = time.Time{}
		return
	}
	if pending.IsZero() {
		*pending = now
	}
	if now.Sub(*pending) >= c.Delay.D() {
		st.Up = in
		*pending = time.Time{}
	}
}
