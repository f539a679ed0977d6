// Package vrrpproc runs the VRRP instances in a child process of the
// daemon, `director vrrp`, as keepalived runs its VRRP child: a process
// that does nothing else is the one the kernel runs first when its timer
// fires, however busy the daemon's dataplane, checks and API are (see
// docs/design/vrrp-under-load.md).
//
// The daemon (Client) and the child (Serve's caller) talk over two pipes,
// file descriptors 3 and 4 of the child, in JSON, one message per line.
// The daemon sends the configuration's text (at start, and on each
// reload), the states of the services and real servers the instances
// track, and requests (state, failover, failback, ping); the child
// answers each request, and reports each instance's mastership as it
// changes and each EC2 call for the metrics. The child logs to the
// standard error it shares with the daemon.
package vrrpproc

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/director-lb/director/internal/control"
)

// ToChild is a message from the daemon: exactly one of its parts is set.
type ToChild struct {
	// ID numbers a request; its reply carries it back. 0 for Tracks.
	ID int64 `json:"id,omitempty"`
	// Config starts the instances, then reloads them.
	Config *ConfigMsg `json:"config,omitempty"`
	// Tracks are the tracked services and real servers (TrackKey): up
	// or not. Sent whole whenever one changes; empty, not absent, when
	// nothing is tracked (so no omitempty).
	Tracks map[string]bool `json:"tracks"`
	// State asks for the instances' and sync groups' state.
	State bool `json:"state,omitempty"`
	// Failover and Failback name an instance ("" for all).
	Failover *string `json:"failover,omitempty"`
	Failback *string `json:"failback,omitempty"`
	// Ping asks whether every socket has its reader and every instance
	// answers (the watchdog's question).
	Ping bool `json:"ping,omitempty"`
}

// ConfigMsg is a configuration file as read: the child parses it as the
// daemon did and runs its VRRP part.
type ConfigMsg struct {
	File string `json:"file"`
	Text []byte `json:"text"`
}

// FromChild is a message from the child: exactly one part is set.
type FromChild struct {
	Reply   *Reply      `json:"reply,omitempty"`
	Master  *MasterMsg  `json:"master,omitempty"`
	EC2Call *EC2CallMsg `json:"ec2_call,omitempty"`
}

// Reply answers request ID: Err is empty on success.
type Reply struct {
	ID         int64                    `json:"id"`
	Err        string                   `json:"err,omitempty"`
	Instances  []control.InstanceState  `json:"instances,omitempty"`
	SyncGroups []control.SyncGroupState `json:"sync_groups,omitempty"`
}

// MasterMsg says whether this node is master of an instance now.
type MasterMsg struct {
	Instance string `json:"instance"`
	Master   bool   `json:"master"`
}

// EC2CallMsg is one EC2 API call, for the daemon's metrics.
type EC2CallMsg struct {
	Op     string        `json:"op"`
	Took   time.Duration `json:"took"`
	Failed bool          `json:"failed,omitempty"`
}

// TrackKey names a tracked service or real server in ToChild.Tracks:
// kind is "service" or "real_server", name as in the configuration.
func TrackKey(kind, name string) string { return kind + " " + name }

// maxLine bounds one message: a configuration of a few megabytes, or the
// state of many instances.
const maxLine = 64 << 20

// DecodeFromChild parses one message from the child and checks that it is
// exactly one thing.
func DecodeFromChild(line []byte) (FromChild, error) {
	var m FromChild
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode: %w", err)
	}
	if n := count(m.Reply != nil, m.Master != nil, m.EC2Call != nil); n != 1 {
		return m, fmt.Errorf("message with %d parts, want 1", n)
	}
	return m, nil
}

// DecodeToChild parses one message from the daemon and checks that it is
// exactly one thing, and that a request has an ID.
func DecodeToChild(line []byte) (ToChild, error) {
	var m ToChild
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("decode: %w", err)
	}
	if n := count(m.Config != nil, m.Tracks != nil, m.State, m.Failover != nil, m.Failback != nil, m.Ping); n != 1 {
		return m, fmt.Errorf("message with %d parts, want 1", n)
	}
	if m.Tracks == nil && m.ID == 0 {
		return m, fmt.Errorf("request without an id")
	}
	return m, nil
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
