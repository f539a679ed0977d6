package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/director-lb/director/cloud"
)

// EC2 moves an instance's VIPs with the EC2 API: ENI secondary private
// IPv4 addresses, IPv6 addresses and Elastic IP associations, instead of
// gratuitous ARP alone.
type EC2 struct {
	Region            string            `yaml:"region,omitempty"`
	InstanceID        string            `yaml:"instance_id,omitempty"`
	ENI               string            `yaml:"eni,omitempty"`
	AllocationIDs     []string          `yaml:"allocation_ids,omitempty"`
	ElasticIPs        map[string]string `yaml:"elastic_ips,omitempty"`
	UnassignOnRelease bool              `yaml:"unassign_on_release,omitempty"`
	// MoveExcluded moves the instance's vips_excluded through EC2 too, such
	// as the IPv6 addresses of a dual-stack pair whose adverts are IPv4.
	// Off by default: excluded addresses may be local ones EC2 knows
	// nothing of.
	MoveExcluded      bool     `yaml:"move_excluded,omitempty"`
	Endpoint          string   `yaml:"endpoint,omitempty"`
	IMDSEndpoint      string   `yaml:"imds_endpoint,omitempty"`
	CallTimeout       Duration `yaml:"call_timeout,omitempty"`
	MoveTimeout       Duration `yaml:"move_timeout,omitempty"`
	PollInterval      Duration `yaml:"poll_interval,omitempty"`
	RedriveAfter      Duration `yaml:"redrive_after,omitempty"`
	RetryBase         Duration `yaml:"retry_base,omitempty"`
	RetryMax          Duration `yaml:"retry_max,omitempty"`
	PermissionBackoff Duration `yaml:"permission_backoff,omitempty"`
	ContestBackoff    Duration `yaml:"contest_backoff,omitempty"`
	ContestBackoffMax Duration `yaml:"contest_backoff_max,omitempty"`
	ContestWindow     Duration `yaml:"contest_window,omitempty"`
	Recheck           Duration `yaml:"recheck,omitempty"`

	Cloud cloud.EC2Config `yaml:"-"`
}

// ec2 validates an instance's ec2 block and builds the mover's config.
func (c *checker) ec2(f string, in *Instance) {
	e := in.EC2
	if in.Unicast == nil {
		c.errf(f, "EC2 has no multicast: configure unicast peers for this instance")
	}
	cc := cloud.EC2Config{
		Region: e.Region, InstanceID: e.InstanceID, ENI: e.ENI, Interface: in.Interface,
		Endpoint: e.Endpoint, IMDSEndpoint: e.IMDSEndpoint, UnassignOnRelease: e.UnassignOnRelease,
		CallTimeout: e.CallTimeout.D(), MoveTimeout: e.MoveTimeout.D(), PollInterval: e.PollInterval.D(),
		RedriveAfter: e.RedriveAfter.D(), RetryBase: e.RetryBase.D(), RetryMax: e.RetryMax.D(),
		PermissionBackoff: e.PermissionBackoff.D(), ContestBackoff: e.ContestBackoff.D(),
		ContestBackoffMax: e.ContestBackoffMax.D(), ContestWindow: e.ContestWindow.D(), Recheck: e.Recheck.D(),
	}
	for _, p := range in.Addresses {
		cc.VIPs = append(cc.VIPs, p.Addr())
	}
	if e.MoveExcluded {
		if len(in.VIPsExcluded) == 0 {
			c.errf(f+".move_excluded", "this instance has no vips_excluded to move")
		}
		for j, s := range in.VIPsExcluded {
			p, dev, err := parseVIP(s)
			if err != nil {
				continue // reported under vips_excluded
			}
			// The mover moves addresses to the ENI of the instance's
			// interface; another device is another ENI (or not one).
			if dev != "" && dev != in.Interface {
				c.errf(fmt.Sprintf("%s.move_excluded", f), "vips_excluded[%d] %s is on %s, but EC2 moves addresses to the ENI of %s only", j, p.Addr(), dev, in.Interface)
				continue
			}
			cc.VIPs = append(cc.VIPs, p.Addr())
		}
	}
	for _, id := range e.AllocationIDs {
		cc.EIPs = append(cc.EIPs, cloud.EIP{AllocationID: id})
	}
	ids := make([]string, 0, len(e.ElasticIPs))
	for id := range e.ElasticIPs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ip, err := netip.ParseAddr(e.ElasticIPs[id])
		if err != nil {
			c.errf(fmt.Sprintf("%s.elastic_ips.%s", f, id), "%q is not an IP address", e.ElasticIPs[id])
			continue
		}
		cc.EIPs = append(cc.EIPs, cloud.EIP{AllocationID: id, PrivateIP: ip})
	}
	if err := cc.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			c.errf(f, "%s", line)
		}
		return
	}
	e.Cloud = cc
}
