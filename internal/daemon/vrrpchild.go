package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/vrrpproc"
)

// ServeVRRP is the VRRP process (`director vrrp`): it runs the VRRP part of
// the configuration the daemon sends on in (config.VRRPPart) with edges,
// reports on out, and stops the instances, handing over as at any stop,
// once in ends. Its log goes to log, whose level follows the
// configuration's.
func ServeVRRP(in io.Reader, out io.Writer, edges Edges, version string, level *slog.LevelVar, log *slog.Logger) error {
	// The process's own instances run here, not in yet another process.
	edges.VRRPWorker, edges.CheckWorker = nil, nil
	o := vrrpproc.NewOut(out)
	h := &vrrpChild{edges: edges, version: version, level: level, log: log, out: o, tracks: map[string]bool{}}
	err := vrrpproc.Serve(context.Background(), in, o, h)
	if stopErr := h.stop(); err == nil {
		err = stopErr
	}
	return err
}

// vrrpChild is the VRRP process's Handler: one Daemon with no services,
// routing, API, metrics or control socket, started by the first
// configuration and reloaded by the next.
type vrrpChild struct {
	edges   Edges
	version string
	level   *slog.LevelVar
	log     *slog.Logger
	out     *vrrpproc.Out

	mu     sync.Mutex
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
	tracks map[string]bool
}

func (h *vrrpChild) Configure(ctx context.Context, c vrrpproc.ConfigMsg) error {
	cfg, err := config.Parse(c.File, c.Text)
	if err != nil {
		return fmt.Errorf("configuration refused by the VRRP process: %w", err)
	}
	part := cfg.VRRPPart()
	h.mu.Lock()
	d := h.d
	h.mu.Unlock()
	if d != nil {
		_, err := d.Apply(ctx, part, false)
		return err
	}
	var lv slog.Level
	if lv.UnmarshalText([]byte(part.LogLevel)) == nil {
		h.level.Set(lv)
	}
	d, err = New(part, h.edges, h.version, h.level, h.log)
	if err != nil {
		return err
	}
	d.onMaster, d.quietReload = h.out.Master, true
	d.ec2Call = h.out.EC2Call
	h.mu.Lock()
	d.remote = h.tracks
	h.mu.Unlock()
	ready := make(chan struct{})
	d.onReady = func() { close(ready) }
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		if err == nil {
			err = fmt.Errorf("VRRP process: the instances stopped at once")
		}
		return err
	}
	h.mu.Lock()
	h.d, h.cancel, h.done = d, cancel, done
	h.mu.Unlock()
	return nil
}

// stop stops the instances (a master hands over) and waits for them.
func (h *vrrpChild) stop() error {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

func (h *vrrpChild) daemon() *Daemon {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.d
}

func (h *vrrpChild) SetTracks(t map[string]bool) {
	h.mu.Lock()
	h.tracks = t
	d := h.d
	h.mu.Unlock()
	if d != nil {
		d.mu.Lock()
		d.remote = t
		d.mu.Unlock()
		d.retrack()
	}
}

func (h *vrrpChild) State(context.Context) ([]control.InstanceState, []control.SyncGroupState) {
	d := h.daemon()
	if d == nil {
		return nil, nil
	}
	st := d.State()
	return st.Instances, st.SyncGroups
}

func (h *vrrpChild) Failover(ctx context.Context, name string) error {
	d := h.daemon()
	if d == nil {
		return fmt.Errorf("no instances yet")
	}
	return d.Failover(ctx, name)
}

func (h *vrrpChild) Failback(ctx context.Context, name string) error {
	d := h.daemon()
	if d == nil {
		return fmt.Errorf("no instances yet")
	}
	return d.Failback(ctx, name)
}

func (h *vrrpChild) Ping(ctx context.Context) error {
	d := h.daemon()
	if d == nil {
		return fmt.Errorf("no instances yet")
	}
	return d.alive(ctx, 5*time.Second)
}
