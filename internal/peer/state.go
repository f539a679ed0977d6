// Package peer keeps the two directors of a pair in step: each one posts
// its state (node name, configuration hash, runtime decisions) to the
// other over mutual TLS (or, by explicit choice, plain HTTP) with a shared
// token, and merges what it gets back, so after a failover the new master
// honours the decisions made on the old one.
package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/director-lb/director/internal/decisions"
)

// MaxStateSize bounds a State on the wire.
const MaxStateSize = 4 << 20

const (
	maxNode = 255
	maxHash = 128
)

// State is what one director tells the other.
type State struct {
	Node       string               `json:"node"`
	ConfigHash string               `json:"config_hash"`
	Decisions  []decisions.Decision `json:"decisions"`
}

// Decode reads a State strictly: unknown fields, trailing data and bodies
// over MaxStateSize are errors. The decisions themselves are validated
// when merged, so that one bad entry does not block the others.
func Decode(r io.Reader) (State, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return State{}, fmt.Errorf("read peer state: %w", err)
	}
	if len(b) > MaxStateSize {
		return State{}, fmt.Errorf("peer state larger than %d bytes", MaxStateSize)
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("decode peer state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return State{}, errors.New("decode peer state: data after the JSON object")
	}
	if st.Node == "" || len(st.Node) > maxNode {
		return State{}, fmt.Errorf("peer state: node name must be 1-%d bytes", maxNode)
	}
	if len(st.ConfigHash) > maxHash {
		return State{}, fmt.Errorf("peer state: config_hash longer than %d characters", maxHash)
	}
	for _, c := range []byte(st.ConfigHash) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return State{}, fmt.Errorf("peer state: config_hash %q is not hexadecimal", st.ConfigHash)
		}
	}
	return st, nil
}
