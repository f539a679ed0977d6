package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// trackObjectList names the top-level list each track kind refers to.
var trackObjectList = map[string]string{"script": "scripts", "file": "track_files", "process": "track_processes"}

// trackObjectNames is the names of scripts, track_files and
// track_processes, by track kind.
func trackObjectNames(cfg *Config) map[string]map[string]bool {
	out := map[string]map[string]bool{"script": {}, "file": {}, "process": {}}
	for _, s := range cfg.Scripts {
		out["script"][s.Name] = true
	}
	for _, f := range cfg.TrackFiles {
		out["file"][f.Name] = true
	}
	for _, p := range cfg.TrackProcesses {
		out["process"][p.Name] = true
	}
	return out
}

// trackObjects fills in the defaults of scripts, track_files and
// track_processes and checks them.
func (c *checker) trackObjects(cfg *Config) {
	names := map[string]string{}
	for i := range cfg.Scripts {
		f := fmt.Sprintf("scripts[%d]", i)
		c.uniqueName(f, "script", cfg.Scripts[i].Name, names)
		c.script(f, &cfg.Scripts[i])
	}
	names = map[string]string{}
	for i := range cfg.TrackFiles {
		f := fmt.Sprintf("track_files[%d]", i)
		t := &cfg.TrackFiles[i]
		c.uniqueName(f, "track file", t.Name, names)
		if t.Path == "" {
			c.errf(f+".path", "required")
		} else if !filepath.IsAbs(t.Path) {
			c.errf(f+".path", "%q must be an absolute path", t.Path)
		}
		if t.Weight == nil {
			w := DefaultTrackFileWeight
			t.Weight = &w
		} else if *t.Weight < -254 || *t.Weight > 254 {
			c.errf(f+".weight", "must be -254 to 254, got %d", *t.Weight)
		}
	}
	names = map[string]string{}
	for i := range cfg.TrackProcesses {
		f := fmt.Sprintf("track_processes[%d]", i)
		c.uniqueName(f, "track process", cfg.TrackProcesses[i].Name, names)
		c.trackProcess(f, &cfg.TrackProcesses[i])
	}
}

func (c *checker) script(f string, s *Script) {
	switch {
	case (len(s.Command) == 0) == (s.Shell == ""):
		c.errf(f, "give exactly one of command (a program and its arguments) or shell (a line for /bin/sh -c)")
	case len(s.Command) > 0 && s.Command[0] == "":
		c.errf(f+".command[0]", "the program is empty")
	}
	if !c.set(f + ".interval") {
		s.Interval = Duration(DefaultScriptInterval)
	} else if s.Interval.D() < 10*time.Millisecond || s.Interval.D() > time.Hour {
		c.errf(f+".interval", "must be 10ms to 1h, got %s", s.Interval.D())
	}
	if !c.set(f + ".timeout") {
		s.Timeout = s.Interval
	} else if s.Timeout.D() < 10*time.Millisecond || s.Timeout.D() > time.Hour {
		c.errf(f+".timeout", "must be 10ms to 1h, got %s", s.Timeout.D())
	}
	c.count(f+".rise", &s.Rise)
	c.count(f+".fall", &s.Fall)
	c.weight(f+".weight", s.Weight)
	if c.set(f+".user") && s.User == "" {
		c.errf(f+".user", "empty: leave it out to run as the daemon's user")
	}
}

func (c *checker) trackProcess(f string, p *TrackProcess) {
	switch {
	case (p.Process == "") == (len(p.Argv) == 0):
		c.errf(f, "give exactly one of process (the name in /proc/PID/comm) or argv (the command line's first arguments)")
	case len(p.Process) > 15:
		c.errf(f+".process", "%q is longer than the 15 bytes the kernel keeps of a process name; use argv", p.Process)
	case len(p.Argv) > 0 && p.Argv[0] == "":
		c.errf(f+".argv[0]", "the program is empty")
	}
	if !c.set(f + ".quorum") {
		p.Quorum = 1
	} else if p.Quorum < 0 || p.Quorum > 65535 {
		c.errf(f+".quorum", "must be 0-65535, got %d", p.Quorum)
	}
	if c.set(f+".quorum_max") && (p.QuorumMax < p.Quorum || p.QuorumMax < 1) {
		c.errf(f+".quorum_max", "must be at least quorum (%d) and 1, got %d", p.Quorum, p.QuorumMax)
	}
	if p.Delay.D() > time.Hour {
		c.errf(f+".delay", "%s is longer than 1h", p.Delay.D())
	}
	c.weight(f+".weight", p.Weight)
}

// count defaults a rise or fall to 1 and checks it.
func (c *checker) count(field string, n *int) {
	if !c.set(field) {
		*n = 1
	} else if *n < 1 || *n > 100 {
		c.errf(field, "must be 1-100, got %d", *n)
	}
}

func (c *checker) weight(field string, w int) {
	if w < -253 || w > 253 {
		c.errf(field, "must be -253 to 253, got %d", w)
	}
}
