package checkproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/childproc"
)

// Config configures a Client.
type Config struct {
	// Argv is the worker's command line: a program that runs Serve on
	// file descriptors 3 (from the daemon) and 4 (to the daemon).
	Argv []string
	// Logger logs the worker's records and the client's own.
	Logger *slog.Logger
	// OnEvent and OnResult are as in checks.Options. Both are called from
	// one goroutine, in the order the worker sent them. Without OnResult
	// the worker sends only the results whose outcome or reason changed.
	OnEvent  func(checks.Event)
	OnResult func(checks.ID, checks.Result)
	// Stderr receives the worker's standard error (a panic's trace);
	// default os.Stderr.
	Stderr io.Writer
	// RestartDelay is the pause before a dead worker is started again;
	// default 1s.
	RestartDelay time.Duration
}

// Client runs the checks in a worker process and mirrors their statuses.
// It has the methods of a checks.Manager that the daemon uses. A worker
// that dies is started again, with the last set of checks; meanwhile the
// mirrored statuses stand, so no weight changes for the checker's crash.
type Client struct {
	cfg  Config
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	setMu sync.Mutex // serialises Set

	mu       sync.Mutex
	statuses map[checks.ID]mirrored
	want     []checks.Check
	seq      int64   // of the last set sent
	cur      *worker // nil while there is none
	closed   bool
	starts   int
}

// mirrored is a check's status as worker gen last reported it.
type mirrored struct {
	st  checks.Status
	gen int
}

type worker struct {
	gen int // which start this is: 1, 2, ...
	cmd *exec.Cmd
	in  io.WriteCloser // to the worker's fd 3
	out io.ReadCloser  // from its fd 4
}

// Start starts the worker. An error means none could start: the caller
// may run the checks in process instead.
func Start(cfg Config) (*Client, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("check worker: no command")
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
	c := &Client{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		statuses: map[checks.ID]mirrored{}}
	w, err := c.spawn()
	if err != nil {
		return nil, err
	}
	c.cur = w
	go c.supervise(w)
	return c, nil
}

// WorkerGODEBUG turns off the Go runtime's asynchronous preemption in the
// worker. On a busy CPU the kernel takes the worker's thread away in the
// middle of a goroutine; the runtime's monitor then sees that goroutine
// "running" for over 10 ms and signals the thread to preempt it, which
// only adds work (in a VM that traps signals and system calls, much of
// it): the lab counted 0.8 such signals per check beside CPU burners.
// Checks call functions often enough to be preempted cooperatively.
const WorkerGODEBUG = "GODEBUG=asyncpreemptoff=1"

// spawn starts one worker.
func (c *Client) spawn() (*worker, error) {
	// Nothing of the daemon's environment (which may hold cloud
	// credentials) reaches the worker; exec checks get their own.
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", WorkerGODEBUG}
	p, err := childproc.Start("check worker", c.cfg.Argv, env, c.cfg.Stderr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.starts++
	gen := c.starts
	c.mu.Unlock()
	c.log.Debug("check worker started", "pid", p.Cmd.Process.Pid)
	return &worker{gen: gen, cmd: p.Cmd, in: p.In, out: p.Out}, nil
}

// supervise reads from each worker until it ends, and starts the next.
func (c *Client) supervise(w *worker) {
	defer close(c.done)
	for {
		rerr := c.read(w)
		w.in.Close()
		w.out.Close()
		werr := w.cmd.Wait()
		c.mu.Lock()
		c.cur = nil
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		c.log.Error("check worker ended; starting another", "exit", fmt.Sprint(werr), "read", fmt.Sprint(rerr))
		for {
			select {
			case <-time.After(c.cfg.RestartDelay):
			case <-c.stop:
				return
			}
			var err error
			if w, err = c.spawn(); err == nil {
				break
			}
			c.log.Error("check worker", "err", err)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			w.in.Close()
			continue // it reads EOF and ends; the loop reaps it
		}
		c.cur = w
		want := c.want
		c.seq++
		seq := c.seq
		c.mu.Unlock()
		if want != nil {
			// No one waits for this reply; it refreshes the statuses.
			if err := c.write(w, toWorker{Seq: seq, Set: want, Results: c.cfg.OnResult != nil}); err != nil {
				c.log.Warn("check worker", "err", err)
			}
		}
	}
}

// read handles the worker's messages until its pipe ends.
func (c *Client) read(w *worker) error {
	in := bufio.NewReaderSize(w.out, 64<<10)
	for {
		line, err := childproc.ReadLine(in, maxLine)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		m, err := decodeFromWorker(line)
		if err != nil {
			return fmt.Errorf("check worker: %w", err)
		}
		c.handle(w.gen, m)
	}
}

func (c *Client) handle(gen int, m fromWorker) {
	switch {
	case m.Reply != nil:
		r := *m.Reply
		if r.Err != "" {
			// The daemon validated the set with the same code; the worker
			// keeps its previous checks.
			c.log.Error("check worker refused the checks", "err", r.Err)
			return
		}
		c.mu.Lock()
		// Only the answer to the latest set describes the checks wanted.
		if r.Seq == c.seq {
			next := make(map[checks.ID]mirrored, len(r.Statuses))
			for _, s := range r.Statuses {
				next[s.ID] = newer(c.statuses[s.ID], mirrored{s.Status, gen})
			}
			c.statuses = next
		}
		c.mu.Unlock()
	case m.Result != nil:
		c.update(gen, m.Result.ID, m.Result.Status)
		if f := c.cfg.OnResult; f != nil {
			f(m.Result.ID, m.Result.Result)
		}
	case m.Event != nil:
		if !c.update(gen, m.Event.ID, m.Event.Status) {
			return // a check removed meanwhile
		}
		if f := c.cfg.OnEvent; f != nil {
			f(checks.Event{ID: m.Event.ID, Prev: m.Event.Prev, Status: m.Event.Status})
		}
	case m.Log != nil:
		c.logRecord(m.Log)
	}
}

// update mirrors one check's status, unless the check is gone (a result
// that crossed its removal) or the status is older than the mirror's.
func (c *Client) update(gen int, id checks.ID, st checks.Status) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.statuses[id]
	if !ok {
		return false
	}
	c.statuses[id] = newer(old, mirrored{st, gen})
	return true
}

// newer is the later of two statuses of one check: events and results
// travel separately, so an event may arrive after the next round's
// result. A new worker's status replaces a dead one's, whatever its round.
func newer(old, st mirrored) mirrored {
	if old.gen == st.gen && old.st.Rounds > st.st.Rounds {
		return old
	}
	return st
}

func (c *Client) logRecord(l *logMessage) {
	h := c.log.Handler()
	ctx := context.Background()
	if !h.Enabled(ctx, l.Level) {
		return
	}
	r := slog.NewRecord(l.Time, l.Level, l.Msg, 0)
	for _, a := range l.Attrs {
		r.AddAttrs(slog.String(a[0], a[1]))
	}
	_ = h.Handle(ctx, r)
}

func (c *Client) write(w *worker, m toWorker) error {
	if err := childproc.Send(w.in, m); err != nil {
		return fmt.Errorf("check worker: %w", err)
	}
	return nil
}

// Set makes the worker's checks exactly cs, as checks.Manager.Set does:
// if any check is invalid, nothing changes and the error says why (the
// checks are validated here, with the worker's own code). It does not
// wait for the worker: kept checks keep their status and new ones count
// as unknown until the worker reports them, so a reload, or the daemon's
// start, never waits for the worker process.
func (c *Client) Set(cs []checks.Check) (added, removed int, err error) {
	var errs []error
	for _, ch := range cs {
		if err := checks.Validate(ch); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, 0, errors.Join(errs...)
	}
	c.setMu.Lock()
	defer c.setMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, 0, errors.New("check worker: closed")
	}
	c.want = cs
	c.seq++
	seq, w := c.seq, c.cur
	c.mu.Unlock()
	added, removed = c.setLocally(cs)
	if w != nil {
		if err := c.write(w, toWorker{Seq: seq, Set: cs, Results: c.cfg.OnResult != nil}); err != nil {
			// The worker is going; its successor gets the set.
			c.log.Warn("check worker", "err", err)
		}
	}
	return added, removed, nil
}

// setLocally mirrors cs without a worker: kept checks keep their status,
// new ones are unknown until a worker runs them.
func (c *Client) setLocally(cs []checks.Check) (added, removed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[checks.ID]mirrored, len(cs))
	now := time.Now()
	for _, ch := range cs {
		id := ch.ID()
		if m, ok := c.statuses[id]; ok {
			next[id] = m
			continue
		}
		if _, dup := next[id]; !dup {
			next[id] = mirrored{st: checks.Status{Since: now}}
			added++
		}
	}
	for id := range c.statuses {
		if _, ok := next[id]; !ok {
			removed++
		}
	}
	c.statuses = next
	return added, removed
}

// Status returns a check's last status the worker reported.
func (c *Client) Status(id checks.ID) (checks.Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.statuses[id]
	return m.st, ok
}

// Starts counts the workers started (1 until one dies).
func (c *Client) Starts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts
}

// Close ends the worker: its input closes, it stops its checks and exits;
// one that has not within 5s is killed.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.closed = true
	w := c.cur
	c.mu.Unlock()
	close(c.stop)
	if w != nil {
		w.in.Close()
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		if w != nil {
			_ = w.cmd.Process.Kill()
		}
		<-c.done
	}
}
