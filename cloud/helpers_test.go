package cloud

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/director-lb/director/cloud/ec2fake"
	"github.com/director-lb/director/internal/vip"
	"github.com/director-lb/director/vrrp"
)

// The test region: two instances in one subnet, like a director pair.
const (
	instA, instB = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"
	eniA, eniB   = "eni-0aaaaaaaaaaaaaaa1", "eni-0bbbbbbbbbbbbbbb2"
	macA, macB   = "02:00:00:00:00:a1", "02:00:00:00:00:b2"
	alloc1       = "eipalloc-0000000000000001"
	alloc2       = "eipalloc-0000000000000002"
	keyA, keyB   = "AKIDAAAAAAAAAAAAAAAA", "AKIDBBBBBBBBBBBBBBBB"
)

var (
	vip1 = netip.MustParseAddr("10.0.1.100")
	vip2 = netip.MustParseAddr("10.0.1.101")
	// vip6 and vip7 are IPv6 VIPs of the subnet's IPv6 block.
	vip6 = netip.MustParseAddr("2001:db8:0:1::100")
	vip7 = netip.MustParseAddr("2001:db8:0:1::101")
)

// region is a fake EC2 region served over HTTP with one IMDS per instance.
type region struct {
	fake *ec2fake.Fake
	api  *httptest.Server
	imds map[string]*httptest.Server // instance ID → its metadata service

	mu       sync.Mutex
	arrivals []arrival // every EC2 request as it arrived
}

type arrival struct {
	at   time.Time
	call ec2fake.Call
}

// newRegion starts a region where the VIPs (vip1, vip2, and the IPv6
// vip6, vip7) sit on B's ENI, the first Elastic IP on vip1 and the second
// unassociated: the state after B was master.
func newRegion(t testing.TB, opt ec2fake.Options) *region {
	t.Helper()
	r := newFakeRegion(t, opt)
	r.api = httptest.NewServer(r.fake)
	t.Cleanup(r.api.Close)
	for _, id := range []string{instA, instB} {
		s := httptest.NewServer(r.fake.IMDS(id))
		t.Cleanup(s.Close)
		r.imds[id] = s
	}
	return r
}

// newFakeRegion is newRegion without HTTP servers.
func newFakeRegion(t testing.TB, opt ec2fake.Options) *region {
	t.Helper()
	subnet, subnet6 := netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("2001:db8:0:1::/64")
	instances := []ec2fake.Instance{
		{ID: instA, Region: "eu-west-1", ENIs: []ec2fake.ENI{{ID: eniA, MAC: macA, SubnetID: "subnet-01", VPCID: "vpc-01", Subnet: subnet, Subnet6: subnet6, Primary: netip.MustParseAddr("10.0.1.11")}}},
		{ID: instB, Region: "eu-west-1", ENIs: []ec2fake.ENI{{ID: eniB, MAC: macB, SubnetID: "subnet-01", VPCID: "vpc-01", Subnet: subnet, Subnet6: subnet6, Primary: netip.MustParseAddr("10.0.1.12")}}},
	}
	addrs := []ec2fake.Address{
		{AllocationID: alloc1, PublicIP: netip.MustParseAddr("203.0.113.10")},
		{AllocationID: alloc2, PublicIP: netip.MustParseAddr("203.0.113.11")},
	}
	f, err := ec2fake.New(opt, instances, addrs,
		map[netip.Addr]string{vip1: eniB, vip2: eniB, vip6: eniB, vip7: eniB},
		map[string]netip.Addr{alloc1: vip1})
	if err != nil {
		t.Fatal(err)
	}
	r := &region{fake: f, imds: map[string]*httptest.Server{}}
	f.SetHook(r.record)
	return r
}

// record notes a request's arrival; tests that set their own hook call it.
func (r *region) record(c ec2fake.Call) {
	r.mu.Lock()
	r.arrivals = append(r.arrivals, arrival{at: time.Now(), call: c})
	r.mu.Unlock()
}

// drained reports whether every request signed with key that arrived has
// been carried out (the fake applies a request after half its latency,
// even when the caller has given up on it).
func (r *region) drained(key string) bool {
	r.mu.Lock()
	arrived := 0
	for _, a := range r.arrivals {
		if a.call.AccessKey == key {
			arrived++
		}
	}
	r.mu.Unlock()
	done := 0
	for _, c := range r.fake.Calls() {
		if c.AccessKey == key {
			done++
		}
	}
	return done >= arrived
}

// arrivalsSince counts the requests for action signed with key that
// arrived after t.
func (r *region) arrivalsSince(t time.Time, action, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.arrivals {
		if a.at.After(t) && (action == "" || a.call.Action == action) && (key == "" || a.call.AccessKey == key) {
			n++
		}
	}
	return n
}

// fastConfig has test-sized timings.
func fastConfig() EC2Config {
	return EC2Config{
		VIPs:              []netip.Addr{vip1},
		EIPs:              []EIP{{AllocationID: alloc1}},
		CallTimeout:       time.Second,
		MoveTimeout:       5 * time.Second,
		PollInterval:      20 * time.Millisecond,
		RedriveAfter:      300 * time.Millisecond,
		RetryBase:         10 * time.Millisecond,
		RetryMax:          100 * time.Millisecond,
		PermissionBackoff: 500 * time.Millisecond,
		ContestBackoff:    100 * time.Millisecond,
		ContestBackoffMax: 2 * time.Second,
		ContestWindow:     time.Minute,
	}
}

// node names an instance of the region and its credentials.
type node struct {
	instance, eni, key string
}

var (
	nodeA = node{instA, eniA, keyA}
	nodeB = node{instB, eniB, keyB}
)

// newMover builds a mover for n through New, so discovery runs against the
// fake metadata service too.
func (r *region) newMover(t testing.TB, n node, cfg EC2Config, local vrrp.Mover) *EC2Mover {
	t.Helper()
	return r.newMoverOn(t, n, cfg, local, nil)
}

// newMoverOn is newMover on clock (nil: the system clock).
func (r *region) newMoverOn(t testing.TB, n node, cfg EC2Config, local vrrp.Mover, clock Clock) *EC2Mover {
	t.Helper()
	cfg.Endpoint = r.api.URL
	cfg.IMDSEndpoint = r.imds[n.instance].URL
	m, err := New(context.Background(), cfg, local, Options{
		Logger:      testLogger(t),
		Credentials: credentials.NewStaticCredentialsProvider(n.key, "secret", ""),
		Clock:       clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Identity(); id.ENI != n.eni || id.InstanceID != n.instance {
		t.Fatalf("discovered %+v, want %s on %s", id, n.eni, n.instance)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testLogger logs to the test when DIRECTOR_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DIRECTOR_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// skewClock is the real clock that a test can move forward: timers run in
// real time, but "now" jumps, so backoffs measured against Now (permission
// suspension, contests) can be ended without waiting for them.
type skewClock struct {
	mu   sync.Mutex
	skew time.Duration
}

func (c *skewClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *skewClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (c *skewClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}

// manualClock only moves when the test says: After fires once Advance has
// moved Now past its deadline. Waiting reports the pending timers, so a
// test knows when the code under test is idle, waiting for time.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualTimer
}

type manualTimer struct {
	at time.Time
	ch chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Waiting is the number of timers not yet fired.
func (c *manualClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Advance moves Now by d and fires the timers due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// holds reports whether EC2 has every configured VIP and EIP on n's ENI.
func (r *region) holds(n node, cfg EC2Config) bool {
	for _, v := range cfg.VIPs {
		if r.fake.Owner(v) != n.eni {
			return false
		}
	}
	for _, e := range cfg.EIPs {
		ip := e.PrivateIP
		if !ip.IsValid() {
			ip = cfg.firstVIP4()
		}
		if eni, at := r.fake.Association(e.AllocationID); eni != n.eni || at != ip {
			return false
		}
	}
	return true
}

// The EC2 mover is a VRRP mover, and vip.Fake stands in for its local one.
var (
	_ vrrp.Mover = (*EC2Mover)(nil)
	_ vrrp.Mover = (*vip.Fake)(nil)
)

func newServer(t testing.TB, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func staticCreds(key string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(key, "secret", "")
}

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: "test"} }

// A permission error says what to do: fix the credentials when EC2 could
// not tell who called, grant the action when the policy refused it.
func TestPermissionErrorAdvice(t *testing.T) {
	cred := (&PermissionError{Op: "AssignPrivateIpAddresses", Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"}).Error()
	if !strings.Contains(cred, "could not validate the credentials") || strings.Contains(cred, "grant ec2:") {
		t.Errorf("AuthFailure: %s", cred)
	}
	pol := (&PermissionError{Op: "AssociateAddress", Code: "UnauthorizedOperation", Message: "You are not authorized"}).Error()
	if !strings.Contains(pol, "grant ec2:AssociateAddress") {
		t.Errorf("UnauthorizedOperation: %s", pol)
	}
}
