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
		// weight reverse: a positive weight is subtracted while up,
		// a negative one added while down.
		{100, []Track{{Weight: 20, Up: true, Reverse: true}}, 80, false},
		{100, []Track{{Weight: 20, Up: false, Reverse: true}}, 100, false},
		{100, []Track{{Weight: -20, Up: false, Reverse: true}}, 120, false},
		{100, []Track{{Weight: 0, Up: false, Reverse: true}}, 100, false},
		{100, []Track{{Weight: 0, Up: true, Reverse: true}}, 100, true},
		// track files: value × weight, whatever Up says.
		{100, []Track{{Valued: true, Weight: 1, Value: -30}}, 70, false},
		{100, []Track{{Valued: true, Weight: 5, Value: 3}}, 115, false},
		{100, []Track{{Valued: true, Weight: 5, Value: 3, Reverse: true}}, 85, false},
		{100, []Track{{Valued: true, Weight: 0, Value: 0}}, 100, false},
		{100, []Track{{Valued: true, Weight: 0, Value: 7}}, 100, true},
		{100, []Track{{Valued: true, Weight: 1, Value: -254}}, 100, true},
		{100, []Track{{Valued: true, Weight: 1, Value: -253}}, 1, false},
		{1, []Track{{Valued: true, Weight: 2, Value: 200}, {Weight: -100, Up: false}}, 154, false}, // a file adds at most 253
	}
	for _, tc := range tests {
		prio, fault := TrackPriority(tc.base, tc.tracks)
		if prio != tc.prio || fault != tc.fault {
			t.Errorf("%d %+v: %d %v, want %d %v", tc.base, tc.tracks, prio, fault, tc.prio, tc.fault)
		}
	}
}
