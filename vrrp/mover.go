package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// moverWorker carries out VIP moves off the instance goroutine, so a slow
// mover (a cloud API) never delays adverts or timers. It reconciles towards
// the latest wish: when mastership flips mid-move, the move in flight is
// cancelled and the opposite one starts. State notes are delivered here
// after the move they follow, so a MASTER note comes once the VIPs are
// taken; the callback only enqueues (hooks run elsewhere), so it never
// delays the next move.
type moverWorker struct {
	mover   Mover
	log     *slog.Logger
	timeout time.Duration
	now     func() time.Time

	mu   sync.Mutex
	want bool // hold the VIPs?
	// quiet: a master that stepped down keeps what it holds
	// (make-before-break) but takes nothing it lacks and announces
	// nothing, so that it never pulls clients back from its successor.
	quiet    bool
	reannc   bool // an Announce is pending
	gen      uint64
	cancelOp context.CancelFunc
	notes    []func()
	wake     chan struct{}
	assumed  *bool     // what is held at start, if known
	busy     time.Time // when the pass in progress began; zero when idle
	busyOp   string
}

// stuckGrace is how far past its timeout a move may run before the worker
// counts as stuck: a Mover that ignores its context.
const stuckGrace = 5 * time.Second

func newMoverWorker(m Mover, log *slog.Logger, timeout time.Duration, now func() time.Time) *moverWorker {
	return &moverWorker{mover: m, log: log, timeout: timeout, now: now, wake: make(chan struct{}, 1)}
}

// stuck reports a pass that has run past its timeout and the grace: the
// watchdog's sign that VIP moves no longer happen.
func (w *moverWorker) stuck() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy.IsZero() {
		return nil
	}
	if d := w.now().Sub(w.busy); d > w.timeout+stuckGrace {
		return fmt.Errorf("VIP mover stuck in %s for %s (timeout %s)", w.busyOp, d.Round(time.Second), w.timeout)
	}
	return nil
}

// flushNotes delivers notes queued after the worker stopped (the STOP note
// of a graceful stop).
func (w *moverWorker) flushNotes() {
	w.mu.Lock()
	notes := w.notes
	w.notes = nil
	w.mu.Unlock()
	for _, n := range notes {
		n()
	}
}

func (w *moverWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *moverWorker) set(want bool) {
	w.mu.Lock()
	if w.want != want || w.quiet {
		// Master again after a quiet hold: announce what stayed, since
		// clients may have followed the successor meanwhile.
		w.reannc = w.reannc || (want && w.quiet)
		w.want, w.quiet = want, false
		w.gen++
		if w.cancelOp != nil {
			w.cancelOp()
		}
	}
	w.mu.Unlock()
	w.poke()
}

// hold makes a holder quiet: what is held stays, unannounced; a Take in
// flight is cancelled (before it announces) and undone, and none starts.
func (w *moverWorker) hold() {
	w.mu.Lock()
	if w.want && !w.quiet {
		w.quiet = true
		w.reannc = false
		w.gen++
		if w.cancelOp != nil {
			w.cancelOp()
		}
	}
	w.mu.Unlock()
	w.poke()
}

// assume records that the VIPs are already held (want and have), so the
// worker neither takes nor announces them until told otherwise.
func (w *moverWorker) assume(held bool) {
	w.mu.Lock()
	w.want = held
	w.assumed = &held
	w.mu.Unlock()
}

func (w *moverWorker) announce() {
	w.mu.Lock()
	w.reannc = true
	w.mu.Unlock()
	w.poke()
}

func (w *moverWorker) notify(f func(State, uint8), s State, prio uint8) {
	w.mu.Lock()
	w.notes = append(w.notes, func() { f(s, prio) })
	w.mu.Unlock()
	w.poke()
}

// run reconciles until ctx ends. held is unknown at first, so the first
// pass always performs the wanted operation.
func (w *moverWorker) run(ctx context.Context) {
	w.mu.Lock()
	held := w.assumed
	w.mu.Unlock()
	backoff := 100 * time.Millisecond
	for {
		w.mu.Lock()
		want, quiet, gen, ann, notes := w.want, w.quiet, w.gen, w.reannc, w.notes
		w.notes = nil
		w.reannc = false
		opCtx, cancel := context.WithTimeout(ctx, w.timeout)
		w.cancelOp = cancel
		w.busy, w.busyOp = w.now(), "a move"
		w.mu.Unlock()

		var err error
		var op string
		switch {
		case want && quiet:
			switch {
			case held == nil:
				// A Take cut short, or never confirmed: whatever it
				// added was not announced, so nobody relies on it.
				op, err = "release", w.mover.Release(opCtx)
				if err == nil {
					held = new(bool)
				}
			case *held:
				if q, ok := w.mover.(Quieter); ok {
					q.Quiet()
				}
			}
		case held == nil || *held != want:
			if want {
				op, err = "take", w.mover.Take(opCtx)
			} else {
				op, err = "release", w.mover.Release(opCtx)
			}
			if err == nil {
				held = &want
			} else {
				// A failed move may have done part of its work (a local
				// address added, a cloud call made): unknown, so the next
				// wish is always carried out, even a Release.
				held = nil
			}
		case ann && want && !quiet:
			op, err = "announce", w.mover.Announce(opCtx)
		}
		cancel()
		w.mu.Lock()
		w.busyOp = "a state note"
		w.mu.Unlock()
		for _, n := range notes {
			n()
		}
		w.mu.Lock()
		w.busy = time.Time{}
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		changed := w.gen != gen
		w.mu.Unlock()
		var wait <-chan time.Time
		if err != nil && !changed {
			w.log.Error("VIP move failed, will retry", "op", op, "err", err, "retry_in", backoff)
			if ann {
				w.announce()
			}
			wait = time.After(backoff)
			backoff = min(backoff*2, 5*time.Second)
		} else if err == nil {
			backoff = 100 * time.Millisecond
		}
		if changed {
			continue
		}
		if wait != nil {
			select {
			case <-ctx.Done():
				return
			case <-wait:
			case <-w.wake:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
	}
}
