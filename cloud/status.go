package cloud

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Status is a snapshot of an EC2 mover for `director state` and metrics.
type Status struct {
	InstanceID, Region, ENI string
	VIPs                    []netip.Addr
	EIPs                    []EIP
	// Holding is true from Take to Release.
	Holding bool
	// Verified is true once EC2 showed every VIP on our ENI during this hold.
	Verified bool
	// MovesInProgress counts Take/Announce calls running now.
	MovesInProgress int
	// Moves counts moves that changed something and were verified;
	// FailedMoves counts moves (and releases) that returned an error.
	Moves, FailedMoves uint64
	// LastMoveDuration is how long the last successful move took, from
	// the start of Take to everything verified.
	LastMoveDuration time.Duration
	LastMoveAt       time.Time
	LastError        string
	LastErrorAt      time.Time
	// APICalls counts EC2 requests; Retries the ones retried after a
	// throttle, 5xx, timeout or garbled answer; Throttles the throttled.
	APICalls, Retries, Throttles uint64
	// PermissionErrors counts calls EC2 refused for lack of permission;
	// Suspended lists the actions the mover will not call again before
	// the time given, and why.
	PermissionErrors uint64
	Suspended        []*PermissionError
	// Contests counts VIPs taken by another ENI while we were master;
	// ContestBackoffUntil is when we will take them back.
	Contests            uint64
	ContestBackoffUntil time.Time
}

// Status returns a snapshot.
func (m *EC2Mover) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.InstanceID, s.Region, s.ENI = m.id.InstanceID, m.id.Region, m.id.ENI
	s.VIPs, s.EIPs = slices.Clone(m.cfg.VIPs), slices.Clone(m.cfg.EIPs)
	s.Holding, s.Verified = m.holding, m.verified
	for _, op := range slices.Sorted(maps.Keys(m.perm)) {
		if pe := m.perm[op]; m.clock.Now().Before(pe.Until) {
			cp := *pe
			s.Suspended = append(s.Suspended, &cp)
		}
	}
	if m.clock.Now().Before(m.contest.until) {
		s.ContestBackoffUntil = m.contest.until
	}
	return s
}

// Preflight checks, without changing anything, what can be checked before
// a failover needs it: our ENI exists and is attached to this instance, the
// Elastic IPs exist, and the credentials may describe both and associate
// the addresses (a DryRun). AssignPrivateIpAddresses,
// UnassignPrivateIpAddresses and their IPv6 counterparts have no DryRun,
// so their permission shows only at the first move. Run it at start-up and log what it returns.
func (m *EC2Mover) Preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.MoveTimeout)
	defer cancel()
	var errs []error
	var ni *ec2.DescribeNetworkInterfacesOutput
	err := m.call(ctx, "DescribeNetworkInterfaces", func(ctx context.Context) error {
		var err error
		ni, err = m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{m.id.ENI}})
		return err
	})
	switch {
	case err != nil:
		errs = append(errs, err)
	case len(ni.NetworkInterfaces) != 1:
		errs = append(errs, fmt.Errorf("ENI %s: EC2 returned %d interfaces", m.id.ENI, len(ni.NetworkInterfaces)))
	default:
		n := ni.NetworkInterfaces[0]
		if n.Attachment == nil || aws.ToString(n.Attachment.InstanceId) != m.id.InstanceID {
			var att string
			if n.Attachment != nil {
				att = aws.ToString(n.Attachment.InstanceId)
			}
			errs = append(errs, fmt.Errorf("ENI %s is attached to %q, not to this instance %s", m.id.ENI, att, m.id.InstanceID))
		}
		m.learnMAC(aws.ToString(n.MacAddress))
	}
	if len(m.cfg.EIPs) > 0 {
		allocs := make([]string, len(m.cfg.EIPs))
		for i, e := range m.cfg.EIPs {
			allocs[i] = e.AllocationID
		}
		err := m.call(ctx, "DescribeAddresses", func(ctx context.Context) error {
			_, err := m.api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: allocs})
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range m.cfg.EIPs {
		err := m.call(ctx, "AssociateAddress", func(ctx context.Context) error {
			_, err := m.api.AssociateAddress(ctx, &ec2.AssociateAddressInput{
				DryRun:             aws.Bool(true),
				AllocationId:       aws.String(e.AllocationID),
				NetworkInterfaceId: aws.String(m.id.ENI),
				PrivateIpAddress:   aws.String(e.PrivateIP.String()),
				AllowReassociation: aws.Bool(true),
			})
			return err
		})
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "DryRunOperation" {
			continue // permitted
		}
		if err == nil {
			err = fmt.Errorf("ec2 AssociateAddress: DryRun request for %s succeeded instead of reporting DryRunOperation", e.AllocationID)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ec2 preflight for %s: %w", m.id.ENI, err)
	}
	return nil
}
