package labplan

import "time"

// Flood modes: what the stranger's protocol-112 packets carry.
const (
	// FloodJunk is random bytes: mostly not VRRP at all.
	FloodJunk = "junk"
	// FloodForged looks like a VRRPv3 advert for the lab's VRID at a
	// priority above any node's, with a wrong checksum: only a full parse
	// tells it from a real one, so it reaches user space.
	FloodForged = "forged"
)

// FloodResult is a flood step's stdout, in JSON.
type FloodResult struct {
	Sent     int           `json:"sent"`
	Took     time.Duration `json:"took"`
	Rate     float64       `json:"rate"` // packets per second achieved
	Mode     string        `json:"mode"`
	SendErrs int           `json:"send_errors"`
}

// Flood sends protocol-112 packets from node to the VRRP multicast group
// with TTL 255, pps a second for d, in mode (FloodJunk or FloodForged).
func Flood(node, mode string, pps int, d time.Duration) Step {
	return Step{Kind: KindFlood, Node: node, Mode: mode, Count: pps, Duration: Duration(d)}
}
