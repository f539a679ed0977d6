package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"

	"github.com/director-lb/director/internal/atomicfile"
)

// DefaultStatePath is where the daemon keeps the keys it owns. /run is
// emptied at boot, like the kernel's IPVS table, so the two stay in step.
const DefaultStatePath = "/run/director/ipvs-owned.json"

const stateVersion = 1

// stateFile is the on-disk form of the owned set.
type stateFile struct {
	Version int        `json:"version"`
	Owned   []stateKey `json:"owned"`
}

type stateKey struct {
	Family   int        `json:"family"`
	Protocol string     `json:"protocol,omitempty"`
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	FWMark   uint32     `json:"fwmark,omitempty"`
}

// loadOwned reads the owned keys; a missing file is an empty set.
func loadOwned(path string) (map[ServiceKey]bool, error) {
	owned := map[ServiceKey]bool{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return owned, nil
	}
	if err != nil {
		return owned, fmt.Errorf("read IPVS ownership state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return owned, fmt.Errorf("parse IPVS ownership state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return owned, fmt.Errorf("IPVS ownership state %s: unknown version %d", path, st.Version)
	}
	for _, sk := range st.Owned {
		k := ServiceKey{Family: sk.Family, Addr: sk.Addr, Port: sk.Port, FWMark: sk.FWMark}
		switch sk.Protocol {
		case "":
		case "tcp":
			k.Protocol = TCP
		case "udp":
			k.Protocol = UDP
		case "sctp":
			k.Protocol = SCTP
		default:
			return map[ServiceKey]bool{}, fmt.Errorf("IPVS ownership state %s: unknown protocol %q", path, sk.Protocol)
		}
		if err := k.validate(); err != nil {
			return map[ServiceKey]bool{}, fmt.Errorf("IPVS ownership state %s: %s: %w", path, k, err)
		}
		owned[k] = true
	}
	return owned, nil
}

// saveOwned writes the owned keys atomically (atomicfile), so a crash
// leaves either the old or the new set, never a torn file.
func saveOwned(path string, owned map[ServiceKey]bool) error {
	keys := make([]ServiceKey, 0, len(owned))
	for k := range owned {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ServiceKey.Compare)
	st := stateFile{Version: stateVersion, Owned: make([]stateKey, 0, len(keys))}
	for _, k := range keys {
		sk := stateKey{Family: k.Family, Addr: k.Addr, Port: k.Port, FWMark: k.FWMark}
		if k.Protocol != 0 {
			sk.Protocol = map[Protocol]string{TCP: "tcp", UDP: "udp", SCTP: "sctp"}[k.Protocol]
		}
		st.Owned = append(st.Owned, sk)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode IPVS ownership state: %w", err)
	}
	b = append(b, '\n')

	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("write IPVS ownership state: %w", err)
	}
	return nil
}
