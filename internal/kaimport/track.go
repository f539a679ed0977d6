package kaimport

import (
	"fmt"
	"strings"
)

// Tracking: vrrp_script, track_file (vrrp_track_file), vrrp_track_process
// at the top level, and the track_script, track_interface, track_file and
// track_process lists of an instance.

type outScript struct {
	Name          string   `yaml:"name"`
	Command       []string `yaml:"command,omitempty,flow"`
	Shell         string   `yaml:"shell,omitempty"`
	Interval      string   `yaml:"interval,omitempty"`
	Timeout       string   `yaml:"timeout,omitempty"`
	Rise          int      `yaml:"rise,omitempty"`
	Fall          int      `yaml:"fall,omitempty"`
	Weight        int      `yaml:"weight,omitempty"`
	WeightReverse bool     `yaml:"weight_reverse,omitempty"`
	User          string   `yaml:"user,omitempty"`
}

type outTrackFile struct {
	Name          string `yaml:"name"`
	Path          string `yaml:"path"`
	Weight        *int   `yaml:"weight,omitempty"`
	WeightReverse bool   `yaml:"weight_reverse,omitempty"`
}

type outTrackProcess struct {
	Name          string   `yaml:"name"`
	Process       string   `yaml:"process,omitempty"`
	Argv          []string `yaml:"argv,omitempty,flow"`
	Quorum        *int     `yaml:"quorum,omitempty"`
	QuorumMax     int      `yaml:"quorum_max,omitempty"`
	Delay         string   `yaml:"delay,omitempty"`
	Weight        int      `yaml:"weight,omitempty"`
	WeightReverse bool     `yaml:"weight_reverse,omitempty"`
}

type outTrack struct {
	Script        string `yaml:"script,omitempty"`
	File          string `yaml:"file,omitempty"`
	Process       string `yaml:"process,omitempty"`
	Interface     string `yaml:"interface,omitempty"`
	Weight        *int   `yaml:"weight,omitempty"`
	WeightReverse *bool  `yaml:"weight_reverse,omitempty"`
}

// weightArgs reads "weight W [reverse|noreverse]" starting at args[i]:
// keepalived's weights are -253..253 (±254 is taken as ±253).
func (c *converter) weightArgs(n *Node, args []string) (w int, reverse *bool, ok bool) {
	if len(args) == 0 {
		return 0, nil, true
	}
	if args[0] != "weight" || len(args) < 2 {
		c.rep.add(n.Pos, Error, n.Key, "want %q, optionally followed by weight W [reverse]", n.Key)
		return 0, nil, false
	}
	w, ok = c.parseInt(n, args[1], -254, 254)
	if !ok {
		return 0, nil, false
	}
	w = max(min(w, 253), -253)
	if len(args) > 2 {
		switch args[2] {
		case "reverse", "noreverse":
			r := args[2] == "reverse"
			reverse = &r
		default:
			c.rep.add(n.Pos, Warning, n.Key, "unknown weight option %q ignored", args[2])
		}
	}
	return w, reverse, true
}

// The keywords the switches of script, trackFile and trackProcess know.
var (
	scriptKeywords       = []string{"script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail"}
	trackFileKeywords    = []string{"file", "weight", "init_file"}
	trackProcessKeywords = []string{"process", "param_match", "quorum", "quorum_max", "delay", "terminate_delay", "fork_delay", "weight", "full_command"}
)

// script reads vrrp_script NAME { script "..." interval timeout weight rise fall user init_fail }.
func (c *converter) script(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	s := outScript{Name: n.Args[0]}
	c.origin[fmt.Sprintf("scripts[%d]", len(c.scripts))] = n.Pos
	for _, it := range n.Block {
		switch it.Key {
		case "script":
			if !c.args(it, 1, -1) {
				continue
			}
			line := strings.Join(it.Args, " ")
			if strings.ContainsAny(line, shellMeta) {
				s.Shell = line
				c.rep.add(it.Pos, Note, it.Key, "has shell syntax: converted to shell:, run by /bin/sh -c (keepalived ran it without a shell)")
			} else {
				s.Command = strings.Fields(line)
			}
		case "interval", "timeout":
			if d, ok := c.secondsArg(it); ok {
				if it.Key == "interval" {
					s.Interval = fmtDuration(d)
				} else {
					s.Timeout = fmtDuration(d)
				}
			}
		case "rise", "fall":
			if v, ok := c.intArg(it, 1, 100); ok {
				if it.Key == "rise" {
					s.Rise = v
				} else {
					s.Fall = v
				}
			}
		case "weight":
			if w, rev, ok := c.weightArgs(it, append([]string{"weight"}, it.Args...)); ok {
				s.Weight = w
				s.WeightReverse = rev != nil && *rev
			}
		case "user":
			if c.args(it, 1, 2) {
				s.User = it.Args[0]
				if len(it.Args) > 1 {
					c.rep.add(it.Pos, Note, it.Key, "group %s ignored: director runs the script with %s's primary group", it.Args[1], it.Args[0])
				}
			}
		case "init_fail":
			c.rep.add(it.Pos, Note, it.Key, "ignored: director's first run of the script decides its state at once")
		default:
			c.unknown("vrrp_script", scriptKeywords, it)
		}
	}
	if len(s.Command) == 0 && s.Shell == "" {
		c.rep.add(n.Pos, Error, n.Key, "%s has no script", s.Name)
		// director's own complaint about it would say the same again.
		c.bad[fmt.Sprintf("scripts[%d]", len(c.scripts))] = true
	}
	c.scripts = append(c.scripts, s)
}

// trackFile reads track_file NAME { file "/path" weight W [reverse] init_file ... }.
func (c *converter) trackFile(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	f := outTrackFile{Name: n.Args[0]}
	c.origin[fmt.Sprintf("track_files[%d]", len(c.trackFiles))] = n.Pos
	for _, it := range n.Block {
		switch it.Key {
		case "file":
			if c.args(it, 1, 1) {
				f.Path = it.Args[0]
			}
		case "weight":
			if w, rev, ok := c.weightArgs(it, append([]string{"weight"}, it.Args...)); ok {
				f.Weight = &w
				f.WeightReverse = rev != nil && *rev
			}
		case "init_file":
			c.rep.add(it.Pos, Warning, it.Key, "not supported: director does not create the file; a missing file counts as 0")
		default:
			c.unknown(n.Key, trackFileKeywords, it)
		}
	}
	if f.Weight == nil {
		one := 1 // keepalived's default, and director's: written out for clarity
		f.Weight = &one
	}
	c.trackFiles = append(c.trackFiles, f)
}

// trackProcess reads vrrp_track_process NAME { process NAME [ARGS...]
// param_match quorum quorum_max delay weight full_command ... }.
func (c *converter) trackProcess(n *Node) {
	if !c.args(n, 1, 1) {
		return
	}
	p := outTrackProcess{Name: n.Args[0]}
	c.origin[fmt.Sprintf("track_processes[%d]", len(c.trackProcs))] = n.Pos
	var argv []string
	match := "initial"
	for _, it := range n.Block {
		switch it.Key {
		case "process":
			if c.args(it, 1, -1) {
				argv = it.Args
			}
		case "param_match":
			if c.args(it, 1, 1) {
				match = it.Args[0]
			}
		case "quorum":
			if v, ok := c.intArg(it, 0, 65535); ok {
				p.Quorum = &v
			}
		case "quorum_max":
			if v, ok := c.intArg(it, 1, 65535); ok {
				p.QuorumMax = v
			}
		case "delay", "terminate_delay", "fork_delay":
			if d, ok := c.secondsArg(it); ok {
				p.Delay = fmtDuration(d)
				if it.Key != "delay" {
					c.rep.add(it.Pos, Note, it.Key, "converted to delay: director delays both directions alike")
				}
			}
		case "weight":
			if w, rev, ok := c.weightArgs(it, append([]string{"weight"}, it.Args...)); ok {
				p.Weight = w
				p.WeightReverse = rev != nil && *rev
			}
		case "full_command":
			c.rep.add(it.Pos, Note, it.Key, "ignored: director matches the process name, or the command line with argv")
		default:
			c.unknown("vrrp_track_process", trackProcessKeywords, it)
		}
	}
	switch {
	case len(argv) == 0:
		c.rep.add(n.Pos, Error, n.Key, "%s has no process", p.Name)
	case len(argv) == 1 && len(argv[0]) <= 15:
		p.Process = argv[0]
	default:
		p.Argv = argv
		if match != "initial" {
			c.rep.add(n.Pos, Warning, "param_match", "%s not supported: director matches command lines that start with the arguments given (initial)", match)
		}
	}
	c.trackProcs = append(c.trackProcs, p)
}

// instanceTracks reads an instance's track_script, track_interface,
// track_file or track_process list: NAME [weight W [reverse]] per line.
func (c *converter) instanceTracks(st *instState, n *Node) {
	for _, t := range c.trackList(n) {
		st.at[fmt.Sprintf("track[%d]", len(st.out.Track))] = t.pos
		st.out.Track = append(st.out.Track, t.track)
	}
}

// trackAt is a track read from a list, and where.
type trackAt struct {
	track outTrack
	pos   Pos
}

// trackList reads a track_script, track_interface, track_file or
// track_process block of an instance or a sync group.
func (c *converter) trackList(n *Node) []trackAt {
	c.args(n, 0, 0)
	var out []trackAt
	for _, it := range n.Block {
		if it.HasBlock {
			c.rep.add(it.Pos, Error, it.Key, "unexpected { } block in %s", n.Key)
			continue
		}
		w, rev, ok := c.weightArgs(&Node{Key: n.Key, Pos: it.Pos}, it.Args)
		if !ok {
			continue
		}
		t := outTrack{WeightReverse: rev}
		if len(it.Args) > 0 {
			t.Weight = &w
		}
		switch n.Key {
		case "track_script":
			t.Script = it.Key
		case "track_interface":
			t.Interface = it.Key
		case "track_file":
			t.File = it.Key
		case "track_process":
			t.Process = it.Key
		}
		out = append(out, trackAt{t, it.Pos})
	}
	return out
}
