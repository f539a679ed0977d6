// Package hooks runs operators' notify commands without ever holding up
// the caller: Enqueue only appends to a bounded per-object queue. Commands
// for one object (an instance, a group, a service, a real server) run one
// at a time in order; different objects run in parallel. Each command runs
// in its own process group with a minimal environment and a timeout that
// kills the whole group. FIFO writes keepalived's notify_fifo lines
// without blocking.
package hooks
