// Package syncd starts, stops and reads the kernel's IPVS connection
// synchronisation daemon over generic netlink. With it, the backup director
// learns the master's connections, so established connections survive a
// failover. github.com/cloudflare/ipvs has no call for it, so this speaks the
// IPVS generic-netlink family (include/uapi/linux/ip_vs.h) directly.
package syncd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
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

const (
	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	attrDaemon = 3

	daemonState   = 1
	daemonIfn     = 2
	daemonSyncID  = 3
	daemonMaxLen  = 4
	daemonGroup   = 5
	daemonGroup6  = 6
	daemonPort    = 7
	daemonTTL     = 8
	familyName    = "IPVS"
	familyVersion = 1
)

// Client talks to the IPVS family in the network namespace it was dialled in.
type Client struct {
	c      *genetlink.Conn
	family genetlink.Family
}

// Dial opens a generic netlink socket and resolves the IPVS family; it fails
// when the kernel has no IPVS.
func Dial() (*Client, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("dial generic netlink: %w", err)
	}
	f, err := c.GetFamily(familyName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("IPVS generic netlink family (is ip_vs loaded?): %w", err)
	}
	return &Client{c: c, family: f}, nil
}

// Close closes the socket; running daemons keep running.
func (c *Client) Close() error { return c.c.Close() }

// encode builds the nested daemon attribute.
func encode(cfg Config, full bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	var err error
	ae.Nested(attrDaemon, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(daemonState, uint32(cfg.Role))
		if !full {
			return nil
		}
		nae.String(daemonIfn, cfg.Interface)
		nae.Uint32(daemonSyncID, uint32(cfg.SyncID))
		if cfg.MaxLen != 0 {
			nae.Uint16(daemonMaxLen, cfg.MaxLen)
		}
		if cfg.Group.IsValid() {
			if cfg.Group.Is4() {
				b := cfg.Group.As4()
				nae.Bytes(daemonGroup, b[:])
			} else {
				b := cfg.Group.As16()
				nae.Bytes(daemonGroup6, b[:])
			}
		}
		if cfg.Port != 0 {
			nae.Uint16(daemonPort, cfg.Port)
		}
		if cfg.TTL != 0 {
			nae.Uint8(daemonTTL, cfg.TTL)
		}
		return nil
	})
	b, e := ae.Encode()
	if e != nil {
		err = e
	}
	return b, err
}

func (c *Client) do(cmd uint8, attrs []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	req := genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: c.family.Version},
		Data:   attrs,
	}
	return c.c.Execute(req, c.family.ID, flags)
}

// Start starts a daemon with cfg. Starting one that already runs in that
// role is an error from the kernel (EEXIST); Ensure avoids it.
func (c *Client) Start(cfg Config) error {
	if cfg.Interface == "" {
		return errors.New("start IPVS sync daemon: no interface")
	}
	b, err := encode(cfg, true)
	if err != nil {
		return err
	}
	if _, err := c.do(cmdNewDaemon, b, netlink.Request|netlink.Acknowledge); err != nil {
		return fmt.Errorf("start IPVS sync %s daemon on %s (sync id %d): %w", cfg.Role, cfg.Interface, cfg.SyncID, err)
	}
	return nil
}

// Stop stops the daemon in role; stopping one that is not running is fine.
func (c *Client) Stop(role Role) error {
	b, err := encode(Config{Role: role}, false)
	if err != nil {
		return err
	}
	if _, err := c.do(cmdDelDaemon, b, netlink.Request|netlink.Acknowledge); err != nil && !errors.Is(err, os.ErrNotExist) && !isESRCH(err) {
		return fmt.Errorf("stop IPVS sync %s daemon: %w", role, err)
	}
	return nil
}

// Running lists the daemons the kernel runs now.
func (c *Client) Running() ([]Config, error) {
	msgs, err := c.do(cmdGetDaemon, nil, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
	}
	var out []Config
	for _, m := range msgs {
		cfg, err := decode(m.Data)
		if err != nil {
			return nil, err
		}
		if cfg.Role != 0 {
			out = append(out, cfg)
		}
	}
	return out, nil
}

// decode reads one GET_DAEMON reply.
func decode(b []byte) (Config, error) {
	var cfg Config
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return cfg, fmt.Errorf("decode IPVS daemon reply: %w", err)
	}
	for ad.Next() {
		if ad.Type() != attrDaemon {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonState:
					cfg.Role = Role(nad.Uint32())
				case daemonIfn:
					cfg.Interface = nad.String()
				case daemonSyncID:
					cfg.SyncID = uint8(nad.Uint32())
				case daemonMaxLen:
					cfg.MaxLen = nad.Uint16()
				case daemonGroup:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok {
						cfg.Group = a
					}
				case daemonGroup6:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok && !a.IsUnspecified() && !cfg.Group.IsValid() {
						cfg.Group = a
					}
				case daemonPort:
					cfg.Port = nad.Uint16()
				case daemonTTL:
					cfg.TTL = nad.Uint8()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return cfg, fmt.Errorf("decode IPVS daemon reply: %w", err)
	}
	return cfg, nil
}

// Ensure makes role the only daemon running, with cfg's settings: it stops
// the other role, and leaves an identical running daemon alone, so calling
// it on every pass is cheap (one dump) and idempotent. changed reports
// whether it had to start or stop anything, which is also how a caller
// learns that the kernel drifted from what it last set.
func (c *Client) Ensure(cfg Config) (changed bool, err error) {
	running, err := c.Running()
	if err != nil {
		return false, err
	}
	other := Master
	if cfg.Role == Master {
		other = Backup
	}
	have := false
	for _, r := range running {
		switch r.Role {
		case other:
			if err := c.Stop(other); err != nil {
				return true, err
			}
			changed = true
		case cfg.Role:
			if r.Interface == cfg.Interface && r.SyncID == cfg.SyncID {
				have = true
			} else if err := c.Stop(cfg.Role); err != nil {
				return true, err
			} else {
				changed = true
			}
		}
	}
	if have {
		return changed, nil
	}
	return true, c.Start(cfg)
}

// isESRCH reports the kernel's "no such process": no daemon in that role.
func isESRCH(err error) bool {
	var oe *netlink.OpError
	return errors.As(err, &oe) && errors.Is(oe.Err, syscall.ESRCH)
}
