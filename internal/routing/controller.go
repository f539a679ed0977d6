package routing

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/director-lb/director/internal/config"
)

// Announcer puts routes where the router learns them: a BGP speaker, or a
// kernel routing table a routing daemon exports.
type Announcer interface {
	// Announce makes the announced set exactly routes (an empty set
	// withdraws everything).
	Announce(ctx context.Context, routes []Route) error
	// Configure applies a changed routing section in place where it can
	// (a BGP peer's timers are updated without dropping the others).
	Configure(ctx context.Context, r *config.Routing) error
	// Sessions is each BGP session's state; nil without BGP.
	Sessions() []Session
	// Close withdraws everything and stops.
	Close(ctx context.Context) error
}

// Session is one BGP session as state and metrics show it.
type Session struct {
	Peer  netip.Addr `json:"peer"`
	ASN   uint32     `json:"asn"`
	State string     `json:"state"` // idle, connect, active, opensent, openconfirm, established
	// Since is when the session last became established (zero unless
	// it is).
	Since time.Time `json:"since,omitzero"`
	// PrefixesSent counts the routes announced to the peer now.
	PrefixesSent int `json:"prefixes_sent"`
	// Flaps counts transitions to established since the daemon started.
	Flaps uint64 `json:"flaps"`
	// BFD is the BFD session's state (up, down, init, admin_down), ""
	// without BFD.
	BFD string `json:"bfd,omitempty"`
	// LastError is why the session last went down, if known.
	LastError string `json:"last_error,omitempty"`
}

// Controller keeps an Announcer's routes in step with the decision.
// Update may be called from any goroutine; calls are serialised.
type Controller struct {
	log *slog.Logger
	ann Announcer

	mu       sync.Mutex // serialises Update and guards the fields
	cfg      *config.Routing
	applied  []Route
	ok       bool // applied is what the announcer has
	lastErr  string
	vips     []VIPView
	inputs   Inputs
	changeAt time.Time
}

// NewController drives ann for r.
func NewController(r *config.Routing, ann Announcer, log *slog.Logger) *Controller {
	return &Controller{cfg: r, ann: ann, log: log}
}

// Update decides from in and announces the result if it differs from
// what was announced (or the last attempt failed).
func (c *Controller) Update(ctx context.Context, in Inputs) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inputs = in
	return c.applyLocked(ctx)
}

// SetConfig takes a changed routing section (a reload): the announcer is
// reconfigured and the routes decided anew with the last inputs.
func (c *Controller) SetConfig(ctx context.Context, r *config.Routing) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ann.Configure(ctx, r); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	c.cfg = r
	c.ok = false // announce whole: the announcer may have moved (a new table)
	return c.applyLocked(ctx)
}

func (c *Controller) applyLocked(ctx context.Context) error {
	d := Decide(c.cfg, c.inputs)
	c.vips = d.VIPs
	if c.ok && SameRoutes(d.Routes, c.applied) {
		return nil
	}
	for _, v := range d.VIPs {
		was := slices.ContainsFunc(c.applied, func(r Route) bool { return r.Prefix.Addr() == v.Addr })
		if v.Announced != was || !c.ok {
			c.log.Info("routing: VIP "+map[bool]string{true: "announced", false: "withdrawn"}[v.Announced], "vip", v.Addr, "reason", v.Reason)
		}
	}
	if err := c.ann.Announce(ctx, d.Routes); err != nil {
		c.ok, c.lastErr = false, err.Error()
		return fmt.Errorf("routing: announce: %w", err)
	}
	c.applied, c.ok, c.lastErr = d.Routes, true, ""
	return nil
}

// Retry announces again if the last attempt failed; cheap otherwise.
func (c *Controller) Retry(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok {
		return nil
	}
	return c.applyLocked(ctx)
}

// Status is the controller's view for state.
type Status struct {
	VIPs      []VIPView
	Sessions  []Session
	LastError string
}

// Status returns the VIPs as last decided and the sessions now.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := Status{VIPs: slices.Clone(c.vips), LastError: c.lastErr}
	c.mu.Unlock()
	st.Sessions = c.ann.Sessions()
	return st
}

// Close withdraws everything and stops the announcer.
func (c *Controller) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied, c.ok = nil, false
	return c.ann.Close(ctx)
}
