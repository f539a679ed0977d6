package checkproc

import (
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

// Results sent together reach the daemon in one write, not one each: each
// write wakes the daemon.
func TestResultsShareAWrite(t *testing.T) {
	cw := &countingWriter{}
	w := newLineWriter(cw, resultDelay)
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
	w := newLineWriter(cw, time.Hour) // only the event can flush
	defer w.close()
	w.send(fromWorker{Result: &resultMsg{Result: checks.Result{OK: true}}})
	w.send(fromWorker{Event: &eventMsg{Prev: checks.Up}})
	testwait.Eventually(t, 10*time.Second, "the event and the result written", func() bool { _, n := cw.lines(); return n == 2 })
}

// gateWriter blocks every write until open is closed.
type gateWriter struct {
	countingWriter
	open    chan struct{}
	entered chan struct{} // closed at the first write
	once    sync.Once
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.countingWriter.Write(p)
}

// A pipe the daemon does not read stalls no sender until maxPending waits,
// and then bounds what waits; once the pipe moves, everything arrives.
func TestSlowPipeStallsNoSender(t *testing.T) {
	g := &gateWriter{open: make(chan struct{}), entered: make(chan struct{})}
	w := newLineWriter(g, time.Hour)
	w.send(fromWorker{Event: &eventMsg{Prev: checks.Up}}) // the flusher takes it and blocks
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the flusher never wrote")
	}
	// These sends must not wait for the blocked write: if they did, the
	// test would end at its deadline below instead.
	sent := 1
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			w.mu.Lock()
			full := len(w.buf) >= maxPending
			w.mu.Unlock()
			if full {
				return
			}
			w.send(fromWorker{Result: &resultMsg{Result: checks.Result{OK: true, Reason: "HTTP 200"}}})
			sent++
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("sends waited for a pipe that does not move, below maxPending")
	}
	// One more send waits for room; the pipe moving lets it through.
	last := make(chan struct{})
	go func() {
		w.send(fromWorker{Event: &eventMsg{Prev: checks.Down}})
		close(last)
	}()
	select {
	case <-last:
		t.Error("a send went on past maxPending while the pipe was blocked")
	default:
	}
	close(g.open)
	select {
	case <-last:
	case <-time.After(30 * time.Second):
		t.Fatal("a send waiting for room never went on")
	}
	sent++
	w.close()
	if _, n := g.lines(); n != sent {
		t.Errorf("%d lines reached the pipe, want the %d sent", n, sent)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Errorf("writer error: %v", w.err)
	}
}
