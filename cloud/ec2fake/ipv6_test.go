package ec2fake_test

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/director-lb/director/cloud/ec2fake"
)

// vip6 starts on B in testdata/pair.json; the subnet's IPv6 block is
// 2001:db8:0:1::/64.
var vip6 = netip.MustParseAddr("2001:db8:0:1::100")

func assign6(c *ec2.Client, eni string, ips ...string) (*ec2.AssignIpv6AddressesOutput, error) {
	return c.AssignIpv6Addresses(context.Background(), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(eni), Ipv6Addresses: ips})
}

func unassign6(c *ec2.Client, eni string, ips ...string) (*ec2.UnassignIpv6AddressesOutput, error) {
	return c.UnassignIpv6Addresses(context.Background(), &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(eni), Ipv6Addresses: ips})
}

// ipv6sOf is what DescribeNetworkInterfaces shows on eni.
func ipv6sOf(t *testing.T, c *ec2.Client, eni string) []string {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("describe %s: %v %+v", eni, err, out)
	}
	var got []string
	for _, a := range out.NetworkInterfaces[0].Ipv6Addresses {
		got = append(got, aws.ToString(a.Ipv6Address))
	}
	return got
}

// An IPv6 address moves only by unassigning it from its holder first:
// EC2 has no AllowReassignment for IPv6.
func TestIPv6MovesOnlyAfterUnassign(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{})
	c := client(srv, "AKIDA")

	_, err := assign6(c, eniA, vip6.String())
	if code, status := apiCode(t, err); code != "InvalidParameterValue" || status != 400 {
		t.Fatalf("assign of an address held by B: %s/%d", code, status)
	}
	if f.Owner(vip6) != eniB {
		t.Fatal("refused assignment moved the address")
	}
	_, err = unassign6(c, eniA, vip6.String())
	if code, _ := apiCode(t, err); code != "InvalidParameterValue" {
		t.Fatalf("unassign from an ENI that does not hold it: %s", code)
	}

	un, err := unassign6(c, eniB, vip6.String())
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(un.NetworkInterfaceId) != eniB || !slices.Equal(un.UnassignedIpv6Addresses, []string{vip6.String()}) {
		t.Fatalf("unassign output %+v", un)
	}
	if f.Owner(vip6) != "" {
		t.Fatalf("owner after unassign %q", f.Owner(vip6))
	}
	out, err := assign6(c, eniA, vip6.String())
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.NetworkInterfaceId) != eniA || !slices.Equal(out.AssignedIpv6Addresses, []string{vip6.String()}) {
		t.Fatalf("assign output %+v", out)
	}
	if f.Owner(vip6) != eniA {
		t.Fatalf("owner %q, want %s", f.Owner(vip6), eniA)
	}
	// Assigning it again is a no-op that reports nothing new.
	out, err = assign6(c, eniA, vip6.String())
	if err != nil || len(out.AssignedIpv6Addresses) != 0 {
		t.Fatalf("re-assign: %v %+v", err, out)
	}

	if got := ipv6sOf(t, c, eniA); !slices.Equal(got, []string{vip6.String()}) {
		t.Fatalf("A's IPv6 addresses %v", got)
	}
	if got := ipv6sOf(t, c, eniB); len(got) != 0 {
		t.Fatalf("B's IPv6 addresses %v", got)
	}
	// The IPv4 list is unaffected.
	ni, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ni.NetworkInterfaces[0].PrivateIpAddresses {
		if a := netip.MustParseAddr(aws.ToString(p.PrivateIpAddress)); !a.Is4() {
			t.Fatalf("IPv6 address %s among the private IPv4 addresses", a)
		}
	}
	// The filter finds the holder.
	byAddr, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("ipv6-addresses.ipv6-address"), Values: []string{vip6.String()}}},
	})
	if err != nil || len(byAddr.NetworkInterfaces) != 1 || aws.ToString(byAddr.NetworkInterfaces[0].NetworkInterfaceId) != eniA {
		t.Fatalf("filter by IPv6 address: %v %+v", err, byAddr)
	}
	var moved bool
	for _, call := range f.Calls() {
		if call.Action == "AssignIpv6Addresses" && call.Code == "" && slices.Contains(call.IPs, vip6) {
			moved = true
		}
	}
	if !moved {
		t.Fatal("the call record lacks the IPv6 address")
	}
}

func TestIPv6ErrorsLikeEC2(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{})
	c := client(srv, "AKIDA")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"outside the subnet's IPv6 block", func() error { _, err := assign6(c, eniA, "2001:db8:0:2::100"); return err }, "InvalidParameterValue"},
		{"reserved first addresses", func() error { _, err := assign6(c, eniA, "2001:db8:0:1::3"); return err }, "InvalidParameterValue"},
		{"reserved last address", func() error {
			_, err := assign6(c, eniA, "2001:db8:0:1:ffff:ffff:ffff:ffff")
			return err
		}, "InvalidParameterValue"},
		{"IPv4 address", func() error { _, err := assign6(c, eniA, "10.0.1.100"); return err }, "InvalidParameterValue"},
		{"no address", func() error { _, err := assign6(c, eniA); return err }, "MissingParameter"},
		{"address count", func() error {
			_, err := c.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(eniA), Ipv6AddressCount: aws.Int32(1)})
			return err
		}, "InvalidParameterValue"},
		{"one bad address spoils the request", func() error {
			_, err := assign6(c, eniA, "2001:db8:0:1::200", vip6.String())
			return err
		}, "InvalidParameterValue"},
		{"unknown ENI", func() error { _, err := assign6(c, "eni-0123456789abcdef0", "2001:db8:0:1::200"); return err }, "InvalidNetworkInterfaceID.NotFound"},
		{"unassign an address not there", func() error { _, err := unassign6(c, eniB, "2001:db8:0:1::200"); return err }, "InvalidParameterValue"},
		{"Elastic IP on an IPv6 address", func() error {
			_, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(allocA), NetworkInterfaceId: aws.String(eniB), PrivateIpAddress: aws.String(vip6.String()), AllowReassociation: aws.Bool(true)})
			return err
		}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := apiCode(t, tc.call()); code != tc.code {
				t.Fatalf("got %s, want %s", code, tc.code)
			}
		})
	}
	if f.Owner(netip.MustParseAddr("2001:db8:0:1::200")) != "" || f.Owner(vip6) != eniB {
		t.Fatal("a refused call changed the state")
	}

	// A subnet without an IPv6 block takes no IPv6 address.
	subnet := netip.MustParsePrefix("10.0.1.0/24")
	g, err := ec2fake.New(ec2fake.Options{}, []ec2fake.Instance{{ID: "i-0ccc", ENIs: []ec2fake.ENI{{ID: "eni-0ccc", Subnet: subnet, Primary: netip.MustParseAddr("10.0.1.13")}}}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(g)
	defer gs.Close()
	_, err = assign6(client(gs, "AKIDA"), "eni-0ccc", "2001:db8:0:1::200")
	if code, _ := apiCode(t, err); code != "InvalidParameterValue" {
		t.Fatalf("IPv6 on a subnet without IPv6: %s", code)
	}
	if _, err := ec2fake.New(ec2fake.Options{}, []ec2fake.Instance{{ID: "i-0ccc", ENIs: []ec2fake.ENI{{ID: "eni-0ccc", Subnet: subnet, Primary: netip.MustParseAddr("10.0.1.13")}}}},
		nil, map[netip.Addr]string{vip6: "eni-0ccc"}, nil); err == nil {
		t.Fatal("seeded an IPv6 address on an ENI whose subnet has no IPv6 block")
	}
}

// Reads lag for IPv6 as for IPv4, and the metadata service lists ipv6s
// only while the ENI has one.
func TestIPv6LagAndIMDS(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f, srv := pair(t, ec2fake.Options{Lag: 300 * time.Millisecond, Now: func() time.Time { return now }})
	c := client(srv, "AKIDA")
	meta := httptest.NewServer(f.IMDS("i-0aaaaaaaaaaaaaaa1"))
	defer meta.Close()
	m := imds.New(imds.Options{Endpoint: meta.URL, EnableFallback: aws.FalseTernary})
	const macA = "network/interfaces/macs/02:00:00:00:00:a1/"
	read := func(path string) (string, error) {
		out, err := m.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", err
		}
		defer out.Content.Close()
		b, err := io.ReadAll(out.Content)
		return string(b), err
	}
	if _, err := read(macA + "ipv6s"); err == nil {
		t.Fatal("ipv6s answered for an ENI without IPv6 addresses")
	}
	if got, err := read(macA + "subnet-ipv6-cidr-blocks"); err != nil || got != "2001:db8:0:1::/64" {
		t.Fatalf("subnet-ipv6-cidr-blocks %q %v", got, err)
	}

	if _, err := unassign6(c, eniB, vip6.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := assign6(c, eniA, vip6.String()); err != nil {
		t.Fatal(err)
	}
	if f.Owner(vip6) != eniA || f.VisibleOwner(vip6) != eniB || len(ipv6sOf(t, c, eniA)) != 0 {
		t.Fatalf("during lag: owner %s, visible %s", f.Owner(vip6), f.VisibleOwner(vip6))
	}
	now = now.Add(300 * time.Millisecond)
	if got := ipv6sOf(t, c, eniA); !slices.Equal(got, []string{vip6.String()}) {
		t.Fatalf("after lag: %v", got)
	}
	if got, err := read(macA + "ipv6s"); err != nil || got != vip6.String() {
		t.Fatalf("ipv6s %q %v", got, err)
	}
	if got, err := read(macA); err != nil || !strings.Contains(got, "ipv6s\n") {
		t.Fatalf("listing %q %v", got, err)
	}
	if got, err := read(macA + "local-ipv4s"); err != nil || got != "10.0.1.11" {
		t.Fatalf("local-ipv4s %q %v", got, err)
	}
}
