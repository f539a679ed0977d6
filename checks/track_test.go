package checks

import "testing"

func TestTrackPriority(t *testing.T) {
	tests := []struct {
		base   int
		tracks []Track
		prio   int
		fault  bool
	}{
		{100, nil, 100, false},
		{100, []Track{{Weight: -30, Up: true}, {Weight: 20, Up: true}}, 120, false},
		{100, []Track{{Weight: -30, Up: false}, {Weight: 20, Up: true}}, 90, false},
		{100, []Track{{Weight: -30, Up: false}, {Weight: 20, Up: false}}, 70, false},
		{100, []Track{{Weight: 0, Up: true}}, 100, false},
		{100, []Track{{Weight: 0, Up: false}}, 100, true},
		{100, []Track{{Weight: -200, Up: false}}, 1, false},
		{200, []Track{{Weight: 100, Up: true}}, 254, false},
		{255, []Track{{Weight: -50, Up: false}, {Weight: 0, Up: false}}, 255, true},
	}
	for _, tc := range tests {
		prio, fault := TrackPriority(tc.base, tc.tracks)
		if prio != tc.prio || fault != tc.fault {
			t.Errorf("%d %+v: %d %v, want %d %v", tc.base, tc.tracks, prio, fault, tc.prio, tc.fault)
		}
	}
}
