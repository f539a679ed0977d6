package cloud

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/director-lb/director/cloud/ec2fake"
)

// flakyClient is an aws.HTTPClient that answers the first request with a
// fuzzed status and body and passes the rest to a real handler (the fake):
// garbage once, then sanity, like a proxy hiccup.
type flakyClient struct {
	status int
	body   []byte
	next   http.Handler

	mu   sync.Mutex
	used bool
}

func (c *flakyClient) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	first := !c.used
	c.used = true
	c.mu.Unlock()
	if first {
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
		return &http.Response{
			StatusCode: c.status,
			Status:     http.StatusText(c.status),
			Header:     http.Header{"Content-Type": {"text/xml"}},
			Body:       io.NopCloser(bytes.NewReader(c.body)),
			Request:    req,
		}, nil
	}
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// FuzzResponseHandling feeds one malformed answer to each of the mover's
// decoding paths: the EC2 calls of a Take and the metadata reads of
// discovery. The SDK parses; the mover must come out with a clean,
// classified error or, after a retry, success, and never panic.
func FuzzResponseHandling(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, ""},
		{200, "<"},
		{200, "not xml at all"},
		{200, `<DescribeNetworkInterfacesResponse><networkInterfaceSet><item><networkInterfaceId>eni-0aaaaaaaaaaaaaaa1</networkInterfaceId><privateIpAddressesSet><item><privateIpAddress>10.0.1.100.7</privateIpAddress></item></privateIpAddressesSet></item></networkInterfaceSet></DescribeNetworkInterfacesResponse>`},
		{200, `<DescribeAddressesResponse><addressesSet><item><allocationId></allocationId><privateIpAddress>::1</privateIpAddress></item><item/></addressesSet></DescribeAddressesResponse>`},
		{200, `<AssignPrivateIpAddressesResponse><assignedPrivateIpAddressesSet><item><privateIpAddress>`},
		{200, `<DescribeNetworkInterfacesResponse><networkInterfaceSet><item><networkInterfaceId>eni-0bbbbbbbbbbbbbbb2</networkInterfaceId><ipv6AddressesSet><item><ipv6Address>2001:db8:0:1::100%eth0</ipv6Address></item><item><ipv6Address>10.0.1.100</ipv6Address></item></ipv6AddressesSet></item></networkInterfaceSet></DescribeNetworkInterfacesResponse>`},
		{200, `<DescribeNetworkInterfacesResponse><networkInterfaceSet><item><ipv6AddressesSet><item><ipv6Address>2001:db8:0:1::100</ipv6Address></item></ipv6AddressesSet></item></networkInterfaceSet></DescribeNetworkInterfacesResponse>`},
		{200, `<AssignIpv6AddressesResponse><assignedIpv6Addresses><item>`},
		{400, `<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>Address 2001:db8:0:1::100 is already assigned</Message></Error></Errors></Response>`},
		{200, `{"instanceId": 7, "region": ["x"]}`},
		{200, `{"instanceId":"i-0aaaaaaaaaaaaaaa1","region":"eu-west-1"}`},
		{200, "\xff\xfe\x00<\x00a\x00>"},
		{400, `<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors></Response>`},
		{400, `<Response><Errors><Error><Code>InvalidNetworkInterfaceID.NotFound</Code></Error></Errors></Response>`},
		{503, `<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>`},
		{500, `<Response><Errors><Error><Code>`},
		{502, "<html><body><h1>502 Bad Gateway</h1></body></html>"},
		{401, ""},
		{404, "{}"},
		{301, ""},
	}
	for _, s := range seeds {
		for path := range uint8(4) {
			f.Add(path, s.status, []byte(s.body))
		}
	}
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, path uint8, status int, body []byte) {
	{
		if status < 100 || status > 599 {
			status = 200 + status&0xff%400
			if status < 100 || status > 599 {
				status = 500
			}
		}
		r := newFakeRegion(t, ec2fake.Options{})
		// Quick timings: a garbled "success" costs a redrive, not seconds.
		cfg := fastConfig()
		cfg.MoveTimeout = 2 * time.Second
		cfg.PollInterval = time.Millisecond
		cfg.RedriveAfter = 10 * time.Millisecond
		cfg.RetryBase, cfg.RetryMax = time.Millisecond, 5*time.Millisecond
		cfg.PermissionBackoff = time.Minute
		switch path % 4 {
		case 0, 1, 3:
			// A whole Take, the garbage landing on its first EC2 call.
			// path 1 starts from a verified hold, so the garbage hits a
			// Describe call instead of the assignment. path 3 moves IPv6
			// VIPs too, so it may hit the locate read, the unassignment
			// from the other ENI or the IPv6 assignment.
			client := &flakyClient{status: status, body: body, next: r.fake}
			if path%4 == 1 {
				client.used = true
			}
			if path%4 == 3 {
				cfg.VIPs = []netip.Addr{vip6, vip1, vip7}
			}
			api := ec2.New(ec2.Options{
				Region: "eu-west-1", BaseEndpoint: aws.String("http://ec2.invalid"),
				Credentials: staticCreds(keyA), Retryer: aws.NopRetryer{}, HTTPClient: client,
			})
			m, err := NewWithClients(cfg, Identity{InstanceID: instA, Region: "eu-west-1", ENI: eniA}, api, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if path%4 == 1 {
				if err := m.Take(context.Background()); err != nil {
					t.Fatalf("clean Take: %v", err)
				}
				client.mu.Lock()
				client.used = false
				client.mu.Unlock()
				// Force a read first.
				if err := m.Announce(context.Background()); err != nil {
					checkCleanError(t, err)
				}
				return
			}
			if err := m.Take(context.Background()); err != nil {
				checkCleanError(t, err)
				return
			}
			if !r.holds(nodeA, cfg) {
				t.Fatalf("Take succeeded but EC2 does not show it (status %d, body %q)", status, body)
			}
		case 2:
			// Discovery, the garbage landing on the token or a metadata read.
			client := &flakyClient{status: status, body: body, next: r.fake.IMDS(instA)}
			meta := imds.New(imds.Options{
				Endpoint: "http://169.254.169.254", EnableFallback: aws.FalseTernary, HTTPClient: client,
				Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = retry.NewExponentialJitterBackoff(10 * time.Millisecond) }),
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			id, err := Discover(ctx, meta, EC2Config{}, nil)
			if err != nil {
				return // any error is clean here: New refuses to start
			}
			if id.InstanceID != instA || id.ENI != eniA || id.Region != "eu-west-1" {
				t.Fatalf("discovery accepted a wrong identity %+v (status %d, body %q)", id, status, body)
			}
		}
	}
}

// checkCleanError accepts only errors the mover documents.
func checkCleanError(t *testing.T, err error) {
	t.Helper()
	var pe *PermissionError
	var ae *APIError
	switch {
	case errors.As(err, &pe):
		if pe.Op == "" || pe.Code == "" {
			t.Fatalf("permission error without op or code: %v", err)
		}
	case errors.As(err, &ae):
		if ae.Op == "" || !strings.HasPrefix(err.Error(), "ec2 ") {
			t.Fatalf("unlabelled API error: %v", err)
		}
		if ae.Kind != KindNotFound && ae.Kind != KindInvalid && ae.Kind != KindCanceled {
			t.Fatalf("a %s error was not retried: %v", ae.Kind, err)
		}
	default:
		t.Fatalf("unclassified error: %v", err)
	}
}
