package checks

// Track is one thing a VRRP instance tracks (a check, a real server, a
// service's quorum, a script, a file, a process, an interface), with
// keepalived's track weight semantics.
type Track struct {
	// Weight > 0 is added to the priority while the tracked thing is up;
	// Weight < 0 is added (so subtracted) while it is down; Weight 0 puts the
	// instance in FAULT while it is down.
	Weight int
	// Up is the tracked thing's state: a check's Health == Up, or a
	// service's !QuorumLost.
	Up bool
	// Reverse is keepalived's "weight ... reverse": the adjustment's sign
	// is inverted, so a positive weight is subtracted while up and a
	// negative one added while down. FAULT with weight 0 is unchanged.
	Reverse bool
	// Valued makes this a keepalived track_file: Value × Weight (negated
	// with Reverse) is added whatever Up says; with Weight 0 a non-zero
	// Value means FAULT, and so does a sum below -253.
	Valued bool
	Value  int
	// Fault puts the instance in FAULT whatever the weight (a track file
	// that does not hold a number).
	Fault bool
}

// TrackPriority computes an instance's effective priority from its
// configured priority and its tracks, clamped to 1-254 as keepalived does.
// An address owner (255) keeps 255 whatever its tracks say. fault means a
// zero-weight track is down: the instance must give up mastership.
func TrackPriority(base int, tracks []Track) (prio int, fault bool) {
	prio = base
	for _, t := range tracks {
		sign := 1
		if t.Reverse {
			sign = -1
		}
		switch {
		case t.Fault:
			fault = true
		case t.Valued && t.Weight == 0:
			fault = fault || t.Value != 0
		case t.Valued:
			d := t.Value * t.Weight * sign
			if d < -253 {
				fault = true // keepalived: a file can force FAULT
			} else {
				prio += d
			}
		case t.Weight == 0 && !t.Up:
			fault = true
		case t.Weight > 0 && t.Up, t.Weight < 0 && !t.Up:
			prio += t.Weight * sign
		}
	}
	if base >= 255 {
		return 255, fault
	}
	return min(max(prio, 1), 254), fault
}
