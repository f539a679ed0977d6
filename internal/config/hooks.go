package config

import (
	"fmt"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Hook defaults: keepalived's script timeout, and a queue deep enough for
// any burst of real state changes while a slow hook runs.
const (
	DefaultHookTimeout = 30 * time.Second
	DefaultHookQueue   = 64
)

// Command is an executable and its arguments, run without a shell. In YAML
// it is a list (argv), or a single string, taken whole as the path of an
// executable with no arguments (as notify: is).
type Command []string

// UnmarshalYAML accepts a list of strings or one string.
func (c *Command) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = Command{n.Value}
		return nil
	case yaml.SequenceNode:
		var argv []string
		if err := n.Decode(&argv); err != nil {
			return err
		}
		*c = argv
		return nil
	}
	return fmt.Errorf("line %d: want a command: a path, or a list like [/usr/local/bin/hook, arg]", n.Line)
}

// StateHooks are the commands run when a VRRP instance (or a sync group,
// which embeds it too) changes state, with keepalived's conventions: Notify
// gets INSTANCE|GROUP <name> <STATE> <priority>, the per-state ones get no
// added arguments. For one change the per-state command runs before Notify.
type StateHooks struct {
	// Notify is an executable run on every state change with the arguments
	// INSTANCE <name> <STATE> <priority>, like keepalived's notify script.
	Notify       string  `yaml:"notify,omitempty"`
	NotifyMaster Command `yaml:"notify_master,omitempty"`
	NotifyBackup Command `yaml:"notify_backup,omitempty"`
	NotifyFault  Command `yaml:"notify_fault,omitempty"`
	NotifyStop   Command `yaml:"notify_stop,omitempty"`
}

// ForState returns the per-state command for a keepalived state word
// (MASTER, BACKUP, FAULT, STOP), or nil.
func (h *StateHooks) ForState(state string) Command {
	switch state {
	case "MASTER":
		return h.NotifyMaster
	case "BACKUP":
		return h.NotifyBackup
	case "FAULT":
		return h.NotifyFault
	case "STOP":
		return h.NotifyStop
	}
	return nil
}

// Hooks tunes how notify commands run.
type Hooks struct {
	// Timeout bounds one command; past it its whole process group is
	// killed (default 30s, keepalived's script timeout).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Queue is how many commands may wait per instance, group, service or
	// real server while one runs; past it the oldest waiting is dropped
	// (default 64).
	Queue int `yaml:"queue,omitempty"`
}

// hooks checks and defaults the top-level hook settings.
func (c *checker) hooks(cfg *Config) {
	h := &cfg.Hooks
	if h.Timeout == 0 {
		h.Timeout = Duration(DefaultHookTimeout)
	} else if h.Timeout.D() < 10*time.Millisecond || h.Timeout.D() > time.Hour {
		c.errf("hooks.timeout", "must be 10ms-1h, got %s", h.Timeout.D())
	}
	if c.set("hooks.queue") && (h.Queue < 1 || h.Queue > 10000) {
		c.errf("hooks.queue", "must be 1-10000, got %d", h.Queue)
	}
	if h.Queue == 0 {
		h.Queue = DefaultHookQueue
	}
	if cfg.NotifyFIFO != "" && !filepath.IsAbs(cfg.NotifyFIFO) {
		c.errf("notify_fifo", "%q must be an absolute path", cfg.NotifyFIFO)
	}
	if cfg.RTPriority < 0 || cfg.RTPriority > 99 {
		c.errf("rt_priority", "must be 0 (off) or 1-99, got %d", cfg.RTPriority)
	}
}

// stateHooks checks one instance's or group's state hooks; f is its field path.
func (c *checker) stateHooks(f string, h *StateHooks) {
	if h.Notify != "" && !filepath.IsAbs(h.Notify) {
		c.errf(f+".notify", "%q must be an absolute path", h.Notify)
	}
	c.command(f+".notify_master", h.NotifyMaster)
	c.command(f+".notify_backup", h.NotifyBackup)
	c.command(f+".notify_fault", h.NotifyFault)
	c.command(f+".notify_stop", h.NotifyStop)
}

// command checks an argv: the executable is an absolute path, since hooks
// run with a minimal PATH and no shell.
func (c *checker) command(f string, cmd Command) {
	if cmd == nil {
		return
	}
	switch {
	case len(cmd) == 0 || cmd[0] == "":
		c.errf(f, "the command is empty")
	case !filepath.IsAbs(cmd[0]):
		c.errf(f, "%q must be an absolute path (hooks run without a shell)", cmd[0])
	}
}
