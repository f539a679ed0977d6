package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/internal/track"
	"github.com/director-lb/director/vrrp"
)

// okRunner answers every script run with ok's value.
type okRunner struct{ ok *atomic.Bool }

func (r okRunner) Run(context.Context, config.Script) track.Result {
	if r.ok.Load() {
		return track.Result{OK: true, Detail: "exit status 0"}
	}
	return track.Result{Detail: "exit status 1"}
}

// A script, a maintenance file and another interface drive the priority
// and FAULT with keepalived's weights, and `director state` shows why.
func TestTrackScriptFileInterface(t *testing.T) {
	maint := filepath.Join(t.TempDir(), "maint")
	y := `instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, vips: [10.0.0.100/32],
     track: [{script: chk_haproxy}, {file: maint}, {interface: eth1, weight: -20}]}
scripts:
  - {name: chk_haproxy, command: [killall, -0, haproxy], interval: 10ms, weight: -60}
track_files:
  - {name: maint, path: ` + maint + `, weight: 0}
`
	cfg, err := config.Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := testInstance(log, 150, time.Second)
	runInstance(t, in)
	d := &Daemon{log: log, cfg: cfg, carriers: map[string]*carrier{"eth1": {up: true, cancel: func() {}}},
		running: []*runningInstance{{in: in, cfg: cfg.Instances[0], prio: 150, link: true}}}
	var ok atomic.Bool
	ok.Store(true)
	d.tracks = track.New(track.Options{Runner: okRunner{&ok}, OnChange: d.retrack})
	d.tracks.Set(cfg)
	defer d.tracks.Close()

	wait := func(what string, f func() bool) {
		t.Helper()
		testwait.Eventually(t, 5*time.Second, what, f)
	}
	prio := func(want uint8) func() bool { return func() bool { return in.Stats().Priority == want } }
	wait("the script's first run and the file's first read", func() bool {
		sc, _ := d.tracks.State(track.Key{Kind: track.KindScript, Name: "chk_haproxy"})
		f, _ := d.tracks.State(track.Key{Kind: track.KindFile, Name: "maint"})
		return sc.Result == "exit status 0" && f.Known
	})
	ok.Store(false)
	wait("priority 90 with the script failing", prio(90))
	tr := d.State().Instances[0].Tracks
	want := control.TrackState{Kind: "script", Name: "chk_haproxy", State: "down", Result: "exit status 1", Weight: -60, Applied: -60}
	if len(tr) != 3 || tr[0] != want {
		t.Fatalf("state tracks %+v, want first %+v", tr, want)
	}
	if f := tr[1]; f.Kind != "file" || f.State != "up" || f.Result != "missing (counts as 0)" || f.Fault {
		t.Errorf("file track %+v", f)
	}
	ok.Store(true)
	wait("priority 150 with the script passing", prio(150))

	d.mu.Lock()
	d.carriers["eth1"].up = false
	d.mu.Unlock()
	d.retrack()
	wait("priority 130 with eth1 down", prio(130))
	if it := d.State().Instances[0].Tracks[2]; it.State != "down" || it.Result != "carrier down" || it.Applied != -20 {
		t.Errorf("interface track %+v", it)
	}

	if err := os.WriteFile(maint, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("FAULT with the maintenance file set", func() bool { return in.Stats().State == vrrp.StateFault })
	if f := d.State().Instances[0].Tracks[1]; f.Result != "value 1" || !f.Fault || f.State != "fault" {
		t.Errorf("file track with 1 in it: %+v", f)
	}
	if err := os.WriteFile(maint, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("out of FAULT with the maintenance file cleared", func() bool { return in.Stats().State != vrrp.StateFault })
}
