package vrrpproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/director-lb/director/internal/childproc"
	"github.com/director-lb/director/internal/control"
)

// Config configures a Client.
type Config struct {
	// Argv is the child's command line: a program that serves on file
	// descriptors 3 (from the daemon) and 4 (to the daemon).
	Argv []string
	// Env is the child's environment. The child moves VIPs through EC2,
	// so it needs the daemon's credentials; it must not get systemd's
	// NOTIFY_SOCKET or WATCHDOG_* (see ChildEnv).
	Env []string
	// Logger logs the client's own records.
	Logger *slog.Logger
	// Stderr is the child's standard error (its log); default os.Stderr.
	Stderr io.Writer
	// OnMaster is told each instance's mastership as it changes; OnEC2Call
	// each EC2 API call. Both are called from one goroutine, in order.
	OnMaster  func(instance string, master bool)
	OnEC2Call func(op string, took time.Duration, failed bool)
	// RestartDelay is the pause before a dead child is started again;
	// default 1s.
	RestartDelay time.Duration
	// StartTimeout bounds the first child's start: its instances opened
	// and running. Default 60s.
	StartTimeout time.Duration
}

// ErrEnded is the error of a request the child could not answer because
// it ended.
var ErrEnded = errors.New("the VRRP process ended")

// Client runs the VRRP instances in a child process. A child that dies is
// started again with the last configuration and tracks; the VIPs stay
// where they are meanwhile, and the new instances' hold at start keeps
// them until the first adverts decide.
type Client struct {
	cfg  Config
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	cur     *child
	conf    *ConfigMsg      // the configuration the child runs
	tracks  map[string]bool // the last tracks sent
	nextID  int64
	pending map[int64]chan Reply
	closed  bool
	starts  int
}

type child struct {
	gen int
	cmd *exec.Cmd
	in  io.WriteCloser
	out io.ReadCloser
}

// ChildEnv is env without what only the daemon may use: systemd's
// notification socket and watchdog (the child must not answer for the
// daemon) and the listen sockets it passes.
func ChildEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Start starts the child with conf and waits until its instances run (or
// StartTimeout passes). An error means it could not: the daemon's start
// fails as it would with the instances in its own process.
func Start(cfg Config, conf ConfigMsg) (*Client, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("vrrp process: no command")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.RestartDelay <= 0 {
		cfg.RestartDelay = time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		pending: map[int64]chan Reply{}}
	ch, err := c.spawn()
	if err != nil {
		return nil, err
	}
	c.cur = ch
	go c.supervise(ch)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	if _, err := c.request(ctx, ToChild{Config: &conf}); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("vrrp process: start: %w", err)
	}
	c.mu.Lock()
	c.conf = &conf
	c.mu.Unlock()
	return c, nil
}

// spawn starts one child.
func (c *Client) spawn() (*child, error) {
	p, err := childproc.Start("vrrp process", c.cfg.Argv, c.cfg.Env, c.cfg.Stderr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.starts++
	gen := c.starts
	c.mu.Unlock()
	c.log.Debug("vrrp process started", "pid", p.Cmd.Process.Pid)
	return &child{gen: gen, cmd: p.Cmd, in: p.In, out: p.Out}, nil
}

// supervise reads from each child until it ends, and starts the next with
// the configuration and tracks the last one had.
func (c *Client) supervise(ch *child) {
	defer close(c.done)
	for {
		rerr := c.read(ch)
		ch.in.Close()
		ch.out.Close()
		werr := ch.cmd.Wait()
		c.mu.Lock()
		c.cur = nil
		pending := c.pending
		c.pending = map[int64]chan Reply{}
		closed := c.closed
		c.mu.Unlock()
		for _, p := range pending {
			close(p) // the requester sees ErrEnded
		}
		if closed {
			return
		}
		c.log.Error("vrrp process ended; starting another", "exit", fmt.Sprint(werr), "read", fmt.Sprint(rerr))
		for {
			select {
			case <-time.After(c.cfg.RestartDelay):
			case <-c.stop:
				return
			}
			var err error
			if ch, err = c.spawn(); err == nil {
				break
			}
			c.log.Error("vrrp process", "err", err)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			ch.in.Close()
			continue // it reads EOF and ends; the loop reaps it
		}
		c.cur = ch
		conf, tracks := c.conf, maps.Clone(c.tracks)
		c.nextID++
		id := c.nextID
		c.mu.Unlock()
		// Nobody waits for this reply: a refusal is logged by the child.
		if conf != nil {
			if err := c.write(ch, ToChild{ID: id, Config: conf}); err != nil {
				c.log.Warn("vrrp process", "err", err)
			}
		}
		if tracks != nil {
			if err := c.write(ch, ToChild{Tracks: tracks}); err != nil {
				c.log.Warn("vrrp process", "err", err)
			}
		}
	}
}

// read handles the child's messages until its pipe ends.
func (c *Client) read(ch *child) error {
	in := bufio.NewReaderSize(ch.out, 64<<10)
	for {
		line, err := childproc.ReadLine(in, maxLine)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		m, err := DecodeFromChild(line)
		if err != nil {
			c.log.Error("vrrp process: bad message", "err", err)
			continue
		}
		switch {
		case m.Reply != nil:
			c.mu.Lock()
			p, ok := c.pending[m.Reply.ID]
			delete(c.pending, m.Reply.ID)
			c.mu.Unlock()
			if ok {
				p <- *m.Reply
			}
		case m.Master != nil:
			if f := c.cfg.OnMaster; f != nil {
				f(m.Master.Instance, m.Master.Master)
			}
		case m.EC2Call != nil:
			if f := c.cfg.OnEC2Call; f != nil {
				f(m.EC2Call.Op, m.EC2Call.Took, m.EC2Call.Failed)
			}
		}
	}
}

// request sends m with a new ID and waits for the reply.
func (c *Client) request(ctx context.Context, m ToChild) (Reply, error) {
	c.mu.Lock()
	ch := c.cur
	if ch == nil || c.closed {
		c.mu.Unlock()
		return Reply{}, ErrEnded
	}
	c.nextID++
	m.ID = c.nextID
	p := make(chan Reply, 1)
	c.pending[m.ID] = p
	c.mu.Unlock()
	if err := c.write(ch, m); err != nil {
		c.mu.Lock()
		delete(c.pending, m.ID)
		c.mu.Unlock()
		return Reply{}, err
	}
	select {
	case r, ok := <-p:
		if !ok {
			return Reply{}, ErrEnded
		}
		if r.Err != "" {
			return r, errors.New(r.Err)
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, m.ID)
		c.mu.Unlock()
		return Reply{}, fmt.Errorf("vrrp process: no answer: %w", ctx.Err())
	}
}

func (c *Client) write(ch *child, m ToChild) error {
	if err := childproc.Send(ch.in, m); err != nil {
		return fmt.Errorf("vrrp process: %w", err)
	}
	return nil
}

// Reload gives the child a new configuration and waits until it has
// applied its part; an error leaves the child on the old one (it refused)
// or says it could not be asked.
func (c *Client) Reload(ctx context.Context, conf ConfigMsg) error {
	if _, err := c.request(ctx, ToChild{Config: &conf}); err != nil {
		return err
	}
	c.mu.Lock()
	c.conf = &conf
	c.mu.Unlock()
	return nil
}

// SetTracks sends the tracked services' and real servers' states, if they
// changed. It does not wait.
func (c *Client) SetTracks(tracks map[string]bool) {
	c.mu.Lock()
	if maps.Equal(c.tracks, tracks) && c.tracks != nil {
		c.mu.Unlock()
		return
	}
	c.tracks = maps.Clone(tracks)
	ch := c.cur
	c.mu.Unlock()
	if ch == nil {
		return // the next child gets them
	}
	if err := c.write(ch, ToChild{Tracks: tracks}); err != nil {
		c.log.Warn("vrrp process", "err", err)
	}
}

// State returns the instances' and sync groups' state.
func (c *Client) State(ctx context.Context) ([]control.InstanceState, []control.SyncGroupState, error) {
	r, err := c.request(ctx, ToChild{State: true})
	return r.Instances, r.SyncGroups, err
}

// Failover hands instance name ("" for all) to the peer and waits until
// the peer is master.
func (c *Client) Failover(ctx context.Context, name string) error {
	_, err := c.request(ctx, ToChild{Failover: &name})
	return err
}

// Failback makes this node master of instance name ("" for all) and waits
// until it is.
func (c *Client) Failback(ctx context.Context, name string) error {
	_, err := c.request(ctx, ToChild{Failback: &name})
	return err
}

// Ping asks the child whether its sockets have readers and its instances
// answer.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.request(ctx, ToChild{Ping: true})
	return err
}

// Starts counts the children started (1 until one dies).
func (c *Client) Starts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts
}

// Close ends the child: its input closes, its masters hand over and it
// exits. One that has not when ctx ends is killed.
func (c *Client) Close(ctx context.Context) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.closed = true
	ch := c.cur
	c.mu.Unlock()
	close(c.stop)
	if ch != nil {
		ch.in.Close()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if ch != nil {
			_ = ch.cmd.Process.Kill()
		}
		<-c.done
	}
}
