package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/director-lb/director/vrrp"
)

// EC2Mover moves a VRRP instance's VIPs on EC2: the VIPs are secondary
// private IPs reassigned to this instance's ENI, the Elastic IPs are
// re-associated with them, and a composed local mover adds the VIPs to the
// interface. Calls are serialised; all are safe from any goroutine.
type EC2Mover struct {
	cfg   EC2Config
	api   EC2API
	meta  MetadataAPI
	local vrrp.Mover
	log   *slog.Logger
	clock Clock

	// opMu serialises moves, including the background recheck.
	opMu sync.Mutex

	mu       sync.Mutex // guards everything below
	id       Identity
	holding  bool // between Take and Release
	verified bool // every VIP seen on our ENI since the hold began
	contest  contestState
	perm     map[string]*PermissionError // per action, while its calls are suspended
	st       Status

	recheckStop context.CancelFunc
	recheckDone chan struct{}
}

// NewWithClients returns a mover using ready clients and a resolved
// identity (New does the discovery). meta and local may be nil: without
// meta the metadata service's local-ipv4s is not checked; without local no
// address is added on the host.
func NewWithClients(cfg EC2Config, id Identity, api EC2API, meta MetadataAPI, local vrrp.Mover, log *slog.Logger) (*EC2Mover, error) {
	return newWithClients(cfg, id, api, meta, local, log, nil)
}

// newWithClients is NewWithClients on clock (nil: the system clock).
func newWithClients(cfg EC2Config, id Identity, api EC2API, meta MetadataAPI, local vrrp.Mover, log *slog.Logger, clock Clock) (*EC2Mover, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("ec2 mover: %w", err)
	}
	if id.ENI == "" {
		return nil, errors.New("ec2 mover: no ENI")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if clock == nil {
		clock = SystemClock{}
	}
	m := &EC2Mover{
		cfg: cfg, api: api, meta: meta, local: local, id: id, clock: clock,
		log: log.With("eni", id.ENI, "vips", cfg.VIPs),
	}
	return m, nil
}

// Identity returns the instance, region and ENI the mover works for.
func (m *EC2Mover) Identity() Identity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Take makes this node the holder: it adds the VIPs locally, reassigns
// them to our ENI, re-associates the Elastic IPs, and returns once EC2
// shows all of it (or ctx or Config.MoveTimeout ends). A cancelled Take
// stops at once and leaves whatever requests were in flight to EC2.
func (m *EC2Mover) Take(ctx context.Context) error {
	m.stopRecheck()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if !m.holding {
		m.holding, m.verified, m.contest = true, false, contestState{}
	}
	// Act before looking unless the VIPs were seen on our ENI during this
	// hold: on a promotion they are almost always elsewhere, and a read
	// first would only add a round trip.
	optimistic := !m.verified
	m.mu.Unlock()
	err := m.move(ctx, "take", optimistic, func(ctx context.Context) error { return m.local.Take(ctx) })
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up: mastership flipped mid-move. A failed Take
		// counts as not taken, so no Release may follow; undo the local
		// step here. What reached EC2 stays for the next master to override.
		m.mu.Lock()
		m.holding, m.verified = false, false
		m.mu.Unlock()
		if m.local != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.CallTimeout)
			defer cancel()
			if rerr := m.local.Release(rctx); rerr != nil {
				err = errors.Join(err, fmt.Errorf("undo local addresses: %w", rerr))
			}
		}
	}
	return err
}

// Quiet stops the local announcements and the background recheck and
// keeps everything else, for a master that stepped down and holds the VIPs
// until its successor has them (see vip.Local.Quiet): the successor is
// moving them to its ENI, and a recheck would take them back. Take or
// Announce starts both again.
func (m *EC2Mover) Quiet() {
	m.stopRecheck()
	if q, ok := m.local.(interface{ Quiet() }); ok {
		q.Quiet()
	}
}

// Announce re-asserts the hold (VRRP calls it on split-brain repair): it
// verifies that the VIPs and EIPs are still ours and takes back what is
// not, after a backoff if another ENI took it while we were master.
func (m *EC2Mover) Announce(ctx context.Context) error {
	m.mu.Lock()
	holding := m.holding
	m.mu.Unlock()
	if !holding {
		return m.Take(ctx)
	}
	m.stopRecheck()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.move(ctx, "announce", false, func(ctx context.Context) error { return m.local.Announce(ctx) })
}

// Release stops holding: the local addresses go at once; with
// UnassignOnRelease the VIPs are also unassigned from our ENI (which
// disassociates their EIPs), otherwise they stay for the next master to
// take, so that nothing is unreachable in between.
func (m *EC2Mover) Release(ctx context.Context) error {
	m.stopRecheck()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	m.holding, m.verified, m.contest = false, false, contestState{}
	m.mu.Unlock()
	var errs []error
	if m.local != nil {
		if err := m.local.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("release local addresses: %w", err))
		}
	}
	if m.cfg.UnassignOnRelease {
		errs = append(errs, m.unassign(ctx))
	}
	err := errors.Join(errs...)
	if err != nil {
		m.noteError(err)
	}
	return err
}

// Close stops the background recheck. It does not release anything.
func (m *EC2Mover) Close() error {
	m.stopRecheck()
	return nil
}

// move runs one Take or Announce: the local step first (it is instant and
// lets IPVS accept the VIPs' packets the moment the VPC delivers them),
// then the EC2 side.
func (m *EC2Mover) move(ctx context.Context, what string, optimistic bool, local func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.MoveTimeout)
	defer cancel()
	start := m.clock.Now()
	m.mu.Lock()
	m.st.MovesInProgress++
	m.mu.Unlock()

	var localErr error
	if m.local != nil {
		if err := local(ctx); err != nil {
			localErr = fmt.Errorf("%s local addresses: %w", what, err)
		}
	}
	acted, err := m.converge(ctx, optimistic)
	err = errors.Join(err, localErr)
	end := m.clock.Now()
	took := end.Sub(start)

	m.mu.Lock()
	m.st.MovesInProgress--
	if err == nil && acted {
		m.st.Moves++
		m.st.LastMoveDuration = took
		m.st.LastMoveAt = end
	}
	m.mu.Unlock()
	if err != nil {
		m.noteError(err)
		if errors.Is(err, context.Canceled) {
			// VRRP changed its mind (or is stopping): not a fault.
			m.log.Info("EC2 VIP move cancelled", "op", what, "after", took)
		} else {
			m.log.Warn("EC2 VIP move incomplete", "op", what, "after", took, "err", err)
		}
		return err
	}
	if acted {
		m.log.Info("VIPs and Elastic IPs verified on this ENI", "op", what, "took", took)
	}
	if m.cfg.Recheck > 0 {
		m.startRecheck()
	}
	return nil
}

func (m *EC2Mover) noteError(err error) {
	m.mu.Lock()
	m.st.LastError = err.Error()
	m.st.LastErrorAt = m.clock.Now()
	m.st.FailedMoves++
	m.mu.Unlock()
}

// converge drives EC2 towards "every VIP on our ENI, every EIP on its VIP"
// and returns once a read confirms it. acted reports whether it had to
// send any change. The decisions are the plan's (convergence); this loop
// only makes the calls and supplies the time.
func (m *EC2Mover) converge(ctx context.Context, optimistic bool) (acted bool, err error) {
	c, r := newConvergence(m.cfg, optimistic, m.wasVerified())
	// What the last read showed and where the last take found the IPv6
	// VIPs: a move that runs out of time says what was still missing.
	var last observation
	holders := map[netip.Addr]string{}
	defer func() {
		if errors.Is(err, context.DeadlineExceeded) && last.eniSeen {
			if miss := last.describeMissing(m.cfg, holders); miss != "" {
				err = fmt.Errorf("%w; still missing: %s", err, miss)
			}
		}
	}()
	for {
		if r.taking() {
			if err := m.waitContest(ctx); err != nil {
				return c.acted, err
			}
			refused, err := m.take(ctx, r.take, holders)
			if err != nil {
				return c.acted, err
			}
			now := m.clock.Now()
			for f := range r.take {
				if r.take[f] {
					c = c.took(now, family(f), refused[f] != nil)
				}
			}
			if refused[fam6] != nil {
				m.log.Info("EC2 refused the IPv6 VIPs for now; retrying shortly", "err", refused[fam6])
			}
		}

		// The associations and a verification read go out together:
		// after a reassignment the EIP usually moved with the private IP
		// already, and then the read confirms it without waiting.
		assocErrs := make([]error, len(r.associate))
		var wg sync.WaitGroup
		for i, e := range r.associate {
			wg.Go(func() { assocErrs[i] = m.associate(ctx, e) })
		}
		obs, obsErr := m.observe(ctx)
		wg.Wait()
		for i, err := range assocErrs {
			if err != nil && !isFatal(err) {
				// A failed write is worth an operator's attention even when a
				// retry fixes it: it is where a stuck move starts.
				m.log.Warn("Elastic IP association failed; will retry", "allocation", r.associate[i].AllocationID,
					"want", fmt.Sprintf("%s on %s", r.associate[i].PrivateIP, m.id.ENI), "err", err)
			}
		}
		if obsErr == nil {
			last = obs
		}

		var v verdict
		c, v = c.observed(m.clock.Now(), r.associate, assocErrs, obs, obsErr)
		if v.verified {
			m.setVerified()
		}
		if v.contested != nil {
			m.contested(v.contested)
		}
		if v.redrive > 0 {
			m.log.Info("VIP assignment still not visible; sending it again", "missing", obs.missingVIPs(m.cfg), "after", v.redrive.Round(time.Millisecond))
		}
		if v.done {
			if v.err == nil && v.ignored != nil {
				m.log.Warn("EC2 state is as wanted although a call failed", "err", v.ignored)
			}
			return c.acted, v.err
		}
		if v.wait > 0 {
			if err := sleep(ctx, m.clock, v.wait); err != nil {
				return c.acted, fmt.Errorf("verify VIPs on %s: %w", m.id.ENI, err)
			}
		}
		r = v.next
	}
}

// isFatal reports errors that a retry within this move cannot cure.
func isFatal(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Kind == KindNotFound || ae.Kind == KindCanceled
	}
	var pe *PermissionError
	return errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// take moves the VIPs of the families asked for to our ENI: the IPv4 ones
// with one AssignPrivateIpAddresses, and in parallel the IPv6 ones with
// take6's calls (locate, unassign elsewhere, assign here). holders gets
// where the locate found the IPv6 VIPs. refused[fam6] is EC2 refusing the
// IPv6 assignment as things stand (still assigned elsewhere), which the
// plan retries; err is anything else, which ends the move.
func (m *EC2Mover) take(ctx context.Context, families [2]bool, holders map[netip.Addr]string) (refused [2]error, err error) {
	var errs [2]error
	var wg sync.WaitGroup
	if families[fam4] {
		wg.Go(func() { errs[fam4] = m.assign4(ctx) })
	}
	if families[fam6] {
		wg.Go(func() { refused[fam6], errs[fam6] = m.take6(ctx, holders) })
	}
	wg.Wait()
	return refused, errors.Join(errs[fam4], errs[fam6])
}

func (m *EC2Mover) assign4(ctx context.Context) error {
	vips := m.cfg.vipsOf(false)
	ips := make([]string, len(vips))
	for i, v := range vips {
		ips[i] = v.String()
	}
	return m.call(ctx, "AssignPrivateIpAddresses", func(ctx context.Context) error {
		_, err := m.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(m.id.ENI),
			PrivateIpAddresses: ips,
			AllowReassignment:  aws.Bool(true),
		})
		return err
	})
}

// take6 moves the IPv6 VIPs to our ENI. EC2 has no AllowReassignment for
// IPv6, so it finds the ENIs holding them, unassigns them there (in
// parallel, one call per ENI), then assigns the lot to ours. It updates
// holders with what the locate showed.
func (m *EC2Mover) take6(ctx context.Context, holders map[netip.Addr]string) (refused, err error) {
	vips := m.cfg.vipsOf(true)
	found, err := m.locate6(ctx, vips)
	if err != nil {
		return nil, err
	}
	for _, v := range vips {
		holders[v] = found[v]
	}
	free, assign := take6(m.id.ENI, vips, found)
	errs := make([]error, 0, len(free))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for eni, ips := range free {
		wg.Go(func() {
			err := m.unassign6(ctx, eni, ips)
			var ae *APIError
			if errors.As(err, &ae) && ae.Kind == KindInvalid {
				// "not assigned to interface": it left that ENI since the
				// locate; the assignment below tells whether it is free.
				m.log.Debug("IPv6 VIP no longer on the other ENI", "eni", eni, "vips", ips, "err", err)
				err = nil
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%w (freeing %v on %s)", err, ips, eni))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(assign) == 0 {
		return nil, nil
	}
	err = m.call(ctx, "AssignIpv6Addresses", func(ctx context.Context) error {
		_, err := m.api.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{
			NetworkInterfaceId: aws.String(m.id.ENI),
			Ipv6Addresses:      addrStrings(assign),
		})
		return err
	})
	var ae *APIError
	if errors.As(err, &ae) && ae.Kind == KindInvalid {
		// Still assigned elsewhere (the peer took it back, or EC2 has not
		// yet freed it), or the subnet refuses it: the plan retries
		// shortly and the move's deadline bounds it.
		return fmt.Errorf("%w (assigning %v to %s)", err, assign, m.id.ENI), nil
	}
	return nil, err
}

// locate6 finds the ENIs that hold the IPv6 VIPs now (absent: nobody).
func (m *EC2Mover) locate6(ctx context.Context, vips []netip.Addr) (map[netip.Addr]string, error) {
	var out *ec2.DescribeNetworkInterfacesOutput
	err := m.call(ctx, "DescribeNetworkInterfaces", func(ctx context.Context) error {
		var err error
		out, err = m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
			Filters: []ec2types.Filter{{Name: aws.String("ipv6-addresses.ipv6-address"), Values: addrStrings(vips)}},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	found := map[netip.Addr]string{}
	for _, ni := range out.NetworkInterfaces {
		id := aws.ToString(ni.NetworkInterfaceId)
		for _, a := range ni.Ipv6Addresses {
			if ip, err := netip.ParseAddr(aws.ToString(a.Ipv6Address)); err == nil && want[ip] && id != "" {
				found[ip] = id
			}
		}
	}
	return found, nil
}

func (m *EC2Mover) unassign6(ctx context.Context, eni string, ips []netip.Addr) error {
	return m.call(ctx, "UnassignIpv6Addresses", func(ctx context.Context) error {
		_, err := m.api.UnassignIpv6Addresses(ctx, &ec2.UnassignIpv6AddressesInput{
			NetworkInterfaceId: aws.String(eni),
			Ipv6Addresses:      addrStrings(ips),
		})
		return err
	})
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func (m *EC2Mover) associate(ctx context.Context, e EIP) error {
	return m.call(ctx, "AssociateAddress", func(ctx context.Context) error {
		_, err := m.api.AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId:       aws.String(e.AllocationID),
			NetworkInterfaceId: aws.String(m.id.ENI),
			PrivateIpAddress:   aws.String(e.PrivateIP.String()),
			AllowReassociation: aws.Bool(true),
		})
		return err
	})
}

// unassign removes the VIPs from our ENI, one by one so that a VIP the next
// master already took does not spoil the others.
func (m *EC2Mover) unassign(ctx context.Context) error {
	var errs []error
	for _, v := range m.cfg.VIPs {
		var err error
		if v.Is4() {
			err = m.call(ctx, "UnassignPrivateIpAddresses", func(ctx context.Context) error {
				_, err := m.api.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
					NetworkInterfaceId: aws.String(m.id.ENI),
					PrivateIpAddresses: []string{v.String()},
				})
				return err
			})
		} else {
			err = m.unassign6(ctx, m.id.ENI, []netip.Addr{v})
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Kind == KindInvalid {
			// "not assigned to interface": someone else holds it already.
			m.log.Debug("VIP was no longer on our ENI", "vip", v, "err", err)
			continue
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// observation is one verification read of EC2 (and the metadata service).
type observation struct {
	eni      string              // our ENI
	eniSeen  bool                // Describe listed it
	onENI    map[netip.Addr]bool // private IPv4 and IPv6 addresses Describe shows on it
	eips     map[string]eipView  // allocation ID → where it points
	imdsSeen [2]bool             // local-ipv4s / ipv6s was read
	imdsIPs  map[netip.Addr]bool // the addresses they listed
}

type eipView struct {
	eni string
	ip  netip.Addr
}

// complete reports whether everything is where it should be. The metadata
// service only counts when it answered: it confirms the remapping reached
// the instance, but an unreachable IMDS must not block a failover.
func (o observation) complete(cfg EC2Config) bool {
	if !o.eniSeen || len(o.missingVIPs(cfg)) > 0 {
		return false
	}
	for _, v := range cfg.VIPs {
		if o.imdsSeen[familyOf(v)] && !o.imdsIPs[v] {
			return false
		}
	}
	for _, e := range cfg.EIPs {
		if !o.eipOK(e) {
			return false
		}
	}
	return true
}

// missingVIPs lists the VIPs Describe positively shows absent from our ENI;
// a read that did not list the ENI proves nothing.
func (o observation) missingVIPs(cfg EC2Config) []netip.Addr {
	if !o.eniSeen {
		return nil
	}
	var out []netip.Addr
	for _, v := range cfg.VIPs {
		if !o.onENI[v] {
			out = append(out, v)
		}
	}
	return out
}

// eipOK reports whether e points at our ENI and its VIP.
func (o observation) eipOK(e EIP) bool {
	v, ok := o.eips[e.AllocationID]
	return ok && v.eni == o.eni && v.ip == e.PrivateIP
}

// describeMissing says, for an error, what is not yet where it should be
// and where it is instead: VIPs missing from our ENI (with the ENI the
// last take found an IPv6 one on, from holders), VIPs the metadata service
// does not list yet, and Elastic IPs pointing elsewhere. "" if nothing.
func (o observation) describeMissing(cfg EC2Config, holders map[netip.Addr]string) string {
	var parts []string
	for _, v := range o.missingVIPs(cfg) {
		switch h := holders[v]; {
		case h != "" && h != o.eni:
			parts = append(parts, fmt.Sprintf("%s not on %s (last seen on %s)", v, o.eni, h))
		default:
			parts = append(parts, fmt.Sprintf("%s not on %s", v, o.eni))
		}
	}
	if len(parts) == 0 {
		for _, v := range cfg.VIPs {
			if o.imdsSeen[familyOf(v)] && !o.imdsIPs[v] {
				parts = append(parts, fmt.Sprintf("%s not yet listed by the metadata service", v))
			}
		}
	}
	for _, e := range cfg.EIPs {
		if o.eipOK(e) {
			continue
		}
		switch v, ok := o.eips[e.AllocationID]; {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s not listed by DescribeAddresses", e.AllocationID))
		case v.eni == "":
			parts = append(parts, fmt.Sprintf("%s not associated (want %s on %s)", e.AllocationID, e.PrivateIP, o.eni))
		default:
			parts = append(parts, fmt.Sprintf("%s points at %s on %s (want %s on %s)", e.AllocationID, v.ip, v.eni, e.PrivateIP, o.eni))
		}
	}
	return strings.Join(parts, "; ")
}

// observe reads our ENI, the Elastic IPs and the metadata service's view
// of our ENI in parallel.
func (m *EC2Mover) observe(ctx context.Context) (observation, error) {
	obs := observation{eni: m.id.ENI, onENI: map[netip.Addr]bool{}, eips: map[string]eipView{}, imdsIPs: map[netip.Addr]bool{}}
	var niOut *ec2.DescribeNetworkInterfacesOutput
	var addrOut *ec2.DescribeAddressesOutput
	var niErr, addrErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		niErr = m.call(ctx, "DescribeNetworkInterfaces", func(ctx context.Context) error {
			var err error
			niOut, err = m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{m.id.ENI}})
			return err
		})
	})
	if len(m.cfg.EIPs) > 0 {
		allocs := make([]string, len(m.cfg.EIPs))
		for i, e := range m.cfg.EIPs {
			allocs[i] = e.AllocationID
		}
		wg.Go(func() {
			addrErr = m.call(ctx, "DescribeAddresses", func(ctx context.Context) error {
				var err error
				addrOut, err = m.api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: allocs})
				return err
			})
		})
	}
	m.mu.Lock()
	mac := m.id.MAC
	m.mu.Unlock()
	// The metadata service lists the ENI's IPv4 addresses under
	// local-ipv4s and its IPv6 ones under ipv6s.
	var imdsList [2]string
	imdsErr := [2]error{errors.New("not read"), errors.New("not read")}
	if m.meta != nil && mac != "" {
		for f, key := range [2]string{"local-ipv4s", "ipv6s"} {
			if len(m.cfg.vipsOf(f == int(fam6))) == 0 {
				continue
			}
			wg.Go(func() {
				ictx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
				defer cancel()
				imdsList[f], imdsErr[f] = readMetadata(ictx, m.meta, "network/interfaces/macs/"+mac+"/"+key)
				var missing *metadataMissingError
				if f == int(fam6) && errors.As(imdsErr[f], &missing) {
					// IMDS omits ipv6s while the ENI has no IPv6 address.
					imdsList[f], imdsErr[f] = "", nil
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(niErr, addrErr); err != nil {
		return obs, err
	}
	if niOut != nil {
		for _, ni := range niOut.NetworkInterfaces {
			if aws.ToString(ni.NetworkInterfaceId) != m.id.ENI {
				continue
			}
			obs.eniSeen = true
			for _, p := range ni.PrivateIpAddresses {
				if a, err := netip.ParseAddr(aws.ToString(p.PrivateIpAddress)); err == nil {
					obs.onENI[a] = true
				}
			}
			for _, p := range ni.Ipv6Addresses {
				if a, err := netip.ParseAddr(aws.ToString(p.Ipv6Address)); err == nil {
					obs.onENI[a] = true
				}
			}
			m.learnMAC(aws.ToString(ni.MacAddress))
		}
	}
	if addrOut != nil {
		for _, a := range addrOut.Addresses {
			id := aws.ToString(a.AllocationId)
			if id == "" {
				continue
			}
			ip, _ := netip.ParseAddr(aws.ToString(a.PrivateIpAddress))
			obs.eips[id] = eipView{eni: aws.ToString(a.NetworkInterfaceId), ip: ip}
		}
	}
	for f := range imdsErr {
		switch {
		case imdsErr[f] == nil:
			obs.imdsSeen[f] = true
			maps.Copy(obs.imdsIPs, parseAddrList(imdsList[f]))
		case mac != "" && m.meta != nil && len(m.cfg.vipsOf(f == int(fam6))) > 0:
			m.log.Debug("could not read the ENI's addresses from IMDS; relying on EC2 alone", "family", family(f), "err", imdsErr[f])
		}
	}
	return obs, nil
}

// learnMAC records our ENI's MAC from Describe when the configuration named
// the ENI directly, so that the metadata service can confirm remaps too.
func (m *EC2Mover) learnMAC(mac string) {
	if mac == "" {
		return
	}
	m.mu.Lock()
	if m.id.MAC == "" {
		m.id.MAC = mac
	}
	m.mu.Unlock()
}

func (m *EC2Mover) setVerified() {
	m.mu.Lock()
	if m.holding {
		m.verified = true
	}
	m.mu.Unlock()
}

func (m *EC2Mover) wasVerified() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.verified
}

// contested records that another ENI took VIPs from us while we are
// master, and sets the backoff before we take them back: exponential in
// the number of recent contests, so that two nodes that both believe they
// are master (a partition of the VRRP path while both reach the EC2 API)
// do not flip the VIP back and forth at API speed. VRRP settles it.
func (m *EC2Mover) contested(missing []netip.Addr) {
	m.mu.Lock()
	var d time.Duration
	m.contest, d = m.contest.contest(m.clock.Now(), m.cfg, func(d time.Duration) time.Duration { return rand.N(d/4 + 1) })
	m.verified = false
	m.st.Contests++
	streak := m.contest.streak
	m.mu.Unlock()
	m.log.Warn("another network interface took the VIP while this node is master (split brain or a manual move); backing off before taking it back",
		"missing", missing, "backoff", d.Round(time.Millisecond), "recent_contests", streak)
}

// waitContest waits out a contest backoff, or fails at once if it outlasts
// ctx: the caller (the VRRP mover worker) retries later.
func (m *EC2Mover) waitContest(ctx context.Context) error {
	m.mu.Lock()
	c := m.contest
	m.mu.Unlock()
	wait, ok := c.wait(m.clock.Now(), timeLeft(ctx))
	if !ok {
		return fmt.Errorf("%w until %s", ErrContestBackoff, c.until.Format(time.TimeOnly+".000"))
	}
	if wait <= 0 {
		return nil
	}
	if err := sleep(ctx, m.clock, wait); err != nil {
		return fmt.Errorf("%w: %w", ErrContestBackoff, err)
	}
	return nil
}

// call sends one EC2 request with a per-call timeout, retrying throttled,
// failed (5xx), unanswered and garbled requests with exponential backoff
// and jitter until ctx ends. A permission error suspends calls for op for
// PermissionBackoff.
func (m *EC2Mover) call(ctx context.Context, op string, do func(context.Context) error) error {
	backoff := m.cfg.RetryBase
	for attempt := 1; ; attempt++ {
		if err := m.suspended(op); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
		err := do(cctx)
		cancel()
		m.mu.Lock()
		m.st.APICalls++
		m.mu.Unlock()
		if err == nil {
			return nil
		}
		kind, code := Classify(ctx, err)
		switch kind {
		case KindCanceled:
			return &APIError{Op: op, Kind: kind, Err: fmt.Errorf("%w (during: %v)", ctx.Err(), err)}
		case KindPermission:
			return m.suspend(op, code, err)
		case KindNotFound, KindInvalid:
			return &APIError{Op: op, Kind: kind, Code: code, Err: err}
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		m.mu.Lock()
		m.st.Retries++
		if kind == KindThrottle {
			m.st.Throttles++
		}
		m.mu.Unlock()
		m.log.Warn("EC2 call failed; retrying", "op", op, "kind", kind.String(), "code", code, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", err)
		if serr := sleep(ctx, m.clock, wait); serr != nil {
			return &APIError{Op: op, Kind: KindCanceled, Code: code, Err: fmt.Errorf("%w (last error: %v)", serr, err)}
		}
		backoff = min(2*backoff, m.cfg.RetryMax)
	}
}

// suspended returns the permission error while calls for op are
// suspended. Suspension is per action: a policy lacking AssociateAddress
// must not stop AssignPrivateIpAddresses, which moves the EIP along anyway.
func (m *EC2Mover) suspended(op string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	pe, ok := m.perm[op]
	if !ok {
		return nil
	}
	if m.clock.Now().After(pe.Until) {
		delete(m.perm, op)
		return nil
	}
	cp := *pe
	return &cp
}

// suspend records a permission error and stops API calls for a while.
func (m *EC2Mover) suspend(op, code string, err error) error {
	pe := &PermissionError{Op: op, Code: code, Message: apiMessage(err), Until: m.clock.Now().Add(m.cfg.PermissionBackoff), Err: err}
	m.mu.Lock()
	if m.perm == nil {
		m.perm = map[string]*PermissionError{}
	}
	m.perm[op] = pe
	m.st.PermissionErrors++
	m.mu.Unlock()
	m.log.Error("EC2 refused a call for lack of permission; fix the instance role's IAM policy", "op", op, "code", code, "message", pe.Message, "next_attempt", pe.Until.Format(time.TimeOnly))
	cp := *pe
	return &cp
}

// startRecheck starts the background verification if it is not running.
func (m *EC2Mover) startRecheck() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recheckStop != nil || !m.holding {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.recheckStop, m.recheckDone = cancel, done
	go func() {
		defer close(done)
		for {
			if sleep(ctx, m.clock, m.cfg.Recheck) != nil {
				return
			}
			m.recheck(ctx)
		}
	}()
}

// stopRecheck stops the background verification and waits for it. It must
// not be called with opMu held.
func (m *EC2Mover) stopRecheck() {
	m.mu.Lock()
	stop, done := m.recheckStop, m.recheckDone
	m.recheckStop, m.recheckDone = nil, nil
	m.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// recheck verifies and repairs the hold once.
func (m *EC2Mover) recheck(ctx context.Context) {
	// A move in progress verifies anyway.
	if !m.opMu.TryLock() {
		return
	}
	defer m.opMu.Unlock()
	m.mu.Lock()
	holding, backoff := m.holding, m.clock.Now().Before(m.contest.until)
	m.mu.Unlock()
	// During a contest backoff there is nothing to do but wait; the
	// first tick after it takes the VIPs back.
	if !holding || backoff {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.MoveTimeout)
	defer cancel()
	start := m.clock.Now()
	acted, err := m.converge(ctx, false)
	switch {
	case errors.Is(err, ErrContestBackoff):
		m.log.Debug("background VIP check backs off", "err", err)
	case err != nil && ctx.Err() == nil:
		m.noteError(err)
		m.log.Warn("background VIP check failed", "err", err)
	case err == nil && acted:
		end := m.clock.Now()
		m.mu.Lock()
		m.st.Moves++
		m.st.LastMoveDuration = end.Sub(start)
		m.st.LastMoveAt = end
		m.mu.Unlock()
		m.log.Info("background check repaired the VIPs", "took", end.Sub(start))
	}
}
