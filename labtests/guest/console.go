package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// consoleHandler renders records as "  +1.234s message k=v" for the guest
// console: the lab's readers are people watching a test log or a demo, so
// the time since the guest program started matters more than the level.
type consoleHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	base  time.Time
	attrs []slog.Attr
}

func newConsoleHandler(w io.Writer, base time.Time) *consoleHandler {
	return &consoleHandler{mu: &sync.Mutex{}, w: w, base: base}
}

func (h *consoleHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %+8.3fs ", r.Time.Sub(h.base).Seconds())
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String() + " ")
	}
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

// WithGroup is not needed by the guest; groups are flattened.
func (h *consoleHandler) WithGroup(string) slog.Handler { return h }
