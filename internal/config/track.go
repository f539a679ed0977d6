package config

import (
	"reflect"
	"time"
)

// Script is a command run periodically; instances that track it follow its
// exit status (keepalived's vrrp_script).
type Script struct {
	Name string `yaml:"name,omitempty"`
	// Command is the program and its arguments, run without a shell.
	Command []string `yaml:"command,omitempty"`
	// Shell is a command line run by /bin/sh -c, for operators who need
	// pipes or redirections; exclusive with Command.
	Shell string `yaml:"shell,omitempty"`
	// Interval is the time between runs (default 1s).
	Interval Duration `yaml:"interval,omitempty"`
	// Timeout kills the run, and its children, and counts as a failure
	// (default the interval).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Rise and Fall are the consecutive successes and failures that make
	// the script up and down (default 1).
	Rise int `yaml:"rise,omitempty"`
	Fall int `yaml:"fall,omitempty"`
	// Weight is the default weight of tracks naming this script (default 0:
	// FAULT while down).
	Weight int `yaml:"weight,omitempty"`
	// WeightReverse inverts the weight's direction: a positive weight is
	// subtracted while up, a negative one added while down.
	WeightReverse bool `yaml:"weight_reverse,omitempty"`
	// User runs the script as this user (and its primary group); default
	// the daemon's user.
	User string `yaml:"user,omitempty"`
}

// TrackFile is a file holding an integer (keepalived's track_file): the
// value times the weight is added to the priority of instances tracking it.
type TrackFile struct {
	Name string `yaml:"name,omitempty"`
	Path string `yaml:"path,omitempty"`
	// Weight multiplies the value (default 1); with weight 0 any non-zero
	// value puts the instance in FAULT (a maintenance file).
	Weight *int `yaml:"weight,omitempty"`
	// WeightReverse negates value × weight.
	WeightReverse bool `yaml:"weight_reverse,omitempty"`
}

// TrackProcess is a count of running processes (keepalived's
// vrrp_track_process): up while the count is within quorum..quorum_max.
type TrackProcess struct {
	Name string `yaml:"name,omitempty"`
	// Process matches /proc/PID/comm exactly (at most 15 bytes).
	Process string `yaml:"process,omitempty"`
	// Argv matches a command line starting with these arguments;
	// exclusive with Process.
	Argv []string `yaml:"argv,omitempty"`
	// Quorum is the fewest processes that count as up (default 1);
	// QuorumMax, if set, the most.
	Quorum    int `yaml:"quorum,omitempty"`
	QuorumMax int `yaml:"quorum_max,omitempty"`
	// Delay is how long a change must last before it counts (default 0).
	Delay Duration `yaml:"delay,omitempty"`
	// Weight is the default weight of tracks naming this (default 0).
	Weight        int  `yaml:"weight,omitempty"`
	WeightReverse bool `yaml:"weight_reverse,omitempty"`
}

// Default tracking settings, keepalived's.
const (
	DefaultScriptInterval  = time.Second
	DefaultTrackFileWeight = 1
)

// diffTrackObjects lists the scripts, track files and track processes a
// reload adds, changes (restarted, their counts reset) or removes;
// unchanged ones keep their state.
func diffTrackObjects(old, new *Config) []Change {
	var out []Change
	diffNamed(&out, "script", old.Scripts, new.Scripts, func(s Script) string { return s.Name })
	diffNamed(&out, "track_file", old.TrackFiles, new.TrackFiles, func(f TrackFile) string { return f.Name })
	diffNamed(&out, "track_process", old.TrackProcesses, new.TrackProcesses, func(p TrackProcess) string { return p.Name })
	return out
}

func diffNamed[T any](out *[]Change, kind string, old, new []T, name func(T) string) {
	was := map[string]T{}
	for _, o := range old {
		was[name(o)] = o
	}
	for _, n := range new {
		o, ok := was[name(n)]
		delete(was, name(n))
		switch {
		case !ok:
			*out = append(*out, Change{What: kind + " " + name(n), How: "added"})
		case !reflect.DeepEqual(o, n):
			*out = append(*out, Change{What: kind + " " + name(n), How: "changed: restarted, its state starts anew"})
		}
	}
	for _, o := range old {
		if _, gone := was[name(o)]; gone {
			*out = append(*out, Change{What: kind + " " + name(o), How: "removed"})
		}
	}
}
