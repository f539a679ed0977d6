// Package decisions keeps the operator's runtime decisions (overrides such
// as drain, disable and weight) and real servers' self-registrations. Each
// decision is keyed by (Kind, Target); a newer decision replaces an older
// one (last writer wins), so two directors that exchange their decisions in
// any order end up with the same set. Removals are kept as tombstones so
// that they, too, win over older decisions arriving from the peer.
package decisions

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Kind is what a decision is about.
type Kind string

// Kinds of decision.
const (
	KindOverride     Kind = "override"
	KindRegistration Kind = "registration"
)

// Action is what was decided.
type Action string

// Actions. Enable and Deregister are tombstones: they record that an
// earlier decision was withdrawn.
const (
	ActionDrain      Action = "drain"
	ActionDisable    Action = "disable"
	ActionWeight     Action = "weight"
	ActionEnable     Action = "enable"
	ActionRegister   Action = "register"
	ActionDeregister Action = "deregister"
)

// MaxWeight is the largest IPVS weight.
const MaxWeight = 65535

// Limits on free-form fields, so a hostile or broken peer cannot make us
// keep arbitrarily large strings. Service and node names are of the
// configuration's alphabet, which JSON never escapes: an entry's encoded
// size is bounded (MaxEncodedSize).
const (
	maxTarget = 300
	maxNode   = 255
)

var (
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	nodeRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)
)

// Decision is one runtime decision.
type Decision struct {
	Kind   Kind   `json:"kind"`
	Target string `json:"target"` // "SVC/ADDR:PORT" or "ADDR:PORT" (registrations always SVC/ADDR:PORT)
	Action Action `json:"action"`
	Weight int    `json:"weight,omitempty"`
	// At is when it was decided (wall clock): the last writer wins.
	At time.Time `json:"at"`
	// Node is who decided; on equal At the greater Node wins.
	Node string `json:"node"`
}

// Tombstone reports whether the decision withdraws an earlier one.
func (d Decision) Tombstone() bool {
	return d.Action == ActionEnable || d.Action == ActionDeregister
}

// Validate checks the decision is well formed.
func (d Decision) Validate() error {
	_, err := d.normalize()
	return err
}

// normalize validates d and returns it in canonical form (target address
// as netip prints it, At in UTC without monotonic reading), so equal
// decisions compare and key equally wherever they were made.
func (d Decision) normalize() (Decision, error) {
	switch d.Kind {
	case KindOverride:
		switch d.Action {
		case ActionDrain, ActionDisable, ActionWeight, ActionEnable:
		default:
			return d, fmt.Errorf("decision %s %q: action %q is not drain, disable, weight or enable", d.Kind, d.Target, d.Action)
		}
	case KindRegistration:
		switch d.Action {
		case ActionRegister, ActionDeregister:
		default:
			return d, fmt.Errorf("decision %s %q: action %q is not register or deregister", d.Kind, d.Target, d.Action)
		}
	default:
		return d, fmt.Errorf("decision %q: kind %q is not override or registration", d.Target, d.Kind)
	}
	target, err := canonicalTarget(d.Target, d.Kind == KindRegistration)
	if err != nil {
		return d, fmt.Errorf("decision %s: %w", d.Kind, err)
	}
	d.Target = target
	switch {
	case d.Action == ActionWeight || d.Action == ActionRegister:
		if d.Weight < 0 || d.Weight > MaxWeight {
			return d, fmt.Errorf("decision %s %s: weight %d is not 0-%d", d.Kind, d.Target, d.Weight, MaxWeight)
		}
	case d.Weight != 0:
		return d, fmt.Errorf("decision %s %s: action %s takes no weight (got %d)", d.Kind, d.Target, d.Action, d.Weight)
	}
	if d.At.IsZero() {
		return d, fmt.Errorf("decision %s %s: no time", d.Kind, d.Target)
	}
	if !nodeRE.MatchString(d.Node) {
		return d, fmt.Errorf("decision %s %s: node name must be 1-%d letters, digits, '_', '.' or '-'", d.Kind, d.Target, maxNode)
	}
	d.At = d.At.UTC()
	return d, nil
}

// canonicalTarget parses "SVC/ADDR:PORT" or "ADDR:PORT". The service is
// everything before the last slash, as an address never contains one. The
// limits apply to the canonical form, which is what is stored: netip may
// spell an address longer than it was given ("1::3:4:5:6:7:8" becomes
// "1:0:3:4:5:6:7:8"), and a stored target must pass the check it passed.
func canonicalTarget(s string, needService bool) (string, error) {
	if len(s) > maxTarget {
		return "", fmt.Errorf("target longer than %d bytes", maxTarget)
	}
	svc, addr := "", s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		svc, addr = s[:i], s[i+1:]
		if svc == "" {
			return "", fmt.Errorf("target %q: empty service name", s)
		}
		if !serviceRE.MatchString(svc) {
			return "", fmt.Errorf("target %q: service name must be 1-64 letters, digits, '_', '.' or '-'", s)
		}
	}
	if needService && svc == "" {
		return "", fmt.Errorf("target %q: want SERVICE/ADDRESS:PORT", s)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", fmt.Errorf("target %q: want ADDRESS:PORT or SERVICE/ADDRESS:PORT", s)
	}
	if ap.Addr().Zone() != "" {
		return "", fmt.Errorf("target %q: an address with a zone is no real server", s)
	}
	out := ap.String()
	if svc != "" {
		out = svc + "/" + out
	}
	if len(out) > maxTarget {
		return "", fmt.Errorf("target %q: longer than %d bytes as %q", s, maxTarget, out)
	}
	return out, nil
}

// newer reports whether a replaces b under last-writer-wins. Ties beyond
// At and Node (one node deciding twice in the same nanosecond) are broken
// by content so that every node picks the same winner.
func newer(a, b Decision) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	if a.Node != b.Node {
		return a.Node > b.Node
	}
	if a.Action != b.Action {
		return a.Action > b.Action
	}
	return a.Weight > b.Weight
}

type key struct {
	kind   Kind
	target string
}

func keyOf(d Decision) key { return key{d.Kind, d.Target} }
