package ipvsadm

// Part selects what a Source reads.
type Part uint8

// Parts of the IPVS state.
const (
	// PartServices is the version line's data, services and destinations.
	PartServices Part = 1 << iota
	PartTimeouts
	PartDaemons
	// PartConns is the raw connection table.
	PartConns

	PartAll = PartServices | PartTimeouts | PartDaemons | PartConns
)

// Source reads IPVS state. KernelSource reads the running kernel; tests
// use canned snapshots.
type Source interface {
	Read(parts Part) (*Snapshot, error)
}

// SnapshotSource serves a fixed snapshot, e.g. one captured earlier with
// `--snapshot`.
type SnapshotSource struct{ Snapshot *Snapshot }

// Read returns the parts of the snapshot that were asked for.
func (s SnapshotSource) Read(parts Part) (*Snapshot, error) {
	var out Snapshot
	if parts&PartServices != 0 {
		out.Version, out.ConnTableSize = s.Snapshot.Version, s.Snapshot.ConnTableSize
		out.Services = s.Snapshot.Services
	}
	if parts&PartTimeouts != 0 {
		out.Timeouts = s.Snapshot.Timeouts
	}
	if parts&PartDaemons != 0 {
		out.Daemons = s.Snapshot.Daemons
	}
	if parts&PartConns != 0 {
		out.ConnTable = s.Snapshot.ConnTable
	}
	return &out, nil
}
