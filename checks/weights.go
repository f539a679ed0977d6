package checks

import (
	"math"
	"net/netip"
	"time"
)

// Policy is how a service turns health into weights.
type Policy struct {
	// RemoveFailed deletes a failed real server from IPVS instead of
	// setting its weight to 0. Weight 0 (the default) lets its existing
	// connections finish; removal cuts them.
	RemoveFailed bool
	// SlowStart ramps a server that comes back from Down up to its weight
	// over this long, in SlowStartStep steps (1s by default). A server seen
	// for the first time (Unknown to Up) starts at full weight.
	SlowStart     time.Duration
	SlowStartStep time.Duration
	// Quorum is the sum of live weights below which the service counts as
	// failed (keepalived's quorum, 1 by default: all servers down). It comes
	// back only at Quorum+Hysteresis or more.
	Quorum     int
	Hysteresis int
	// HasSorry says a sorry server is configured: while quorum is lost all
	// real servers get weight 0 and the sorry server takes the traffic, as
	// keepalived does. Without one, quorum loss is only reported.
	HasSorry bool
}

// ServerInput is what Compute needs to know about one real server.
type ServerInput struct {
	Server netip.AddrPort
	// Weight is the configured weight.
	Weight int
	// Health, Since, Recovered, Dynamic and HasDynamic are usually filled
	// in by SetHealth from the server's checks.
	Health Health
	// Since is when Health was entered.
	Since time.Time
	// Recovered says the server came Up from Down (so slow start applies).
	Recovered bool
	// Dynamic is a dynamic weight (MISC_CHECK misc_dynamic), if HasDynamic;
	// it overrides Weight.
	Dynamic    int
	HasDynamic bool
	// Adjust is added to the weight (file checks' value × weight, summed
	// over the server's passing checks); the sum is kept within 0-MaxWeight.
	Adjust int
	// InKernel and Current describe the destination as IPVS has it now:
	// an Unknown server is left as it is.
	InKernel bool
	Current  int
}

// SetHealth combines the statuses of a server's checks: it is Up when all
// are, Down when any is, and Unknown otherwise. A server without checks is
// Up. Of several dynamic weights, the lowest counts; the adjustments of the
// passing checks add up.
func (s *ServerInput) SetHealth(sts ...Status) {
	s.Health, s.Since, s.Recovered, s.HasDynamic, s.Adjust = Up, time.Time{}, false, false, 0
	unknown := false
	for _, st := range sts {
		switch st.Health {
		case Down:
			if s.Health != Down || st.Since.After(s.Since) {
				s.Since = st.Since
			}
			s.Health = Down
		case Unknown:
			unknown = true
		case Up:
			// The latest check to come up says when, and whether, the
			// server recovered.
			if s.Health == Up && !st.Since.Before(s.Since) {
				s.Since, s.Recovered = st.Since, st.From == Down
			}
			s.Adjust = int(min(max(int64(s.Adjust)+int64(st.Adjust), -MaxWeight), MaxWeight))
		}
		if st.HasWeight && (!s.HasDynamic || st.Weight < s.Dynamic) {
			s.Dynamic, s.HasDynamic = st.Weight, true
		}
	}
	if unknown && s.Health != Down {
		s.Health, s.Since, s.Recovered = Unknown, time.Time{}, false
	}
	if s.Health != Up {
		s.Recovered = false
	}
}

// ServiceInput is one service's servers and its previous quorum decision.
type ServiceInput struct {
	Policy  Policy
	Servers []ServerInput
	// QuorumLost is the previous decision (for hysteresis); after a restart,
	// whether the sorry server is in IPVS.
	QuorumLost bool
}

// ServerWeight is the desired IPVS state of one real server.
type ServerWeight struct {
	Server netip.AddrPort
	// Present says the destination should exist; Weight is its weight.
	Present bool
	Weight  int
}

// ServiceWeights is the desired state of one service.
type ServiceWeights struct {
	Servers []ServerWeight
	// LiveWeight is the sum compared with the quorum.
	LiveWeight int
	// QuorumLost: live weight fell below the quorum (and has not yet
	// climbed back to quorum+hysteresis). Sorry: put the sorry server in.
	QuorumLost bool
	Sorry      bool
	// NextChange is when a slow start next changes a weight (zero if none):
	// call Compute again then.
	NextChange time.Time
}

// Compute decides the weights of one service's real servers at now. It is
// pure: the same input gives the same output.
//
// Up servers get their dynamic or configured weight, ramped by slow start
// after a recovery. Down servers get weight 0, or are removed with
// RemoveFailed. Unknown servers (checks not yet run) stay as IPVS has them:
// kept after a director restart, not added on a fresh start. The quorum is
// only re-decided once no server is Unknown.
func Compute(in ServiceInput, now time.Time) ServiceWeights {
	pol := in.Policy
	out := ServiceWeights{Servers: make([]ServerWeight, len(in.Servers))}
	unknown := false
	for i, s := range in.Servers {
		w := s.Weight
		if s.HasDynamic {
			w = s.Dynamic
		}
		w = clampWeight(int64(w) + int64(s.Adjust))
		sw := ServerWeight{Server: s.Server}
		switch s.Health {
		case Up:
			out.LiveWeight += w
			sw.Present, sw.Weight = true, w
			if s.Recovered {
				var next time.Time
				sw.Weight, next = slowStart(w, s.Since, now, pol.SlowStart, pol.SlowStartStep)
				if !next.IsZero() && (out.NextChange.IsZero() || next.Before(out.NextChange)) {
					out.NextChange = next
				}
			}
		case Down:
			sw.Present = !pol.RemoveFailed
		default:
			unknown = true
			sw.Present, sw.Weight = s.InKernel, s.Current
			if s.InKernel {
				out.LiveWeight += s.Current
			}
		}
		out.Servers[i] = sw
	}
	quorum := max(1, pol.Quorum)
	out.QuorumLost = in.QuorumLost
	switch {
	case unknown:
	case in.QuorumLost && out.LiveWeight >= quorum+pol.Hysteresis:
		out.QuorumLost = false
	case !in.QuorumLost && out.LiveWeight < quorum:
		out.QuorumLost = true
	}
	out.Sorry = out.QuorumLost && pol.HasSorry
	if out.Sorry {
		// Switch to the sorry server, keeping the real servers' existing
		// connections (weight 0) unless failed ones are to be removed.
		for i := range out.Servers {
			out.Servers[i].Weight = 0
		}
		out.NextChange = time.Time{}
	}
	return out
}

// slowStart returns the ramped weight of a server that recovered at since,
// and when it next changes (zero once the ramp is over). The ramp climbs in
// equal steps from weight/(steps+1) (at least 1) and reaches the full
// weight exactly at since+dur.
func slowStart(w int, since, now time.Time, dur, step time.Duration) (int, time.Time) {
	if dur <= 0 || w <= 1 {
		return w, time.Time{}
	}
	if step <= 0 {
		step = time.Second
	}
	step = min(step, dur)
	elapsed := max(now.Sub(since), 0)
	if elapsed >= dur {
		return w, time.Time{}
	}
	steps := int64((dur + step - 1) / step)
	k := int64(elapsed / step) // whole steps done
	weight := max(1, int(int64(w)*(k+1)/(steps+1)))
	next := since.Add(time.Duration(k+1) * step)
	if end := since.Add(dur); next.After(end) {
		next = end
	}
	return weight, next
}

// MaxWeight is the highest weight IPVS takes (the kernel's is a signed 32-bit
// integer).
const MaxWeight = math.MaxInt32

// clampWeight keeps a computed weight within 0-MaxWeight, as keepalived does
// with a real server's weight plus its file checks' values.
func clampWeight(w int64) int {
	return int(min(max(w, 0), MaxWeight))
}
