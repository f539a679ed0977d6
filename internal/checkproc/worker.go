package checkproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/childproc"
)

// maxLine bounds one message. A set of checks is one line: 64 MiB holds
// far more than any configuration the daemon accepts.
const maxLine = 64 << 20

// Serve is the worker: it runs a checks.Manager on the sets of checks it
// reads from r, and writes replies, results, events and its log records
// to w, until r ends (the daemon closed the pipe, or died) or w fails.
func Serve(r io.Reader, w io.Writer, level slog.Leveler) error {
	out := newLineWriter(w, resultDelay)
	defer out.close()
	log := slog.New(&pipeHandler{out: out, level: level})
	var wantAll atomic.Bool // the daemon asked for every result
	changed := newOutcomes()
	var m *checks.Manager
	m = checks.NewManager(checks.Options{
		Logger: log,
		// Plain HTTP and TCP checks on one goroutine: far fewer clock
		// reads per check, which a VM traps (docs/design/check-worker.md).
		EventLoop: true,
		OnEvent: func(e checks.Event) {
			out.send(fromWorker{Event: &eventMsg{ID: e.ID, Prev: e.Prev, Status: e.Status}})
		},
		OnResult: func(id checks.ID, res checks.Result) {
			if !changed.note(id, res) && !wantAll.Load() {
				return
			}
			st, ok := m.Status(id)
			if !ok {
				return // removed meanwhile
			}
			out.send(fromWorker{Result: &resultMsg{ID: id, Result: res, Status: st}})
		},
	})
	defer m.Close()
	in := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := childproc.ReadLine(in, maxLine)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check worker: read from the daemon: %w", err)
		}
		var req toWorker
		if err := json.Unmarshal(line, &req); err != nil {
			return fmt.Errorf("check worker: message from the daemon: %w", err)
		}
		wantAll.Store(req.Results)
		_, _, err = m.Set(req.Set)
		changed.keep(req.Set)
		rep := &setReply{Seq: req.Seq}
		if err != nil {
			rep.Err = err.Error()
		}
		for id, st := range m.Statuses() {
			rep.Statuses = append(rep.Statuses, idStatus{ID: id, Status: st})
		}
		out.send(fromWorker{Reply: rep})
		if err := out.failed(); err != nil {
			return fmt.Errorf("check worker: write to the daemon: %w", err)
		}
	}
}

// outcomes remembers each check's last outcome sent (pass or fail, and
// the reason), so that a result that repeats it need not be sent.
type outcomes struct {
	mu   sync.Mutex
	last map[checks.ID]outcome
}

type outcome struct {
	ok     bool
	reason string
}

func newOutcomes() *outcomes { return &outcomes{last: map[checks.ID]outcome{}} }

// note records r as id's latest outcome and reports whether it differs
// from the one before (a check's first result always does).
func (o *outcomes) note(id checks.ID, r checks.Result) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := outcome{r.OK, r.Reason}
	prev, seen := o.last[id]
	o.last[id] = now
	return !seen || prev != now
}

// keep forgets the checks not in set, so the memory holds only the
// checks that run (and a re-added check reports its first result).
func (o *outcomes) keep(set []checks.Check) {
	want := make(map[checks.ID]bool, len(set))
	for _, c := range set {
		want[c.ID()] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := range o.last {
		if !want[id] {
			delete(o.last, id)
		}
	}
}

// lineWriter writes messages from any goroutine; a flusher sends them on,
// so messages sent close together share one write. Results (for metrics
// and the statuses' last round) wait up to resultDelay for company; the
// rest (events, replies, log records) go at once and take the waiting
// results along. Each write wakes the daemon, and in a VM every wake-up
// costs clock reads and scheduler work there: a thousand checks would
// otherwise wake it hundreds of times a second.
type lineWriter struct {
	w     io.Writer
	mu    sync.Mutex
	room  *sync.Cond    // the flusher took buf: senders waiting for room go on
	buf   []byte        // waiting for the flusher
	spare []byte        // the flusher's last buffer, for reuse
	err   error         // the pipe's first write error; set by the flusher
	delay time.Duration // resultDelay; tests lengthen it
	// pending: a delayed flush is armed.
	pending bool
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

// resultDelay bounds how long a result waits to be sent.
const resultDelay = 500 * time.Millisecond

// maxPending bounds what waits for the pipe. Below it a send never waits
// for the daemon to read: the sender may be the checks' event loop, which
// must not stall on a slow pipe. At it, senders wait.
const maxPending = 4 << 20

func newLineWriter(w io.Writer, delay time.Duration) *lineWriter {
	lw := &lineWriter{w: w, delay: delay, kick: make(chan struct{}, 1), done: make(chan struct{})}
	lw.room = sync.NewCond(&lw.mu)
	go lw.flushLoop()
	return lw
}

func (w *lineWriter) send(m fromWorker) {
	b, err := json.Marshal(m)
	if err != nil {
		return // the types marshal; nothing to send if one did not
	}
	b = append(b, '\n')
	urgent := m.Result == nil
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) >= maxPending && w.err == nil && !w.closed {
		w.kickLocked()
		w.room.Wait()
	}
	if w.err != nil || w.closed {
		return
	}
	w.buf = append(w.buf, b...)
	switch {
	case urgent:
		w.kickLocked()
	case !w.pending:
		w.pending = true
		time.AfterFunc(w.delay, w.kickNow)
	}
}

func (w *lineWriter) kickNow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kickLocked()
}

// kickLocked wakes the flusher; with mu held, so never after close.
func (w *lineWriter) kickLocked() {
	if w.closed {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *lineWriter) flushLoop() {
	defer close(w.done)
	for range w.kick {
		w.flush()
	}
}

// flush writes what waits, outside the lock: senders go on meanwhile.
func (w *lineWriter) flush() {
	w.mu.Lock()
	w.pending = false
	out := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.room.Broadcast()
	failed := w.err != nil
	w.mu.Unlock()
	var err error
	if len(out) > 0 && !failed {
		_, err = w.w.Write(out)
	}
	w.mu.Lock()
	if err != nil && w.err == nil {
		w.err = err
		w.room.Broadcast()
	}
	if cap(out) <= maxPending {
		w.spare = out[:0]
	}
	w.mu.Unlock()
}

func (w *lineWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close writes what is left and stops the flusher. Nothing may send after.
func (w *lineWriter) close() {
	w.mu.Lock()
	w.closed = true
	close(w.kick)
	w.room.Broadcast()
	w.mu.Unlock()
	<-w.done
	w.flush()
}

// pipeHandler sends log records to the daemon, which logs them with its
// own handler: the worker's lines look like the daemon's.
type pipeHandler struct {
	out    *lineWriter
	level  slog.Leveler
	attrs  [][2]string
	prefix string // groups, dot-separated
}

func (h *pipeHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *pipeHandler) Handle(_ context.Context, r slog.Record) error {
	msg := &logMessage{Time: r.Time, Level: r.Level, Msg: r.Message, Attrs: slices.Clone(h.attrs)}
	r.Attrs(func(a slog.Attr) bool {
		msg.Attrs = appendAttr(msg.Attrs, h.prefix, a)
		return true
	})
	h.out.send(fromWorker{Log: msg})
	return nil
}

func (h *pipeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *pipeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr flattens a into key/value strings.
func appendAttr(to [][2]string, prefix string, a slog.Attr) [][2]string {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			to = appendAttr(to, p, g)
		}
		return to
	}
	if a.Key == "" {
		return to
	}
	return append(to, [2]string{prefix + a.Key, v.String()})
}
