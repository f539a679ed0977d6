package ec2fake

import (
	"encoding/xml"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// operation carries out one action with f.mu held. It returns the response
// fields (marshalled inside <ActionResponse>) or an EC2 error.
type operation func(f *Fake, call *Call, form url.Values) (any, *apiError)

var operations = map[string]operation{
	"AssignPrivateIpAddresses":   (*Fake).assign,
	"UnassignPrivateIpAddresses": (*Fake).unassign,
	"AssignIpv6Addresses":        (*Fake).assign6,
	"UnassignIpv6Addresses":      (*Fake).unassign6,
	"AssociateAddress":           (*Fake).associate,
	"DisassociateAddress":        (*Fake).disassociate,
	"DescribeNetworkInterfaces":  (*Fake).describeNetworkInterfaces,
	"DescribeAddresses":          (*Fake).describeAddresses,
}

// dryRunActions take a DryRun parameter. EC2 answers a permitted dry run
// after checking permissions only, before looking at the other parameters.
var dryRunActions = map[string]bool{
	"AssociateAddress":          true,
	"DisassociateAddress":       true,
	"DescribeNetworkInterfaces": true,
	"DescribeAddresses":         true,
}

// lookupENI validates an ENI ID parameter like EC2.
func (f *Fake) lookupENI(id string) (*eniState, *apiError) {
	switch {
	case id == "":
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter NetworkInterfaceId")
	case !strings.HasPrefix(id, "eni-") || len(id) < 5:
		return nil, errorf(http.StatusBadRequest, "InvalidNetworkInterfaceID.Malformed", "Invalid id: %q (expecting \"eni-...\")", id)
	}
	e, ok := f.enis[id]
	if !ok {
		return nil, errorf(http.StatusBadRequest, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
	}
	return e, nil
}

func (f *Fake) lookupAllocation(id string) (*addrState, *apiError) {
	a, ok := f.addrs[id]
	if !ok {
		// EC2 has no Malformed code for allocation IDs.
		return nil, errorf(http.StatusBadRequest, "InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", id)
	}
	return a, nil
}

// parseIPList parses the PrivateIpAddress.N values, rejecting bad ones.
func parseIPList(form url.Values) ([]netip.Addr, *apiError) {
	raw := listParam(form, "PrivateIpAddress")
	out := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Invalid value '%s' for PrivateIpAddress", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// reserved reports whether EC2 keeps ip for itself: the first four
// addresses and the last one of every subnet CIDR block, IPv4 or IPv6
// (VPC User Guide, "Subnet CIDR blocks").
func reserved(subnet netip.Prefix, ip netip.Addr) bool {
	first := subnet.Masked().Addr()
	a := first
	for range 4 {
		if a == ip {
			return true
		}
		a = a.Next()
	}
	return ip == lastAddr(subnet)
}

// lastAddr is the highest address of p: every host bit set.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

type assignResponse struct {
	XMLName  xml.Name `xml:"r"`
	ENI      string   `xml:"networkInterfaceId"`
	Assigned []ipItem `xml:"assignedPrivateIpAddressesSet>item"`
	Return   bool     `xml:"return"`
}

type ipItem struct {
	IP string `xml:"privateIpAddress"`
}

func (f *Fake) assign(call *Call, form url.Values) (any, *apiError) {
	e, err := f.lookupENI(form.Get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	if form.Get("SecondaryPrivateIpAddressCount") != "" || form.Get("Ipv4PrefixCount") != "" || len(listParam(form, "Ipv4Prefix")) > 0 {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "ec2fake supports only explicit PrivateIpAddress.N")
	}
	ips, err := parseIPList(form)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "Either PrivateIpAddress or SecondaryPrivateIpAddressCount must be specified")
	}
	allow := form.Get("AllowReassignment") == "true"
	added := 0
	// Validate everything first: EC2 applies a request whole or not at all.
	for _, ip := range ips {
		switch {
		case !e.Subnet.Contains(ip):
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s does not fall within the subnet's address range", ip)
		case reserved(e.Subnet, ip):
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is in subnet's reserved address range", ip)
		}
		owner := ""
		if h, ok := f.ips[ip]; ok {
			owner = h.current()
		}
		if owner == e.ID {
			continue
		}
		if o, ok := f.enis[owner]; ok && o.Primary == ip {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is the primary private IP address of %s and cannot be reassigned", ip, owner)
		}
		if owner != "" && !allow {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is already assigned to another network interface", ip)
		}
		added++
	}
	if e.MaxIPs > 0 && f.currentIPCountLocked(e.ID, false)+added > e.MaxIPs {
		return nil, errorf(http.StatusBadRequest, "PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
	}
	resp := assignResponse{ENI: e.ID, Return: true}
	for _, ip := range ips {
		if h, ok := f.ips[ip]; ok && h.current() != "" && h.current() != e.ID {
			call.Moved = true
		}
		f.assignLocked(ip, e.ID)
		resp.Assigned = append(resp.Assigned, ipItem{IP: ip.String()})
	}
	return resp, nil
}

type returnResponse struct {
	XMLName xml.Name `xml:"r"`
	Return  bool     `xml:"return"`
}

func (f *Fake) unassign(call *Call, form url.Values) (any, *apiError) {
	e, err := f.lookupENI(form.Get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	ips, err := parseIPList(form)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter PrivateIpAddress")
	}
	for _, ip := range ips {
		if ip == e.Primary {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The primary private IP address %s of %s cannot be unassigned", ip, e.ID)
		}
		if h, ok := f.ips[ip]; !ok || h.current() != e.ID {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Some of the specified addresses are not assigned to interface %s", e.ID)
		}
	}
	for _, ip := range ips {
		f.unassignLocked(ip)
	}
	return returnResponse{Return: true}, nil
}

type assign6Response struct {
	XMLName  xml.Name `xml:"r"`
	ENI      string   `xml:"networkInterfaceId"`
	Assigned []string `xml:"assignedIpv6Addresses>item"`
}

type unassign6Response struct {
	XMLName    xml.Name `xml:"r"`
	ENI        string   `xml:"networkInterfaceId"`
	Unassigned []string `xml:"unassignedIpv6Addresses>item"`
}

// parseIPv6List parses the Ipv6Addresses.N values, rejecting anything
// that is not a plain IPv6 address.
func parseIPv6List(form url.Values) ([]netip.Addr, *apiError) {
	raw := listParam(form, "Ipv6Addresses")
	out := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Invalid value '%s' for Ipv6Addresses", s)
		}
		if slices.Contains(out, a) {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is specified more than once", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// assign6 is AssignIpv6Addresses with explicit addresses. Unlike
// AssignPrivateIpAddresses it has no AllowReassignment: an address held
// by another ENI is refused, and the holder must unassign it first.
func (f *Fake) assign6(call *Call, form url.Values) (any, *apiError) {
	e, err := f.lookupENI(form.Get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	if form.Get("Ipv6AddressCount") != "" || form.Get("Ipv6PrefixCount") != "" || len(listParam(form, "Ipv6Prefix")) > 0 {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "ec2fake supports only explicit Ipv6Addresses.N")
	}
	ips, err := parseIPv6List(form)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "Either Ipv6Addresses or Ipv6AddressCount must be specified")
	}
	if !e.Subnet6.IsValid() {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The subnet %s of network interface %s has no IPv6 CIDR block", e.SubnetID, e.ID)
	}
	var added []netip.Addr
	// Validate everything first: EC2 applies a request whole or not at all.
	for _, ip := range ips {
		switch {
		case !e.Subnet6.Contains(ip):
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s does not fall within the subnet's IPv6 address range %s", ip, e.Subnet6)
		case reserved(e.Subnet6, ip):
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is in subnet's reserved address range", ip)
		}
		owner := ""
		if h, ok := f.ips[ip]; ok {
			owner = h.current()
		}
		switch owner {
		case e.ID:
			// Already here: nothing to do, and not reported as new.
		case "":
			added = append(added, ip)
		default:
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Address %s is already assigned to another network interface", ip)
		}
	}
	if e.MaxIPs > 0 && f.currentIPCountLocked(e.ID, true)+len(added) > e.MaxIPs {
		return nil, errorf(http.StatusBadRequest, "Ipv6AddressLimitExceeded", "Number of IPv6 addresses will exceed limit.")
	}
	resp := assign6Response{ENI: e.ID}
	for _, ip := range added {
		f.assignLocked(ip, e.ID)
		resp.Assigned = append(resp.Assigned, ip.String())
	}
	return resp, nil
}

// unassign6 is UnassignIpv6Addresses: every address must be on the ENI.
func (f *Fake) unassign6(call *Call, form url.Values) (any, *apiError) {
	e, err := f.lookupENI(form.Get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	if len(listParam(form, "Ipv6Prefix")) > 0 {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "ec2fake supports only Ipv6Addresses.N")
	}
	ips, err := parseIPv6List(form)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter Ipv6Addresses")
	}
	for _, ip := range ips {
		if h, ok := f.ips[ip]; !ok || h.current() != e.ID {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Some of the specified addresses are not assigned to interface %s", e.ID)
		}
	}
	resp := unassign6Response{ENI: e.ID}
	for _, ip := range ips {
		f.unassignLocked(ip)
		resp.Unassigned = append(resp.Unassigned, ip.String())
	}
	return resp, nil
}

type associateResponse struct {
	XMLName       xml.Name `xml:"r"`
	Return        bool     `xml:"return"`
	AssociationID string   `xml:"associationId"`
}

func (f *Fake) associate(call *Call, form url.Values) (any, *apiError) {
	var a *addrState
	var err *apiError
	switch alloc, pub := form.Get("AllocationId"), form.Get("PublicIp"); {
	case alloc != "":
		a, err = f.lookupAllocation(alloc)
	case pub != "":
		for _, id := range f.addrOrder {
			if f.addrs[id].PublicIP.String() == pub {
				a = f.addrs[id]
			}
		}
		if a == nil {
			err = errorf(http.StatusBadRequest, "InvalidAddress.NotFound", "Address '%s' not found.", pub)
		}
	default:
		err = errorf(http.StatusBadRequest, "MissingParameter", "Either public IP or allocation id must be specified")
	}
	if err != nil {
		return nil, err
	}
	var e *eniState
	switch eni, inst := form.Get("NetworkInterfaceId"), form.Get("InstanceId"); {
	case eni != "":
		if e, err = f.lookupENI(eni); err != nil {
			return nil, err
		}
	case inst != "":
		in, ok := f.instances[inst]
		if !ok {
			return nil, errorf(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", inst)
		}
		e = f.enis[in.ENIs[0].ID]
	default:
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "Either instance ID or network interface id must be specified")
	}
	ip := e.Primary
	if s := form.Get("PrivateIpAddress"); s != "" {
		p, perr := netip.ParseAddr(s)
		if perr != nil || !p.Is4() {
			// Elastic IPs are IPv4 and point at private IPv4 addresses only.
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "Invalid value '%s' for PrivateIpAddress", s)
		}
		ip = p
	}
	if h, ok := f.ips[ip]; !ok || h.current() != e.ID {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The private IP address %s is not assigned to network interface %s", ip, e.ID)
	}
	cur := a.assoc.current()
	if cur.ENI == e.ID && cur.PrivateIP == ip {
		return associateResponse{Return: true, AssociationID: cur.ID}, nil
	}
	if cur.ENI != "" && form.Get("AllowReassociation") != "true" {
		return nil, errorf(http.StatusBadRequest, "Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s", a.AllocationID, cur.ID)
	}
	now := f.now()
	// A private IP carries one Elastic IP: another one there is replaced.
	for _, id := range f.addrOrder {
		if o := f.addrs[id]; o != a && o.assoc.current().PrivateIP == ip && o.assoc.current().ENI != "" {
			o.assoc.set(now, association{}, f.lag)
		}
	}
	next := association{ID: f.newID("eipassoc-"), ENI: e.ID, PrivateIP: ip}
	a.assoc.set(now, next, f.lag)
	return associateResponse{Return: true, AssociationID: next.ID}, nil
}

func (f *Fake) disassociate(call *Call, form url.Values) (any, *apiError) {
	id := form.Get("AssociationId")
	if id == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter AssociationId")
	}
	for _, alloc := range f.addrOrder {
		a := f.addrs[alloc]
		if a.assoc.current().ID == id && a.assoc.current().ENI != "" {
			a.assoc.set(f.now(), association{}, f.lag)
			return returnResponse{Return: true}, nil
		}
	}
	return nil, errorf(http.StatusBadRequest, "InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
}

type niResponse struct {
	XMLName    xml.Name `xml:"r"`
	Interfaces []niItem `xml:"networkInterfaceSet>item"`
}

type niItem struct {
	ID               string       `xml:"networkInterfaceId"`
	SubnetID         string       `xml:"subnetId"`
	VPCID            string       `xml:"vpcId"`
	AvailabilityZone string       `xml:"availabilityZone"`
	OwnerID          string       `xml:"ownerId"`
	Status           string       `xml:"status"`
	MAC              string       `xml:"macAddress"`
	PrivateIP        string       `xml:"privateIpAddress"`
	SourceDestCheck  bool         `xml:"sourceDestCheck"`
	InterfaceType    string       `xml:"interfaceType"`
	Attachment       niAttachment `xml:"attachment"`
	Association      *niAssoc     `xml:"association,omitempty"`
	PrivateIPs       []niPrivIP   `xml:"privateIpAddressesSet>item"`
	IPv6s            []niIPv6     `xml:"ipv6AddressesSet>item"`
}

type niIPv6 struct {
	IP      string `xml:"ipv6Address"`
	Primary bool   `xml:"isPrimaryIpv6"`
}

type niAttachment struct {
	ID          string `xml:"attachmentId"`
	InstanceID  string `xml:"instanceId"`
	OwnerID     string `xml:"instanceOwnerId"`
	DeviceIndex int    `xml:"deviceIndex"`
	Status      string `xml:"status"`
}

type niPrivIP struct {
	IP          string   `xml:"privateIpAddress"`
	Primary     bool     `xml:"primary"`
	Association *niAssoc `xml:"association,omitempty"`
}

type niAssoc struct {
	PublicIP      string `xml:"publicIp"`
	IPOwnerID     string `xml:"ipOwnerId"`
	AllocationID  string `xml:"allocationId"`
	AssociationID string `xml:"associationId"`
}

func (f *Fake) describeNetworkInterfaces(call *Call, form url.Values) (any, *apiError) {
	ids := listParam(form, "NetworkInterfaceId")
	for _, id := range ids {
		if _, err := f.lookupENI(id); err != nil {
			return nil, err
		}
	}
	filters := parseFilters(form)
	for _, ft := range filters {
		if !slices.Contains([]string{"network-interface-id", "attachment.instance-id", "vpc-id", "subnet-id", "mac-address", "private-ip-address", "addresses.private-ip-address", "ipv6-addresses.ipv6-address"}, ft.name) {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' is invalid", ft.name)
		}
	}
	cutoff := f.now().Add(-f.lag)
	// Visible associations by (ENI, private IP), as of cutoff.
	assocs := map[association]*addrState{}
	for _, id := range f.addrOrder {
		a := f.addrs[id]
		if c := a.assoc.visible(cutoff); c.ENI != "" {
			assocs[association{ENI: c.ENI, PrivateIP: c.PrivateIP}] = a
		}
	}
	assocItem := func(eni string, ip netip.Addr) *niAssoc {
		a, ok := assocs[association{ENI: eni, PrivateIP: ip}]
		if !ok {
			return nil
		}
		c := a.assoc.visible(cutoff)
		return &niAssoc{PublicIP: a.PublicIP.String(), IPOwnerID: "amazon", AllocationID: a.AllocationID, AssociationID: c.ID}
	}
	var resp niResponse
	for _, id := range sortedKeys(f.enis) {
		e := f.enis[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		in := f.instances[e.instance]
		ips := f.ipsOfLocked(e, cutoff)
		ipStrs := make([]string, len(ips))
		for i, ip := range ips {
			ipStrs[i] = ip.String()
		}
		ip6s := f.ipv6sOfLocked(e, cutoff)
		ip6Strs := make([]string, len(ip6s))
		for i, ip := range ip6s {
			ip6Strs[i] = ip.String()
		}
		values := map[string][]string{
			"network-interface-id":         {e.ID},
			"attachment.instance-id":       {e.instance},
			"vpc-id":                       {e.VPCID},
			"subnet-id":                    {e.SubnetID},
			"mac-address":                  {e.MAC},
			"private-ip-address":           ipStrs,
			"addresses.private-ip-address": ipStrs,
			"ipv6-addresses.ipv6-address":  ip6Strs,
		}
		if !matches(filters, values) {
			continue
		}
		item := niItem{
			ID: e.ID, SubnetID: e.SubnetID, VPCID: e.VPCID, AvailabilityZone: in.AvailabilityZone,
			OwnerID: in.AccountID, Status: "in-use", MAC: e.MAC, PrivateIP: e.Primary.String(),
			SourceDestCheck: true, InterfaceType: "interface",
			Attachment: niAttachment{
				ID: "eni-attach-" + strings.TrimPrefix(e.ID, "eni-"), InstanceID: e.instance,
				OwnerID: in.AccountID, DeviceIndex: e.device, Status: "attached",
			},
			Association: assocItem(e.ID, e.Primary),
		}
		for _, ip := range ips {
			item.PrivateIPs = append(item.PrivateIPs, niPrivIP{IP: ip.String(), Primary: ip == e.Primary, Association: assocItem(e.ID, ip)})
		}
		for _, s := range ip6Strs {
			item.IPv6s = append(item.IPv6s, niIPv6{IP: s})
		}
		resp.Interfaces = append(resp.Interfaces, item)
	}
	return resp, nil
}

type addrResponse struct {
	XMLName   xml.Name   `xml:"r"`
	Addresses []addrItem `xml:"addressesSet>item"`
}

type addrItem struct {
	PublicIP      string `xml:"publicIp"`
	AllocationID  string `xml:"allocationId"`
	Domain        string `xml:"domain"`
	InstanceID    string `xml:"instanceId,omitempty"`
	AssociationID string `xml:"associationId,omitempty"`
	ENI           string `xml:"networkInterfaceId,omitempty"`
	ENIOwnerID    string `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIP     string `xml:"privateIpAddress,omitempty"`
}

func (f *Fake) describeAddresses(call *Call, form url.Values) (any, *apiError) {
	allocs := listParam(form, "AllocationId")
	for _, id := range allocs {
		if _, err := f.lookupAllocation(id); err != nil {
			return nil, err
		}
	}
	pubs := listParam(form, "PublicIp")
	filters := parseFilters(form)
	for _, ft := range filters {
		if !slices.Contains([]string{"allocation-id", "association-id", "domain", "instance-id", "network-interface-id", "private-ip-address", "public-ip"}, ft.name) {
			return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' is invalid", ft.name)
		}
	}
	cutoff := f.now().Add(-f.lag)
	var resp addrResponse
	for _, id := range f.addrOrder {
		a := f.addrs[id]
		if len(allocs) > 0 && !slices.Contains(allocs, id) || len(pubs) > 0 && !slices.Contains(pubs, a.PublicIP.String()) {
			continue
		}
		item := addrItem{PublicIP: a.PublicIP.String(), AllocationID: id, Domain: "vpc"}
		if c := a.assoc.visible(cutoff); c.ENI != "" {
			e := f.enis[c.ENI]
			item.AssociationID, item.ENI, item.PrivateIP = c.ID, c.ENI, c.PrivateIP.String()
			item.InstanceID, item.ENIOwnerID = e.instance, f.instances[e.instance].AccountID
		}
		values := map[string][]string{
			"allocation-id": {id}, "association-id": {item.AssociationID}, "domain": {"vpc"},
			"instance-id": {item.InstanceID}, "network-interface-id": {item.ENI},
			"private-ip-address": {item.PrivateIP}, "public-ip": {item.PublicIP},
		}
		if !matches(filters, values) {
			continue
		}
		resp.Addresses = append(resp.Addresses, item)
	}
	return resp, nil
}

// matches applies EC2 filter semantics: every filter must match, a filter
// matches if any of its values equals any of the resource's values (no
// wildcards here).
func matches(filters []filter, values map[string][]string) bool {
	for _, ft := range filters {
		ok := false
		for _, v := range ft.values {
			if slices.Contains(values[ft.name], v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
