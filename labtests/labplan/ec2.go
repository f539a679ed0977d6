package labplan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The lab's fake EC2 region: one instance and ENI per load balancer in the
// segment's subnet (IPv4 and IPv6 blocks), one Elastic IP pointing at the
// IPv4 VIP. The instance is dual-stack: IPv4 adverts and VIP4, and VIP6
// among its vips_excluded, which ec2.move_excluded moves through EC2 too
// (UnassignIpv6Addresses on the old holder, AssignIpv6Addresses on the
// new). The fake runs in host AWS; nothing leaves the guest.
const (
	AWS           = "aws"
	EC2Region     = "us-east-1"
	EC2Port       = 8080
	EC2AllocID    = "eipalloc-0000000000000001"
	EC2PublicIP   = "203.0.113.10"
	EC2AccessKey  = "AKIALABFAKE"
	EC2SecretKey  = "lab-secret"
	EC2SeedFile   = "ec2seed.json"
	ec2IMDSPort1  = 8081
	ec2IMDSPort2  = 8082
	ec2SubnetID   = "subnet-0000000000000001"
	ec2VPCID      = "vpc-0000000000000001"
	ec2ZoneSuffix = "a"
)

// EC2Node is a load balancer's identity in the fake region.
type EC2Node struct {
	Instance string
	ENI      string
	MAC      string
	IMDSPort int
}

// EC2Nodes maps LB1 and LB2 to their instance, ENI and metadata port.
func EC2Nodes() map[string]EC2Node {
	return map[string]EC2Node{
		LB1: {Instance: "i-0aaaaaaaaaaaaaaa1", ENI: "eni-0aaaaaaaaaaaaaaa1", MAC: "02:00:00:00:00:a1", IMDSPort: ec2IMDSPort1},
		LB2: {Instance: "i-0bbbbbbbbbbbbbbb2", ENI: "eni-0bbbbbbbbbbbbbbb2", MAC: "02:00:00:00:00:b2", IMDSPort: ec2IMDSPort2},
	}
}

// EC2Addr is the fake's address on the segment.
func EC2Addr() string {
	h, _ := HostByName(AWS)
	return h.IPv4.Addr().String()
}

// EC2Endpoint is the fake EC2 API; its admin API is under /_fake/.
func EC2Endpoint() string { return fmt.Sprintf("http://%s:%d", EC2Addr(), EC2Port) }

// EC2Seed is the fake's starting state (cmd/ec2fake -seed): nobody holds
// the VIP yet and the Elastic IP is not associated.
func EC2Seed() (string, error) {
	type eni struct {
		ID       string `json:"id"`
		MAC      string `json:"mac"`
		SubnetID string `json:"subnet_id"`
		VPCID    string `json:"vpc_id"`
		Subnet   string `json:"subnet"`
		Subnet6  string `json:"subnet_ipv6"`
		Primary  string `json:"primary"`
	}
	type instance struct {
		ID     string `json:"id"`
		Region string `json:"region"`
		Zone   string `json:"availability_zone"`
		ENIs   []eni  `json:"enis"`
	}
	type address struct {
		AllocationID string `json:"allocation_id"`
		PublicIP     string `json:"public_ip"`
	}
	seed := struct {
		Instances []instance `json:"instances"`
		Addresses []address  `json:"addresses"`
	}{Addresses: []address{{EC2AllocID, EC2PublicIP}}}
	nodes := EC2Nodes()
	for _, n := range []string{LB1, LB2} {
		h, _ := HostByName(n)
		e := nodes[n]
		seed.Instances = append(seed.Instances, instance{
			ID: e.Instance, Region: EC2Region, Zone: EC2Region + ec2ZoneSuffix,
			ENIs: []eni{{ID: e.ENI, MAC: e.MAC, SubnetID: ec2SubnetID, VPCID: ec2VPCID,
				Subnet: h.IPv4.Masked().String(), Subnet6: h.IPv6.Masked().String(), Primary: h.IPv4.Addr().String()}},
		})
	}
	b, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		return "", fmt.Errorf("ec2 seed: %w", err)
	}
	return string(b), nil
}

// EC2FakeArgv runs the fake in host AWS: the EC2 API on EC2Port and each
// instance's metadata service on its own port.
func EC2FakeArgv(paths Paths) []string {
	argv := []string{paths.EC2FakeBin, "-seed", paths.Out + "/" + EC2SeedFile,
		"-listen", fmt.Sprintf("%s:%d", EC2Addr(), EC2Port), "-access-key", EC2AccessKey}
	nodes := EC2Nodes()
	for _, n := range []string{LB1, LB2} {
		argv = append(argv, "-imds", fmt.Sprintf("%s=%s:%d", nodes[n].Instance, EC2Addr(), nodes[n].IMDSPort))
	}
	return argv
}

// EC2Env is the daemons' AWS credentials, which the fake accepts.
func EC2Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + EC2AccessKey, "AWS_SECRET_ACCESS_KEY=" + EC2SecretKey}
}

// directorEC2 writes an instance's IPv6 VIP and its ec2 block for node.
func directorEC2(b *strings.Builder, node string) {
	e := EC2Nodes()[node]
	fmt.Fprintf(b, "    vips_excluded: [%s]\n", VIP6)
	fmt.Fprintf(b, "    ec2:\n      region: %s\n      instance_id: %s\n      eni: %s\n", EC2Region, e.Instance, e.ENI)
	fmt.Fprintf(b, "      allocation_ids: [%s]\n      move_excluded: true\n", EC2AllocID)
	fmt.Fprintf(b, "      endpoint: %s\n      imds_endpoint: http://%s:%d\n", EC2Endpoint(), EC2Addr(), e.IMDSPort)
}
