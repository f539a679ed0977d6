package checkproc

import (
	"bufio"
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/testwait"
)

// countingWriter counts the writes that reach the pipe.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) lines() (writes, lines int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, bytes.Count(c.buf.Bytes(), []byte("\n"))
}

func newTestWriter(w *countingWriter, delay time.Duration) *lineWriter {
	lw := &lineWriter{bw: bufio.NewWriterSize(w, 64<<10), delay: delay, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go lw.flushLoop()
	return lw
}

// Results sent together reach the daemon in one write, not one each: each
// write wakes the daemon.
func TestResultsShareAWrite(t *testing.T) {
	cw := &countingWriter{}
	w := newTestWriter(cw, resultDelay)
	defer w.close()
	for range 50 {
		w.send(fromWorker{Result: &resultMsg{Result: checks.Result{OK: true}}})
	}
	testwait.Eventually(t, 5*time.Second, "the results flushed", func() bool { _, n := cw.lines(); return n == 50 })
	if writes, _ := cw.lines(); writes > 2 {
		t.Errorf("50 results took %d writes, want them batched (1, or 2 if a flush fell between)", writes)
	}
}

// An event goes at once and takes the waiting results along.
func TestEventFlushesAtOnce(t *testing.T) {
	cw := &countingWriter{}
	w := newTestWriter(cw, time.Hour) // only the event can flush
	defer w.close()
	w.send(fromWorker{Result: &resultMsg{Result: checks.Result{OK: true}}})
	w.send(fromWorker{Event: &eventMsg{Prev: checks.Up}})
	testwait.Eventually(t, 10*time.Second, "the event and the result written", func() bool { _, n := cw.lines(); return n == 2 })
}
