// Package checkproc runs the health checks in a child process of the
// daemon, so that check work never competes with VRRP inside one Go
// runtime.
//
// Why a process: with a thousand checks, the Go scheduler queues the VRRP
// goroutine behind every runnable check goroutine, and a Go program has
// no goroutine priorities. As a separate process the checker is one more
// task to the kernel, which wakes the mostly idle VRRP process promptly
// however busy the checker is (keepalived splits its VRRP and checker
// children for the same reason). See docs/design/check-worker.md.
//
// The parent (Client) and the worker (Serve) talk over two pipes in JSON,
// one message per line: the parent sends the whole set of checks; the
// worker answers each set with every check's status, and then sends each
// attempt's result and status, each health event, and its log records.
package checkproc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/director-lb/director/checks"
)

// toWorker is a message from the daemon to the worker.
type toWorker struct {
	// Seq numbers Set requests; the worker's reply carries it back.
	Seq int64          `json:"seq"`
	Set []checks.Check `json:"set"`
	// Results asks for every attempt's result (the daemon has metrics to
	// feed). Without it the worker sends a check's result only when its
	// outcome or reason changed: what the daemon shows. A thousand
	// healthy checks then cost the daemon no message at all between
	// events, where each message wakes it and is decoded.
	Results bool `json:"results,omitempty"`
}

// fromWorker is a message from the worker: exactly one field is set.
type fromWorker struct {
	Reply  *setReply   `json:"reply,omitempty"`
	Result *resultMsg  `json:"result,omitempty"`
	Event  *eventMsg   `json:"event,omitempty"`
	Log    *logMessage `json:"log,omitempty"`
}

type setReply struct {
	Seq      int64      `json:"seq"`
	Err      string     `json:"err,omitempty"`
	Statuses []idStatus `json:"statuses"`
}

type idStatus struct {
	ID     checks.ID     `json:"id"`
	Status checks.Status `json:"status"`
}

type resultMsg struct {
	ID     checks.ID     `json:"id"`
	Result checks.Result `json:"result"`
	Status checks.Status `json:"status"`
}

type eventMsg struct {
	ID     checks.ID     `json:"id"`
	Prev   checks.Health `json:"prev"`
	Status checks.Status `json:"status"`
}

// logMessage is one of the worker's log records; the daemon logs it with
// its own handler, at the worker's time.
type logMessage struct {
	Time  time.Time   `json:"time"`
	Level slog.Level  `json:"level"`
	Msg   string      `json:"msg"`
	Attrs [][2]string `json:"attrs,omitempty"`
}

// decodeFromWorker parses one message from the worker and checks that it
// is exactly one thing.
func decodeFromWorker(line []byte) (fromWorker, error) {
	var m fromWorker
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode: %w", err)
	}
	n := 0
	for _, set := range []bool{m.Reply != nil, m.Result != nil, m.Event != nil, m.Log != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return m, fmt.Errorf("message with %d parts, want 1", n)
	}
	return m, nil
}
