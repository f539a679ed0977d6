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
	// negative one added while down; with weight 0 the instance is in
	// FAULT while the thing is up.
	Reverse bool
	// Valued makes this a keepalived track_file: Value × Weight (negated
	// with Reverse), at most 253, is added whatever Up says; with Weight 0
	// a non-zero Value means FAULT, and so does a product of -254 or less.
	Valued bool
	Value  int
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
		case t.Valued && t.Weight == 0:
			fault = fault || t.Value != 0
		case t.Valued:
			d := t.Value * t.Weight * sign
			if d <= -254 {
				fault = true // keepalived: a file can force FAULT
			} else {
				prio += min(d, 253)
			}
		case t.Weight == 0:
			fault = fault || t.Up == t.Reverse
		case t.Weight > 0 && t.Up, t.Weight < 0 && !t.Up:
			prio += t.Weight * sign
		}
	}
	if base >= 255 {
		return 255, fault
	}
	return min(max(prio, 1), 254), fault
}
