package ec2fake_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/testwait"
)

const (
	eniA   = "eni-0aaaaaaaaaaaaaaa1"
	eniB   = "eni-0bbbbbbbbbbbbbbb2"
	allocA = "eipalloc-0000000000000001"
)

var vip = netip.MustParseAddr("10.0.1.100")

// pair loads testdata/pair.json: two instances in one subnet, the VIP on B
// with the Elastic IP on it.
func pair(t *testing.T, opt ec2fake.Options) (*ec2fake.Fake, *httptest.Server) {
	t.Helper()
	file, err := os.Open("testdata/pair.json")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	seed, err := ec2fake.LoadSeed(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ec2fake.FromSeed(opt, seed)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func client(srv *httptest.Server, key string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   srv.Client(),
	})
}

func apiCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), status
}

func TestAssignMovesIPAndEIP(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{})
	c := client(srv, "AKIDA")
	ctx := context.Background()
	out, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{vip.String()}, AllowReassignment: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.NetworkInterfaceId) != eniA || len(out.AssignedPrivateIpAddresses) != 1 || aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress) != vip.String() {
		t.Fatalf("unexpected output %+v", out)
	}
	if got := f.Owner(vip); got != eniA {
		t.Fatalf("owner %s, want %s", got, eniA)
	}
	// The Elastic IP follows the private IP, as on EC2.
	if eni, ip := f.Association(allocA); eni != eniA || ip != vip {
		t.Fatalf("EIP on %s/%s, want %s/%s", eni, ip, eniA, vip)
	}
	ni, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ni.NetworkInterfaces) != 1 {
		t.Fatalf("got %d interfaces", len(ni.NetworkInterfaces))
	}
	var ips []string
	for _, p := range ni.NetworkInterfaces[0].PrivateIpAddresses {
		ips = append(ips, aws.ToString(p.PrivateIpAddress))
		if aws.ToString(p.PrivateIpAddress) == vip.String() && (p.Association == nil || aws.ToString(p.Association.AllocationId) != allocA) {
			t.Errorf("VIP without its EIP association: %+v", p.Association)
		}
	}
	if strings.Join(ips, ",") != "10.0.1.11,10.0.1.100" {
		t.Fatalf("private IPs %v", ips)
	}
	if n := f.Reassignments(vip); n != 1 {
		t.Fatalf("reassignments %d, want 1", n)
	}

	// Without AllowReassignment the IP stays where it is.
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniB), PrivateIpAddresses: []string{vip.String()}})
	if code, status := apiCode(t, err); code != "InvalidParameterValue" || status != 400 {
		t.Fatalf("got %s/%d", code, status)
	}
	if f.Owner(vip) != eniA {
		t.Fatal("refused assignment moved the IP")
	}
}

func TestErrorsLikeEC2(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{AccessKeys: []string{"AKIDA", "AKIDB"}})
	c := client(srv, "AKIDA")
	ctx := context.Background()
	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown ENI", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), PrivateIpAddresses: []string{vip.String()}})
			return err
		}, "InvalidNetworkInterfaceID.NotFound", 400},
		{"malformed ENI", func() error {
			_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"i-123"}})
			return err
		}, "InvalidNetworkInterfaceID.Malformed", 400},
		{"unknown allocation", func() error {
			_, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String("eipalloc-0ffffffffffffffff"), NetworkInterfaceId: aws.String(eniA)})
			return err
		}, "InvalidAllocationID.NotFound", 400},
		{"unknown allocation in describe", func() error {
			_, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{"eipalloc-0ffffffffffffffff"}})
			return err
		}, "InvalidAllocationID.NotFound", 400},
		{"outside subnet", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{"10.9.9.9"}})
			return err
		}, "InvalidParameterValue", 400},
		{"reserved", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{"10.0.1.255"}})
			return err
		}, "InvalidParameterValue", 400},
		{"associate to IP not on ENI", func() error {
			_, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(allocA), NetworkInterfaceId: aws.String(eniA), PrivateIpAddress: aws.String(vip.String()), AllowReassociation: aws.Bool(true)})
			return err
		}, "InvalidParameterValue", 400},
		{"already associated", func() error {
			_, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(allocA), NetworkInterfaceId: aws.String(eniA)})
			return err
		}, "Resource.AlreadyAssociated", 400},
		{"unassign foreign", func() error {
			_, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{vip.String()}})
			return err
		}, "InvalidParameterValue", 400},
		{"bad filter", func() error {
			_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("nope"), Values: []string{"x"}}}})
			return err
		}, "InvalidParameterValue", 400},
		{"dry run allowed", func() error {
			_, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation", 412},
		{"wrong credentials", func() error {
			_, err := client(srv, "AKIDX").DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
			return err
		}, "AuthFailure", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, status := apiCode(t, tc.call())
			if code != tc.code || status != tc.status {
				t.Fatalf("got %s/%d, want %s/%d", code, status, tc.code, tc.status)
			}
		})
	}
	if f.Owner(vip) != eniB {
		t.Fatal("a failed call changed the state")
	}
}

func TestDenyThrottleAndFaults(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{})
	a, b := client(srv, "AKIDA"), client(srv, "AKIDB")
	ctx := context.Background()
	assign := func(c *ec2.Client, eni string) error {
		_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{vip.String()}, AllowReassignment: aws.Bool(true)})
		return err
	}

	f.Deny("AKIDA", "AssignPrivateIpAddresses")
	if code, status := apiCode(t, assign(a, eniA)); code != "UnauthorizedOperation" || status != 403 {
		t.Fatalf("denied: %s/%d", code, status)
	}
	if err := assign(b, eniB); err != nil {
		t.Fatalf("B is not denied: %v", err)
	}
	f.Allow("AKIDA", "AssignPrivateIpAddresses")

	f.Throttle("AssignPrivateIpAddresses", 2)
	for i := range 2 {
		if code, status := apiCode(t, assign(a, eniA)); code != "RequestLimitExceeded" || status != 503 {
			t.Fatalf("throttle %d: %s/%d", i, code, status)
		}
	}
	if f.Owner(vip) != eniB {
		t.Fatal("throttled call changed the state")
	}
	if err := assign(a, eniA); err != nil {
		t.Fatalf("after throttling: %v", err)
	}

	// A 500 after the change: the state moved although the caller saw an error.
	f.InjectFault(ec2fake.Fault{Action: "AssignPrivateIpAddresses", Count: 1, AfterCommit: true})
	if code, status := apiCode(t, assign(b, eniB)); code != "InternalError" || status != 500 {
		t.Fatalf("after-commit fault: %s/%d", code, status)
	}
	if f.Owner(vip) != eniB {
		t.Fatal("after-commit fault did not commit")
	}

	// Garbage body: the SDK reports an error, never a result.
	f.InjectFault(ec2fake.Fault{Action: "DescribeAddresses", Status: 200, Body: []byte("<DescribeAddressesResponse><addressesSet><item><publicIp>"), Count: 1})
	if _, err := a.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{}); err == nil {
		t.Fatal("truncated XML accepted")
	}
	if n := f.CountCalls("AssignPrivateIpAddresses", "AKIDA"); n != 4 {
		t.Fatalf("A made %d assign calls, want 4", n)
	}
}

func TestLagShowsOldOwner(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	f, srv := pair(t, ec2fake.Options{Lag: 300 * time.Millisecond, Now: clock})
	c := client(srv, "AKIDA")
	ctx := context.Background()
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{vip.String()}, AllowReassignment: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eip := func() string {
		out, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{allocA}})
		if err != nil || len(out.Addresses) != 1 {
			t.Fatalf("describe addresses: %v %+v", err, out)
		}
		return aws.ToString(out.Addresses[0].NetworkInterfaceId)
	}
	if f.Owner(vip) != eniA || f.VisibleOwner(vip) != eniB || eip() != eniB {
		t.Fatalf("during lag: owner %s visible %s eip %s", f.Owner(vip), f.VisibleOwner(vip), eip())
	}
	now = now.Add(300 * time.Millisecond)
	if f.VisibleOwner(vip) != eniA || eip() != eniA {
		t.Fatalf("after lag: visible %s eip %s", f.VisibleOwner(vip), eip())
	}
}

func TestLatencyAppliesEvenIfClientGivesUp(t *testing.T) {
	f, srv := pair(t, ec2fake.Options{MinLatency: 200 * time.Millisecond, MaxLatency: 200 * time.Millisecond})
	c := client(srv, "AKIDA")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniA), PrivateIpAddresses: []string{vip.String()}, AllowReassignment: aws.Bool(true)})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if time.Since(start) > 190*time.Millisecond {
		t.Fatal("client did not give up at its deadline")
	}
	testwait.Eventually(t, 2*time.Second, "the abandoned request carried out", func() bool { return f.Owner(vip) == eniA })
}

func TestIMDSv2(t *testing.T) {
	f, _ := pair(t, ec2fake.Options{})
	srv := httptest.NewServer(f.IMDS("i-0aaaaaaaaaaaaaaa1"))
	defer srv.Close()

	// IMDSv1 (no token) is refused.
	resp, err := http.Get(srv.URL + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tokenless GET: %d", resp.StatusCode)
	}

	c := imds.New(imds.Options{Endpoint: srv.URL, EnableFallback: aws.FalseTernary})
	ctx := context.Background()
	get := func(path string) string {
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b)
	}
	if got := get("mac"); got != "02:00:00:00:00:a1" {
		t.Fatalf("mac %q", got)
	}
	if got := get("network/interfaces/macs/02:00:00:00:00:a1/interface-id"); got != eniA {
		t.Fatalf("interface-id %q", got)
	}
	doc, err := c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.InstanceID != "i-0aaaaaaaaaaaaaaa1" || doc.Region != "eu-west-1" {
		t.Fatalf("identity %+v", doc.InstanceIdentityDocument)
	}
	if got := get("network/interfaces/macs/02:00:00:00:00:a1/local-ipv4s"); got != "10.0.1.11" {
		t.Fatalf("local-ipv4s before move %q", got)
	}
	if err := f.MoveIP(vip, eniA); err != nil {
		t.Fatal(err)
	}
	if got := get("network/interfaces/macs/02:00:00:00:00:a1/local-ipv4s"); got != "10.0.1.11\n10.0.1.100" {
		t.Fatalf("local-ipv4s after move %q", got)
	}
	if _, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "network/interfaces/macs/02:00:00:00:00:ff/interface-id"}); err == nil {
		t.Fatal("unknown MAC answered")
	}
}

func TestAdminAPI(t *testing.T) {
	f, _ := pair(t, ec2fake.Options{})
	srv := httptest.NewServer(f.Admin())
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("/move", `{"ip":"10.0.1.100","eni":"`+eniA+`"}`); s != http.StatusNoContent {
		t.Fatalf("move: %d", s)
	}
	if f.Owner(vip) != eniA {
		t.Fatal("move did nothing")
	}
	if s := post("/timing", `{"lag":"bogus"}`); s != http.StatusBadRequest {
		t.Fatalf("bad timing accepted: %d", s)
	}
	if s := post("/deny", `{"actions":["DescribeAddresses"]}`); s != http.StatusNoContent {
		t.Fatalf("deny: %d", s)
	}
	api := httptest.NewServer(f)
	defer api.Close()
	_, err := client(api, "AKIDA").DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
	if code, _ := apiCode(t, err); code != "UnauthorizedOperation" {
		t.Fatalf("deny via admin: %s", code)
	}
	resp, err := http.Get(srv.URL + "/state")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"10.0.1.100": "`+eniA+`"`) {
		t.Fatalf("state: %s", b)
	}
}
