package checks

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Target is where one probe goes: the real server's address with the
// check's connect_ip/connect_port overrides already applied.
type Target struct {
	Addr netip.AddrPort
	// Source is the local address to bind to; the zero Addr lets the
	// kernel choose.
	Source netip.Addr
	// Server is the real server the check decides about (for MISC_CHECK
	// commands, which get it in their environment).
	Server netip.AddrPort
}

// Prober carries out one attempt of a check. It must return by the
// context's deadline and must not keep goroutines running after it returns.
type Prober interface {
	Probe(ctx context.Context, t Target) Result
}

// DeadlineProber is a Prober that takes its deadline as a time rather than
// as a context's: the cheaper way for probers whose I/O honours one
// connection deadline (no context timer to arm and stop per attempt). ctx
// then only cancels.
type DeadlineProber interface {
	Prober
	ProbeUntil(ctx context.Context, t Target, deadline time.Time) Result
}

// Result is the outcome of one attempt, or of a whole round.
type Result struct {
	OK bool
	// Reason says why the attempt failed ("HTTP status 503, want
	// 200-299"), or briefly what succeeded ("HTTP 200").
	Reason string
	// TimedOut is set when the attempt ran out of time.
	TimedOut bool
	// Refused is set when the server refused the connection: nothing
	// listens there, so every client connection sent to it fails too.
	Refused bool
	// Closed is set when the server closed or reset the connection
	// before a whole answer: what a server does to a client that stalls
	// (see Manager).
	Closed bool
	// Latency is the wall time the attempt took.
	Latency time.Duration
	// Lag is how late the attempt started after it fell due: the
	// checker's own scheduling lag (Manager attempts only).
	Lag time.Duration
	// Discounted marks a timeout, or a connection the server closed,
	// blamed on the checker running late rather than on the server (see
	// Manager): it counts neither way.
	Discounted bool
	// ReadLate marks an attempt that read, after its deadline, an answer
	// the kernel had received before it: the checker was late, the
	// server was not, and the answer was judged as if read in time.
	ReadLate bool
	// Weight is a dynamic weight (MISC_CHECK misc_dynamic), if HasWeight.
	Weight    int
	HasWeight bool
	// Adjust is added to the server's weight while the check passes (a
	// file check's value × weight, keepalived's FILE_CHECK).
	Adjust int
}

func success(format string, args ...any) Result {
	return Result{OK: true, Reason: fmt.Sprintf(format, args...)}
}

func failure(format string, args ...any) Result {
	return Result{Reason: clip(fmt.Sprintf(format, args...))}
}

// maxReason keeps reasons that quote a real server's bytes readable in logs.
const maxReason = 200

func clip(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason] + "..."
}

// Health is what the checks currently believe about a real server.
type Health int

const (
	// Unknown: no round has finished yet (see the package comment).
	Unknown Health = iota
	Up
	Down
)

func (h Health) String() string {
	switch h {
	case Up:
		return "up"
	case Down:
		return "down"
	default:
		return "unknown"
	}
}
