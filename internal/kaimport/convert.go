package kaimport

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/director-lb/director/internal/config"
)

// Options adjust a conversion.
type Options struct {
	// Checks emits the health checks (checks: keys). Without it they are
	// converted and reported on but left out of the output.
	Checks bool
	// ConfigID selects keepalived's conditional lines ("@id ..." and
	// "@^id ..."), as keepalived -i does.
	ConfigID string
}

// DefaultOptions are what Convert uses: checks on, and the configuration id
// keepalived itself would use, the first label of the host name.
func DefaultOptions() Options {
	id, _ := os.Hostname()
	id, _, _ = strings.Cut(id, ".")
	return Options{Checks: true, ConfigID: id}
}

// Convert reads the keepalived configuration at path, with its includes, and
// returns the equivalent director.yaml. The report lists everything that was
// not carried over. err is non-nil, and yamlBytes nil, when the report has
// errors or the result would not pass director's own validation.
func Convert(path string) (yamlBytes []byte, report Report, err error) {
	return ConvertWith(path, DefaultOptions())
}

// ConvertWith is Convert with explicit options.
func ConvertWith(path string, opts Options) ([]byte, Report, error) {
	return convertFS(osFS{}, path, opts)
}

func convertFS(fsys fileSystem, path string, opts Options) ([]byte, Report, error) {
	rep := &Report{}
	lx := &lexer{fsys: fsys, configID: opts.ConfigID, rep: rep, order: map[Pos]int{}}
	data, err := convertLexer(lx, path, opts)
	rep.sort(lx.order)
	return data, *rep, err
}

func convertLexer(lx *lexer, path string, opts Options) ([]byte, error) {
	rep := lx.rep
	lx.lexFile(path, Pos{})
	nodes := parse(lx.toks, rep)
	c := newConverter(path, rep)
	c.indexKeywords(nodes, "")
	walk(c, topBlock, struct{}{}, nodes)
	out := c.finish()
	if !opts.Checks {
		rep.add(Pos{File: path}, Note, "", "health checks were left out of the output (-checks=false)")
	}
	// The loader judges exactly the bytes that would be written: whatever
	// it refuses is an error at the keepalived line it came from.
	data, err := render(out, opts.Checks, path)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse(path, data); err != nil {
		c.validation(err)
	}
	if n := rep.Count(Error); n > 0 {
		return nil, fmt.Errorf("convert %s: %s", path, plural(n, "error"))
	}
	return data, nil
}

// converter holds what has been read so far; finish turns it into output.
type converter struct {
	file   string
	rep    *Report
	global globals
	insts  []*instState
	svcs   []*svcState
	sync   *syncState
	groups []*syncGroupState
	// vsgs are the virtual_server_groups by name, in file order.
	vsgs     map[string]*vsgState
	vsgOrder []*vsgState
	// Tracked objects, in file order.
	scripts    []outScript
	trackFiles []outTrackFile
	trackProcs []outTrackProcess
	// origin maps each output field path (instances[0].vrid) to the line
	// it came from, so that validation problems point at keepalived.conf.
	origin map[string]Pos
	// bad holds output fields whose keepalived setting was already reported
	// as an error; director's complaints about them are not repeated.
	bad map[string]bool
	// keywords names the keyword of each line, so that director's
	// complaints name it as the importer's own findings do.
	keywords map[Pos]string
}

func newConverter(file string, rep *Report) *converter {
	return &converter{file: file, rep: rep, origin: map[string]Pos{}, bad: map[string]bool{}, keywords: map[Pos]string{}}
}

// listBlocks hold one value per line rather than keywords: a line in one
// is named by the block's keyword.
var listBlocks = map[string]bool{
	"virtual_ipaddress": true, "virtual_ipaddress_excluded": true, "virtual_routes": true, "virtual_rules": true,
	"unicast_peer": true, "track_script": true, "track_interface": true, "track_file": true, "track_process": true,
	"group": true, "virtual_server_group": true, "notification_email": true,
}

// indexKeywords records the keyword of every line under nodes; list is
// the keyword of the list block they are in, if any.
func (c *converter) indexKeywords(nodes []*Node, list string) {
	for _, n := range nodes {
		k := n.Key
		if list != "" {
			k = list
		}
		if _, seen := c.keywords[n.Pos]; !seen {
			c.keywords[n.Pos] = k
		}
		inner := ""
		if listBlocks[n.Key] {
			inner = n.Key
		}
		c.indexKeywords(n.Block, inner)
	}
}

// markBad records the output fields of the keywords that failed.
func (c *converter) markBad(path string, failed map[string]bool, fields map[string]string) {
	for k := range failed {
		if f, ok := fields[k]; ok {
			c.bad[path+"."+f] = true
		}
	}
}

// isBad reports whether field or one of its ancestors is in c.bad.
func (c *converter) isBad(field string) bool {
	for f := field; f != ""; {
		if c.bad[f] {
			return true
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return false
		}
		f = f[:i]
	}
	return false
}

// globals are the global_defs settings that feed instance defaults.
type globals struct {
	version      int
	garpCount    *int
	minGARP      bool
	garpInterval *time.Duration
	gnaInterval  *time.Duration
	garpRefresh  *time.Duration
	notifyFIFO   string
	pos          map[string]Pos // where each of the above was set
}

// syncState is global_defs' lvs_sync_daemon.
type syncState struct {
	pos      Pos
	iface    string
	instance string
	hasInst  bool
	id       int
	idSet    bool
}

// finish builds the output from the collected state.
func (c *converter) finish() *outConfig {
	out := &outConfig{NotifyFIFO: c.global.notifyFIFO}
	if out.NotifyFIFO != "" {
		c.origin["notify_fifo"] = c.global.pos["notify_fifo"]
	}
	for _, st := range c.insts {
		i := len(out.Instances)
		out.Instances = append(out.Instances, c.finishInstance(st, fmt.Sprintf("instances[%d]", i)))
	}
	c.finishSyncGroups(out)
	for _, st := range c.resolveGroups() {
		i := len(out.Services)
		out.Services = append(out.Services, c.finishService(st, fmt.Sprintf("services[%d]", i)))
	}
	if s := c.sync; s != nil {
		out.IPVS = &outIPVS{Sync: c.finishSync(s)}
	}
	out.Scripts, out.TrackFiles, out.TrackProcesses = c.scripts, c.trackFiles, c.trackProcs
	return out
}

func (c *converter) finishSync(s *syncState) *outSync {
	o := &outSync{Interface: s.iface, Instance: s.instance}
	c.origin["ipvs.sync"] = s.pos
	switch {
	case s.idSet:
		o.SyncID = s.id
	case s.hasInst:
		// keepalived's default sync id is the instance's VRID.
		for _, in := range c.insts {
			if in.out.Name == s.instance {
				o.SyncID = in.out.VRID
			}
		}
	}
	if !s.hasInst {
		c.rep.add(s.pos, Note, "lvs_sync_daemon", "no instance named: director makes the master of the first instance the sync master (keepalived ran both daemons all the time)")
	}
	return o
}

// validation turns director's refusal of the result into errors placed at
// the keepalived lines the refused settings came from.
func (c *converter) validation(err error) {
	var ps config.Problems
	if !errors.As(err, &ps) {
		c.rep.add(Pos{File: c.file}, Error, "", "director refuses the result: %v", err)
		return
	}
	for _, p := range ps {
		if c.isBad(p.Field) {
			continue
		}
		at := c.originOf(p.Field)
		c.rep.add(at, Error, c.keywords[at], "director refuses the result: %s: %s", p.Field, p.Msg)
	}
}

// originOf finds the position of field, or of its nearest ancestor.
func (c *converter) originOf(field string) Pos {
	for f := field; f != ""; {
		if p, ok := c.origin[f]; ok {
			return p
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return Pos{File: c.file}
}

// note records where an output field came from.
func (c *converter) note(path string, at map[string]Pos) {
	for k, p := range at {
		c.origin[path+"."+k] = p
	}
}
