// Package cloud moves a VRRP instance's virtual addresses in a cloud API,
// where the network ignores gratuitous ARP. On EC2 the VPC delivers a
// private IP (or an IPv6 address) only to the network interface (ENI) it
// is assigned to, so a new master must reassign the VIP to its own ENI and
// re-associate the Elastic IPs itself.
//
// EC2Mover implements the VRRP mover interface (Take, Announce, Release).
// It composes with a local mover (vip.Local), which adds the VIPs to the
// interface so that IPVS accepts the packets the VPC now delivers.
//
// # Take
//
// The local addresses are added first (instant). Then one
// AssignPrivateIpAddresses call moves every IPv4 VIP to our ENI with
// AllowReassignment; the Elastic IP associated with a moved private IP
// moves with it. IPv6 VIPs cannot be reassigned (EC2 has no
// AllowReassignment for them): in parallel with the IPv4 call the mover
// finds the ENIs holding them (DescribeNetworkInterfaces filtered by
// ipv6-addresses.ipv6-address), unassigns them there
// (UnassignIpv6Addresses) and assigns them to our ENI
// (AssignIpv6Addresses). AssociateAddress calls for the configured
// Elastic IPs (AllowReassociation, in parallel; IPv4 only) go out
// together with the first verification read, which often already shows
// everything in place. The mover then re-reads DescribeNetworkInterfaces,
// DescribeAddresses and the metadata service's local-ipv4s and ipv6s for
// our ENI until all of it shows (EC2 remaps asynchronously), re-sending a
// change that stays invisible for RedriveAfter (doubling); an IPv6
// assignment EC2 refuses as it stands (the address not yet free) is
// retried after PollInterval, doubling up to RedriveAfter. Take returns
// when verified, or with an error when its context or MoveTimeout ends;
// a move that runs out of time says what was still missing and where it
// was. A cancelled Take (VRRP lost mastership) stops at once and removes
// the local addresses again.
//
// # Failures
//
// Each request has CallTimeout. Throttling (RequestLimitExceeded,
// Throttling, ...), 5xx, timeouts, connection errors and unparsable
// answers are retried with exponential backoff and jitter (RetryBase to
// RetryMax) until the move's deadline. A permission error
// (UnauthorizedOperation, AuthFailure, ...) returns a *PermissionError,
// is counted in Status, and suspends that action for PermissionBackoff so
// that VRRP's quick retries do not hammer the API. An unknown ID
// (*.NotFound, *.Malformed) fails the move at once with an *APIError.
//
// # Split brain
//
// If EC2 shows a VIP that was verified on our ENI during this hold gone
// to another ENI (twice in a row), the peer took it while we believe we
// are master. The mover waits ContestBackoff before taking it back,
// doubling for each contest within ContestWindow up to ContestBackoffMax,
// and logs it; VRRP converges meanwhile and the lower-priority master
// releases. Announce (VRRP's split-brain repair) and the optional
// background Recheck run this logic.
//
// # Release
//
// The local addresses are removed. The VIPs stay assigned to our ENI for
// the next master to take (no gap in reachability; for an IPv6 VIP the
// next master unassigns it from our ENI itself), unless UnassignOnRelease
// is set.
//
// # IAM policy
//
// The instance role needs (the lead copies this into the README):
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {
//	      "Sid": "DirectorMoveVIPs",
//	      "Effect": "Allow",
//	      "Action": [
//	        "ec2:AssignPrivateIpAddresses",
//	        "ec2:UnassignPrivateIpAddresses",
//	        "ec2:AssignIpv6Addresses",
//	        "ec2:UnassignIpv6Addresses",
//	        "ec2:AssociateAddress"
//	      ],
//	      "Resource": [
//	        "arn:aws:ec2:REGION:ACCOUNT:network-interface/eni-LB1",
//	        "arn:aws:ec2:REGION:ACCOUNT:network-interface/eni-LB2",
//	        "arn:aws:ec2:REGION:ACCOUNT:elastic-ip/eipalloc-XXXX"
//	      ]
//	    },
//	    {
//	      "Sid": "DirectorVerify",
//	      "Effect": "Allow",
//	      "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeAddresses"],
//	      "Resource": "*"
//	    }
//	  ]
//	}
//
// Describe* actions support no resource-level restriction, hence "*".
// UnassignPrivateIpAddresses is needed only with unassign_on_release,
// AssignIpv6Addresses and UnassignIpv6Addresses only with IPv6 VIPs, and
// AssociateAddress only with Elastic IPs. List both nodes' ENIs: each node
// assigns to its own, but the reassignment takes the IP from the other
// (for IPv6, by unassigning it on the other's ENI).
// If a restricted Resource list still yields UnauthorizedOperation on
// AssociateAddress, add both instances' ARNs (instance/i-...), or use "*"
// and restrict with conditions instead. Check at start-up with
// EC2Mover.Preflight (the Assign/Unassign calls have no DryRun, so they
// show only at the first move). The metadata service needs no permission but must allow
// IMDSv2 (the mover never falls back to IMDSv1) with a hop limit that
// reaches the daemon (1 is enough on the host).
package cloud
