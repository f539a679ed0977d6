package vrrpproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/control"
)

// Handler is what the child runs: the daemon's instances (daemon.ServeVRRP).
type Handler interface {
	// Configure starts the instances of the configuration, and returns
	// once they run (or could not start); later calls reload.
	Configure(ctx context.Context, conf ConfigMsg) error
	// SetTracks gives the tracked services' and real servers' states.
	SetTracks(tracks map[string]bool)
	State(ctx context.Context) ([]control.InstanceState, []control.SyncGroupState)
	Failover(ctx context.Context, name string) error
	Failback(ctx context.Context, name string) error
	Ping(ctx context.Context) error
}

// Out writes the child's messages to the daemon, from any goroutine.
type Out struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewOut writes to w (the child's file descriptor 4).
func NewOut(w io.Writer) *Out { return &Out{w: w} }

func (o *Out) send(m FromChild) {
	b, err := json.Marshal(m)
	if err != nil {
		return // every type here marshals
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if _, err := o.w.Write(append(b, '\n')); err != nil {
		o.err = err
	}
}

// Master reports that this node is (or is not) master of instance.
func (o *Out) Master(instance string, master bool) {
	o.send(FromChild{Master: &MasterMsg{Instance: instance, Master: master}})
}

// EC2Call reports one EC2 API call.
func (o *Out) EC2Call(op string, took time.Duration, err error) {
	o.send(FromChild{EC2Call: &EC2CallMsg{Op: op, Took: took, Failed: err != nil}})
}

func (o *Out) reply(id int64, err error, ins []control.InstanceState, groups []control.SyncGroupState) {
	r := &Reply{ID: id, Instances: ins, SyncGroups: groups}
	if err != nil {
		r.Err = err.Error()
	}
	o.send(FromChild{Reply: r})
}

// requestTimeout bounds a failover or failback the daemon asked for: it
// waits (its own context) for less.
const requestTimeout = 5 * time.Minute

// Serve runs the child's side: it reads the daemon's messages from in and
// hands them to h, answering each request on o, until in ends (the daemon
// closed the pipe, or died). The caller then stops the instances.
func Serve(ctx context.Context, in io.Reader, o *Out, h Handler) error {
	r := bufio.NewReaderSize(in, 64<<10)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // requests still waiting end with the pipe
	// Long requests run beside the loop, so that state and pings are
	// answered meanwhile.
	async := func(id int64, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			o.reply(id, f(rctx), nil, nil)
		}()
	}
	for {
		line, err := childproc.ReadLine(r, maxLine)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vrrp process: read from the daemon: %w", err)
		}
		m, err := DecodeToChild(line)
		if err != nil {
			return fmt.Errorf("vrrp process: message from the daemon: %w", err)
		}
		switch {
		case m.Config != nil:
			// In order: a reload must not overtake the start.
			o.reply(m.ID, h.Configure(ctx, *m.Config), nil, nil)
		case m.Tracks != nil:
			h.SetTracks(m.Tracks)
		case m.State:
			ins, groups := h.State(ctx)
			o.reply(m.ID, nil, ins, groups)
		case m.Ping:
			async(m.ID, h.Ping)
		case m.Failover != nil:
			name := *m.Failover
			async(m.ID, func(ctx context.Context) error { return h.Failover(ctx, name) })
		case m.Failback != nil:
			name := *m.Failback
			async(m.ID, func(ctx context.Context) error { return h.Failback(ctx, name) })
		}
		if o.failed() != nil {
			return fmt.Errorf("vrrp process: write to the daemon: %w", o.failed())
		}
	}
}

func (o *Out) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
