package track

import "time"

// Kinds of tracked objects, as in the instance's track entries.
const (
	KindScript  = "script"
	KindFile    = "file"
	KindProcess = "process"
)

// Key names one tracked object.
type Key struct {
	Kind string
	Name string
}

// State is one tracked object's current state.
type State struct {
	// Up is a script's or process's state (after rise/fall or delay); a
	// file is always up: its Value is what counts.
	Up bool
	// Known is false until the object has been looked at once; until
	// then it counts for nothing, as in keepalived.
	Known bool
	// Value is a file's number or a process count.
	Value int
	// Result says why: "exit status 1", "timed out after 2s", "value 3",
	// "2 processes", "not run yet".
	Result string
	// Output is a script's last output, capped at OutputCap bytes.
	Output string
	// Since is when Up last changed.
	Since time.Time
	// Rises and Falls count the consecutive results against the state,
	// towards rise and fall.
	Rises, Falls int
}

// Status is "init", "up" or "down".
func (s State) Status() string {
	switch {
	case !s.Known:
		return "init"
	case s.Up:
		return "up"
	}
	return "down"
}
