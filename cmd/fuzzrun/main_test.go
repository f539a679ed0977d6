package main

import "testing"

func TestDeadlineRace(t *testing.T) {
	const race = "fuzz: elapsed: 10m1s, execs: 136705 (0/sec)\n--- FAIL: FuzzX (601.03s)\n    context deadline exceeded\nFAIL\n"
	cases := []struct {
		name    string
		tail    string
		written bool
		want    bool
	}{
		{"bare deadline, nothing written", race, false, true},
		{"deadline but an input was written", race, true, false},
		{"a finding names its input", race + "    Failing input written to testdata/fuzz/FuzzX/abc\n", false, false},
		{"a panic is a finding", "panic: boom\n" + race, false, false},
		{"another failure", "--- FAIL: FuzzX\n    fuzzing process hung or terminated unexpectedly: exit status 2\n", false, false},
	}
	for _, c := range cases {
		if got := deadlineRace(c.tail, c.written); got != c.want {
			t.Errorf("%s: deadlineRace = %v, want %v", c.name, got, c.want)
		}
	}
}
