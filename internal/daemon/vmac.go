package daemon

import (
	"fmt"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/vip"
)

// VMACLink is an instance's virtual-MAC interface; *vip.VMAC implements it.
type VMACLink interface {
	Remove() error
}

// vmacKey is what makes two instances' VMACs the same interface.
type vmacKey struct {
	name, parent string
	vrid         uint8
	ipv6, keep6  bool
}

// vmacUse counts the instances using one VMAC: a reload prepares the new
// instance before it stops the old one, and both use the same interface.
type vmacUse struct {
	link  VMACLink
	users int
}

// acquireVMAC creates or adopts ic's VMAC interface, or counts one more
// user of it, and returns the function that gives it back; the last user
// removes it.
func (d *Daemon) acquireVMAC(ic *config.Instance) (release func(), err error) {
	k := vmacKey{name: ic.VMACName, parent: ic.Interface, vrid: uint8(ic.VRID), ipv6: ic.Family() == 6}
	for _, p := range ic.Placed {
		if p.Dev == ic.VMACName && p.Prefix.Addr().Is6() {
			k.keep6 = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.vmacs == nil {
		d.vmacs = map[vmacKey]*vmacUse{}
	}
	u, ok := d.vmacs[k]
	if !ok {
		if d.edges.EnsureVMAC == nil {
			return nil, fmt.Errorf("VMAC %s: not supported here", k.name)
		}
		link, err := d.edges.EnsureVMAC(vip.VMACConfig{
			Name: k.name, Parent: k.parent, VRID: k.vrid, IPv6: k.ipv6, KeepIPv6: k.keep6,
			Logger: d.log.With("instance", ic.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("VMAC %s: %w", k.name, err)
		}
		u = &vmacUse{link: link}
		d.vmacs[k] = u
	}
	u.users++
	return func() {
		d.mu.Lock()
		u.users--
		last := u.users == 0
		if last {
			delete(d.vmacs, k)
		}
		d.mu.Unlock()
		if last {
			if err := u.link.Remove(); err != nil {
				d.log.Warn("remove VMAC interface", "vmac", k.name, "err", err)
			}
		}
	}, nil
}
