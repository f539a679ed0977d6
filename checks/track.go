package checks

// Track is one thing a VRRP instance tracks (a check, a real server, a
// service's quorum), with keepalived's track_script weight semantics.
type Track struct {
	// Weight > 0 is added to the priority while the tracked thing is up;
	// Weight < 0 is added (so subtracted) while it is down; Weight 0 puts the
	// instance in FAULT while it is down.
	Weight int
	// Up is the tracked thing's state: a check's Health == Up, or a
	// service's !QuorumLost.
	Up bool
}

// TrackPriority computes an instance's effective priority from its
// configured priority and its tracks, clamped to 1-254 as keepalived does.
// An address owner (255) keeps 255 whatever its tracks say. fault means a
// zero-weight track is down: the instance must give up mastership.
func TrackPriority(base int, tracks []Track) (prio int, fault bool) {
	prio = base
	for _, t := range tracks {
		switch {
		case t.Weight == 0 && !t.Up:
			fault = true
		case t.Weight > 0 && t.Up, t.Weight < 0 && !t.Up:
			prio += t.Weight
		}
	}
	if base >= 255 {
		return 255, fault
	}
	return min(max(prio, 1), 254), fault
}
