package cloud

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/testwait"
)

// BenchmarkPromotion measures the time from the start of a promotion to
// the VIPs and Elastic IPs verified on this node, against the fake with a
// realistic 50-200 ms per EC2 call:
//
//   - director: EC2Mover.Take (assignment, then associations and a
//     verification read together, then re-reads until EC2 shows it all);
//   - notify-script: the usual keepalived notify_master recipe, one CLI
//     call after another (unassign from the peer, assign with
//     --allow-reassignment, associate each EIP), then the same
//     verification done the way a script would (describe calls in turn).
//     CLI start-up time (~0.5 s per `aws` invocation) is not counted.
//
// Run: go test -run '^$' -bench Promotion -benchtime 20x ./cloud/
func BenchmarkPromotion(b *testing.B) {
	for _, lag := range []time.Duration{0, 500 * time.Millisecond} {
		for _, eips := range []int{1, 2} {
			for _, script := range []bool{false, true} {
				name := "director"
				if script {
					name = "notify-script"
				}
				b.Run(fmt.Sprintf("lag=%s/eips=%d/%s", lag, eips, name), func(b *testing.B) {
					benchPromotion(b, script, eips, lag, []netip.Addr{vip1, vip2})
				})
			}
		}
	}
}

// BenchmarkPromotionIPv6 is BenchmarkPromotion's director case with an
// IPv6 VIP besides the IPv4 one: its take (locate, unassign on the old
// ENI, assign on ours) runs beside the IPv4 assignment.
//
// Run: go test -run '^$' -bench PromotionIPv6 -benchtime 20x ./cloud/
func BenchmarkPromotionIPv6(b *testing.B) {
	for _, lag := range []time.Duration{0, 500 * time.Millisecond} {
		b.Run(fmt.Sprintf("lag=%s/eips=1/director", lag), func(b *testing.B) {
			benchPromotion(b, false, 1, lag, []netip.Addr{vip1, vip6})
		})
	}
}

func benchPromotion(b *testing.B, script bool, eips int, lag time.Duration, vips []netip.Addr) {
	r := newRegion(b, ec2fake.Options{MinLatency: 50 * time.Millisecond, MaxLatency: 200 * time.Millisecond, Lag: lag})
	cfg := fastConfig()
	cfg.PollInterval = 100 * time.Millisecond
	cfg.RedriveAfter = 2 * time.Second
	cfg.MoveTimeout = 20 * time.Second
	cfg.VIPs = vips
	cfg.EIPs = []EIP{{AllocationID: alloc1}, {AllocationID: alloc2, PrivateIP: vip2}}[:eips]
	// Steady state: B holds everything.
	mb := r.newMover(b, nodeB, cfg, nil)
	if err := mb.Take(context.Background()); err != nil {
		b.Fatal(err)
	}
	ma := r.newMover(b, nodeA, cfg, nil)
	ctx := context.Background()
	var times []time.Duration
	calls := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := ma.Release(ctx); err != nil {
			b.Fatal(err)
		}
		for _, v := range cfg.VIPs {
			if err := r.fake.MoveIP(v, eniB); err != nil {
				b.Fatal(err)
			}
		}
		// Let the reset become visible.
		testwait.Eventually(b, lag+5*time.Second, "the reset visible", func() bool {
			for _, v := range cfg.VIPs {
				if r.fake.VisibleOwner(v) != eniB {
					return false
				}
			}
			return true
		})
		before := len(r.fake.Calls())
		b.StartTimer()
		start := time.Now()
		if script {
			if err := notifyScript(ctx, ma, ma.cfg); err != nil {
				b.Fatal(err)
			}
		} else if err := ma.Take(ctx); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		calls += len(r.fake.Calls()) - before
		if !r.holds(nodeA, cfg) {
			b.Fatal("not held after the promotion")
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "ms-median")
	b.ReportMetric(float64(times[len(times)*9/10].Milliseconds()), "ms-p90")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
}

// notifyScript is the notify-script recipe, through the same client.
func notifyScript(ctx context.Context, m *EC2Mover, cfg EC2Config) error {
	ips := make([]string, len(cfg.VIPs))
	for i, v := range cfg.VIPs {
		ips[i] = v.String()
	}
	if _, err := m.api.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniB), PrivateIpAddresses: ips}); err != nil {
		return err
	}
	if _, err := m.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: ips, AllowReassignment: aws.Bool(true)}); err != nil {
		return err
	}
	for _, e := range cfg.EIPs {
		if _, err := m.api.AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId: aws.String(e.AllocationID), NetworkInterfaceId: aws.String(eniA),
			PrivateIpAddress: aws.String(e.PrivateIP.String()), AllowReassociation: aws.Bool(true),
		}); err != nil {
			return err
		}
	}
	// Verify, one describe after the other, polling like the mover.
	for {
		ni, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA}})
		if err != nil {
			return err
		}
		allocs := make([]string, len(cfg.EIPs))
		for i, e := range cfg.EIPs {
			allocs[i] = e.AllocationID
		}
		ad, err := m.api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: allocs})
		if err != nil {
			return err
		}
		obs := observation{eni: eniA, onENI: map[netip.Addr]bool{}, eips: map[string]eipView{}, eniSeen: len(ni.NetworkInterfaces) == 1}
		for _, n := range ni.NetworkInterfaces {
			for _, p := range n.PrivateIpAddresses {
				if a, err := netip.ParseAddr(aws.ToString(p.PrivateIpAddress)); err == nil {
					obs.onENI[a] = true
				}
			}
		}
		for _, a := range ad.Addresses {
			ip, _ := netip.ParseAddr(aws.ToString(a.PrivateIpAddress))
			obs.eips[aws.ToString(a.AllocationId)] = eipView{eni: aws.ToString(a.NetworkInterfaceId), ip: ip}
		}
		if obs.complete(cfg) {
			return nil
		}
		if err := sleep(ctx, SystemClock{}, cfg.PollInterval); err != nil {
			return err
		}
	}
}
