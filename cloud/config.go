package cloud

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// EIP is an Elastic IP to keep associated with one of the VIPs.
type EIP struct {
	// AllocationID is the eipalloc-... ID of the Elastic IP.
	AllocationID string
	// PrivateIP is the VIP it points at, an IPv4 one (Elastic IPs are
	// IPv4); the zero value means the first IPv4 VIP.
	PrivateIP netip.Addr
}

// EC2Config configures one VRRP instance's EC2 mover. Zero durations take
// the defaults below.
type EC2Config struct {
	// VIPs are the addresses that follow the master: secondary private
	// IPv4 addresses, moved with AssignPrivateIpAddresses, and IPv6
	// addresses of the subnet's IPv6 block, moved with UnassignIpv6Addresses
	// (from the ENI holding one) and AssignIpv6Addresses. Both families may
	// be mixed.
	VIPs []netip.Addr
	// EIPs are Elastic IPs re-associated with the VIPs on every take-over.
	EIPs []EIP

	// Region, InstanceID and ENI override what the metadata service says.
	Region     string
	InstanceID string
	ENI        string
	// Interface is the local interface whose MAC address names the ENI in
	// the metadata service; empty means the instance's primary interface.
	// It is ignored when ENI is set.
	Interface string
	// Endpoint overrides the EC2 API endpoint (a VPC endpoint, the fake).
	Endpoint string
	// IMDSEndpoint overrides the metadata service endpoint.
	IMDSEndpoint string

	// UnassignOnRelease makes Release unassign the VIPs from our ENI at
	// once instead of leaving them for the next master to take (which, for
	// an IPv6 VIP, unassigns it from us itself).
	UnassignOnRelease bool

	// CallTimeout bounds one API request.
	CallTimeout time.Duration
	// MoveTimeout bounds a whole Take or Announce, verification included.
	// The caller's context may end it sooner.
	MoveTimeout time.Duration
	// PollInterval is the pause between verification reads.
	PollInterval time.Duration
	// RedriveAfter is how long a change may stay invisible before the
	// request is sent again; it doubles on each resend within a move.
	RedriveAfter time.Duration
	// RetryBase and RetryMax bound the exponential backoff, with jitter,
	// between retries of throttled (RequestLimitExceeded), failed (5xx),
	// unanswered or garbled requests.
	RetryBase, RetryMax time.Duration
	// PermissionBackoff is how long the mover makes no API calls after a
	// permission error (UnauthorizedOperation, AuthFailure): retrying at
	// once would only hammer the API and the logs.
	PermissionBackoff time.Duration
	// ContestBackoff and ContestBackoffMax bound the exponential pause
	// before taking a VIP back that another ENI took while we were master
	// (split brain); contests closer together than ContestWindow double it.
	ContestBackoff, ContestBackoffMax, ContestWindow time.Duration
	// Recheck, if > 0, makes a master verify (and repair) its VIPs and
	// EIPs this often in the background. Off by default: during a split
	// brain it makes both masters contest the VIP, with backoff.
	Recheck time.Duration
}

// Defaults for EC2Config.
const (
	DefaultCallTimeout       = 3 * time.Second
	DefaultMoveTimeout       = 20 * time.Second
	DefaultPollInterval      = 200 * time.Millisecond
	DefaultRedriveAfter      = 2 * time.Second
	DefaultRetryBase         = 100 * time.Millisecond
	DefaultRetryMax          = 5 * time.Second
	DefaultPermissionBackoff = 30 * time.Second
	DefaultContestBackoff    = 2 * time.Second
	DefaultContestBackoffMax = 2 * time.Minute
	DefaultContestWindow     = 5 * time.Minute
)

// WithDefaults validates cfg and returns a copy with defaults applied and
// the EIPs' PrivateIP filled in.
func (cfg EC2Config) WithDefaults() (EC2Config, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.CallTimeout, DefaultCallTimeout)
	def(&cfg.MoveTimeout, DefaultMoveTimeout)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.RedriveAfter, DefaultRedriveAfter)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryMax, max(DefaultRetryMax, cfg.RetryBase))
	def(&cfg.PermissionBackoff, DefaultPermissionBackoff)
	def(&cfg.ContestBackoff, DefaultContestBackoff)
	def(&cfg.ContestBackoffMax, max(DefaultContestBackoffMax, cfg.ContestBackoff))
	def(&cfg.ContestWindow, DefaultContestWindow)
	eips := make([]EIP, len(cfg.EIPs))
	for i, e := range cfg.EIPs {
		if !e.PrivateIP.IsValid() {
			e.PrivateIP = cfg.firstVIP4()
		}
		eips[i] = e
	}
	cfg.EIPs = eips
	return cfg, nil
}

// Validate checks cfg without looking anything up; every problem is
// reported, each naming its field.
func (cfg EC2Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(cfg.VIPs) == 0 {
		bad("vips: at least one address is needed (a secondary private IPv4 address or an IPv6 address of the subnet)")
	}
	vips := map[netip.Addr]bool{}
	for _, v := range cfg.VIPs {
		switch {
		case !v.IsValid():
			bad("vips: an empty address")
		case v.Is4In6() || v.Zone() != "":
			bad("vips: %s: write IPv4 addresses as such and IPv6 ones without a zone", v)
		case !v.IsGlobalUnicast() || v.IsLinkLocalUnicast():
			// EC2 assigns addresses of the subnet's blocks only.
			bad("vips: %s is not a unicast address EC2 can assign to an ENI", v)
		case vips[v]:
			bad("vips: %s listed twice", v)
		}
		vips[v] = true
	}
	first4 := cfg.firstVIP4()
	allocs := map[string]bool{}
	targets := map[netip.Addr]string{}
	for _, e := range cfg.EIPs {
		if !strings.HasPrefix(e.AllocationID, "eipalloc-") {
			bad("eips: %q is not an allocation ID (eipalloc-...)", e.AllocationID)
		}
		if allocs[e.AllocationID] {
			bad("eips: %s listed twice", e.AllocationID)
		}
		allocs[e.AllocationID] = true
		target := e.PrivateIP
		if !target.IsValid() {
			target = first4
		}
		switch {
		case e.PrivateIP.IsValid() && !e.PrivateIP.Is4():
			bad("eips: %s points at %s, an IPv6 address; Elastic IPs are IPv4 and point at an IPv4 VIP", e.AllocationID, e.PrivateIP)
		case e.PrivateIP.IsValid() && !vips[e.PrivateIP]:
			bad("eips: %s points at %s, which is not one of the vips", e.AllocationID, e.PrivateIP)
		case !target.IsValid() && len(cfg.VIPs) > 0:
			bad("eips: %s has no IPv4 VIP to point at (the vips are all IPv6); Elastic IPs are IPv4", e.AllocationID)
		}
		// A private IP carries one Elastic IP; a second would evict the first.
		if other, dup := targets[target]; dup && target.IsValid() {
			bad("eips: %s and %s both point at %s; a private IP carries one Elastic IP", other, e.AllocationID, target)
		}
		targets[target] = e.AllocationID
	}
	if cfg.InstanceID != "" && !strings.HasPrefix(cfg.InstanceID, "i-") {
		bad("instance_id: %q is not an instance ID (i-...)", cfg.InstanceID)
	}
	if cfg.ENI != "" && !strings.HasPrefix(cfg.ENI, "eni-") {
		bad("eni: %q is not a network interface ID (eni-...)", cfg.ENI)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"call_timeout", cfg.CallTimeout}, {"move_timeout", cfg.MoveTimeout}, {"poll_interval", cfg.PollInterval},
		{"redrive_after", cfg.RedriveAfter}, {"retry_base", cfg.RetryBase}, {"retry_max", cfg.RetryMax},
		{"permission_backoff", cfg.PermissionBackoff}, {"contest_backoff", cfg.ContestBackoff},
		{"contest_backoff_max", cfg.ContestBackoffMax}, {"contest_window", cfg.ContestWindow}, {"recheck", cfg.Recheck},
	} {
		if d.v < 0 {
			bad("%s: negative duration %s", d.name, d.v)
		}
	}
	if cfg.CallTimeout > 0 && cfg.MoveTimeout > 0 && cfg.CallTimeout > cfg.MoveTimeout {
		bad("call_timeout %s exceeds move_timeout %s", cfg.CallTimeout, cfg.MoveTimeout)
	}
	return errors.Join(errs...)
}

// firstVIP4 is the first IPv4 VIP, the default target of an Elastic IP
// (the zero Addr if there is none).
func (cfg EC2Config) firstVIP4() netip.Addr {
	for _, v := range cfg.VIPs {
		if v.Is4() {
			return v
		}
	}
	return netip.Addr{}
}

// vipsOf returns the VIPs of one family, in configuration order.
func (cfg EC2Config) vipsOf(v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, v := range cfg.VIPs {
		if v.Is4() != v6 {
			out = append(out, v)
		}
	}
	return out
}
