// Package syncd starts, stops and reads the kernel's IPVS connection
// synchronisation daemon over generic netlink. With it, the backup director
// learns the master's connections, so established connections survive a
// failover. The messages are package ipvsnl's; this package adds the roles
// and Ensure's policy.
package syncd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/director-lb/director/ipvs/ipvsnl"
)

// Role is the daemon's state: it sends (master) or receives (backup).
type Role uint32

// Kernel values of IP_VS_STATE_*.
const (
	Master Role = 1
	Backup Role = 2
)

func (r Role) String() string {
	switch r {
	case Master:
		return "master"
	case Backup:
		return "backup"
	}
	return fmt.Sprintf("Role(%d)", uint32(r))
}

// Config is one daemon's settings. Zero values take the kernel's defaults
// (group 224.0.0.81, port 8848, TTL 1, max length from the MTU).
type Config struct {
	Role      Role
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Group     netip.Addr
	Port      uint16
	TTL       uint8
}

// Client talks to the IPVS family in the network namespace it was dialled in.
type Client struct {
	c *ipvsnl.Conn
}

// Dial opens a generic netlink socket and resolves the IPVS family; it fails
// when the kernel has no IPVS.
func Dial() (*Client, error) {
	c, err := ipvsnl.Dial()
	if err != nil {
		return nil, fmt.Errorf("IPVS sync daemon client: %w", err)
	}
	return &Client{c: c}, nil
}

// Close closes the socket; running daemons keep running.
func (c *Client) Close() error { return c.c.Close() }

// toNL converts cfg for a start request.
func toNL(cfg Config) ipvsnl.Daemon {
	return ipvsnl.Daemon{State: uint32(cfg.Role), Interface: cfg.Interface, SyncID: uint32(cfg.SyncID),
		MaxLen: cfg.MaxLen, Group: cfg.Group, Port: cfg.Port, TTL: cfg.TTL}
}

// fromNL converts a daemon the kernel lists.
func fromNL(d ipvsnl.Daemon) Config {
	return Config{Role: Role(d.State), Interface: d.Interface, SyncID: uint8(d.SyncID),
		MaxLen: d.MaxLen, Group: d.Group, Port: d.Port, TTL: d.TTL}
}

// Start starts a daemon with cfg. Starting one that already runs in that
// role is an error from the kernel (EEXIST); Ensure avoids it.
func (c *Client) Start(cfg Config) error {
	if cfg.Interface == "" {
		return errors.New("start IPVS sync daemon: no interface")
	}
	if err := c.c.StartDaemon(toNL(cfg)); err != nil {
		return fmt.Errorf("start IPVS sync %s daemon on %s (sync id %d): %w", cfg.Role, cfg.Interface, cfg.SyncID, err)
	}
	return nil
}

// Stop stops the daemon in role; stopping one that is not running is fine.
func (c *Client) Stop(role Role) error {
	err := c.c.StopDaemon(uint32(role))
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop IPVS sync %s daemon: %w", role, err)
	}
	return nil
}

// Running lists the daemons the kernel runs now.
func (c *Client) Running() ([]Config, error) {
	ds, err := c.c.Daemons()
	if err != nil {
		return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
	}
	var out []Config
	for _, d := range ds {
		if d.State != 0 {
			out = append(out, fromNL(d))
		}
	}
	return out, nil
}

// Ensure makes cfgs (at most one per role) exactly the daemons running:
// it stops a role not asked for or running with other settings, and
// leaves an identical running daemon alone, so calling it on every pass is
// cheap (one dump) and idempotent. One config is the pair's usual single
// role; a master and a backup together are routed mode's, where every
// director both sends and receives (the kernel runs both at once).
// changed reports whether it had to start or stop anything, which is also
// how a caller learns that the kernel drifted from what it last set.
func (c *Client) Ensure(cfgs ...Config) (changed bool, err error) {
	running, err := c.Running()
	if err != nil {
		return false, err
	}
	want := map[Role]Config{}
	for _, cfg := range cfgs {
		want[cfg.Role] = cfg
	}
	have := map[Role]bool{}
	for _, r := range running {
		w, ok := want[r.Role]
		if ok && r.Interface == w.Interface && r.SyncID == w.SyncID {
			have[r.Role] = true
			continue
		}
		if err := c.Stop(r.Role); err != nil {
			return true, err
		}
		changed = true
	}
	for _, cfg := range cfgs {
		if have[cfg.Role] {
			continue
		}
		changed = true
		if err := c.Start(cfg); err != nil {
			return true, err
		}
	}
	return changed, nil
}
