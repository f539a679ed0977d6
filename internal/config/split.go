package config

// The daemon runs VRRP in a child process of its own (internal/vrrpproc,
// docs/design/vrrp-under-load.md). Each process runs one part of one
// validated configuration: VRRPPart and HostPart cut it in two, without
// validating again (a part alone need not be a valid file: a sync group
// names instances the host part does not have).

// VRRPPart is what the VRRP process runs: the instances, their sync
// groups, the scripts, files and processes they track, the hooks and the
// notify FIFO, rt_priority and the log level. Services, routing, the API,
// metrics, decisions and the control socket stay with the daemon.
func (c *Config) VRRPPart() *Config {
	p := &Config{
		LogLevel:   c.LogLevel,
		Instances:  c.Instances,
		SyncGroups: c.SyncGroups,
		Node:       c.Node,
		NotifyFIFO: c.NotifyFIFO,
		Hooks:      c.Hooks,
		RTPriority: c.RTPriority,
		File:       c.File,
		Source:     c.Source,
	}
	var tracks []Track
	for i := range c.Instances {
		tracks = append(tracks, c.Instances[i].Tracks()...)
	}
	p.Scripts, p.TrackFiles, p.TrackProcesses = c.trackedBy(tracks)
	return p
}

// HostPart is what the daemon runs beside the VRRP process: everything
// but the sync groups, with only the scripts, files and processes routing
// tracks; rt_priority goes to the VRRP process. The instances stay, as
// descriptions the dataplane reads (which instance a service follows,
// whose mastership sets the sync daemon's role): the daemon runs none.
func (c *Config) HostPart() *Config {
	p := *c
	p.SyncGroups, p.RTPriority = nil, 0
	var tracks []Track
	if c.Routing != nil {
		tracks = c.Routing.Track
	}
	p.Scripts, p.TrackFiles, p.TrackProcesses = c.trackedBy(tracks)
	return &p
}

// trackedBy are the scripts, files and processes that tracks name, in
// configuration order.
func (c *Config) trackedBy(tracks []Track) ([]Script, []TrackFile, []TrackProcess) {
	want := map[[2]string]bool{}
	for i := range tracks {
		kind, name := tracks[i].Kind()
		want[[2]string{kind, name}] = true
	}
	var ss []Script
	for _, s := range c.Scripts {
		if want[[2]string{"script", s.Name}] {
			ss = append(ss, s)
		}
	}
	var fs []TrackFile
	for _, f := range c.TrackFiles {
		if want[[2]string{"file", f.Name}] {
			fs = append(fs, f)
		}
	}
	var ps []TrackProcess
	for _, p := range c.TrackProcesses {
		if want[[2]string{"process", p.Name}] {
			ps = append(ps, p)
		}
	}
	return ss, fs, ps
}
