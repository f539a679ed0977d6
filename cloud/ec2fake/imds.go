package ec2fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IMDS returns the instance metadata service of one instance, in IMDSv2
// "tokens required" mode: a session token from PUT /latest/api/token is
// needed for every read, as on an instance launched with
// HttpTokens=required. Addresses it reports (local-ipv4s, ipv6s) follow
// the EC2 state, with the same Lag as Describe calls.
func (f *Fake) IMDS(instanceID string) http.Handler {
	return &imds{f: f, id: instanceID, tokens: map[string]time.Time{}}
}

type imds struct {
	f  *Fake
	id string

	mu     sync.Mutex
	tokens map[string]time.Time // token → expiry
}

const (
	tokenPath      = "/latest/api/token"
	tokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenHeader    = "X-Aws-Ec2-Metadata-Token"
	metaPrefix     = "/latest/meta-data/"
	identityPath   = "/latest/dynamic/instance-identity/document"
)

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// IMDS refuses requests that went through a proxy.
	if r.Header.Get("X-Forwarded-For") != "" {
		imdsStatus(w, http.StatusForbidden)
		return
	}
	if r.URL.Path == tokenPath {
		m.token(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		imdsStatus(w, http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get(tokenHeader)) {
		imdsStatus(w, http.StatusUnauthorized)
		return
	}
	m.f.mu.Lock()
	ft := m.f.matchFaultLocked("IMDS", "")
	m.f.mu.Unlock()
	if ft != nil {
		w.WriteHeader(ft.Status)
		if ft.Body != nil {
			_, _ = w.Write(ft.Body)
		}
		return
	}
	body, ok := m.lookup(r.URL.Path)
	if !ok {
		imdsStatus(w, http.StatusNotFound)
		return
	}
	ctype := "text/plain"
	if r.URL.Path == identityPath {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write([]byte(body))
}

func (m *imds) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		imdsStatus(w, http.StatusMethodNotAllowed)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(tokenTTLHeader))
	if err != nil || ttl < 1 || ttl > 21600 {
		imdsStatus(w, http.StatusBadRequest)
		return
	}
	m.f.mu.Lock()
	tok := fmt.Sprintf("AQAEA%016x%016x==", m.f.rng.Uint64(), m.f.rng.Uint64())
	now := m.f.now()
	m.f.mu.Unlock()
	m.mu.Lock()
	for t, exp := range m.tokens {
		if now.After(exp) {
			delete(m.tokens, t)
		}
	}
	m.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set(tokenTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (m *imds) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	now := m.f.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	return ok && !now.After(exp)
}

// imdsStatus answers with the HTML error page IMDS uses.
func imdsStatus(w http.ResponseWriter, status int) {
	text := fmt.Sprintf("%d - %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html>\n<html><head><title>%s</title></head><body><h1>%s</h1></body></html>\n", text, text)
}

// lookup renders one metadata path from the current state.
func (m *imds) lookup(path string) (string, bool) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[m.id]
	if !ok {
		return "", false
	}
	primary := f.enis[in.ENIs[0].ID]
	if path == identityPath {
		doc := map[string]any{
			"accountId": in.AccountID, "architecture": "x86_64", "availabilityZone": in.AvailabilityZone,
			"imageId": "ami-0123456789abcdef0", "instanceId": in.ID, "instanceType": "m5.large",
			"pendingTime": "2024-01-01T00:00:00Z", "privateIp": primary.Primary.String(),
			"region": in.Region, "version": "2017-09-30",
		}
		b, _ := json.MarshalIndent(doc, "", "  ")
		return string(b), true
	}
	p, ok := strings.CutPrefix(path, metaPrefix)
	if !ok {
		return "", false
	}
	p = strings.TrimSuffix(p, "/")
	cutoff := f.now().Add(-f.lag)
	switch p {
	case "":
		return "instance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\nplacement/", true
	case "instance-id":
		return in.ID, true
	case "instance-type":
		return "m5.large", true
	case "mac":
		return primary.MAC, true
	case "local-ipv4":
		return primary.Primary.String(), true
	case "placement":
		return "availability-zone\nregion", true
	case "placement/region":
		return in.Region, true
	case "placement/availability-zone":
		return in.AvailabilityZone, true
	case "network":
		return "interfaces/", true
	case "network/interfaces":
		return "macs/", true
	case "network/interfaces/macs":
		var lines []string
		for _, e := range in.ENIs {
			lines = append(lines, e.MAC+"/")
		}
		return strings.Join(lines, "\n"), true
	}
	rest, ok := strings.CutPrefix(p, "network/interfaces/macs/")
	if !ok {
		return "", false
	}
	mac, key, _ := strings.Cut(rest, "/")
	var e *eniState
	for _, x := range in.ENIs {
		if strings.EqualFold(x.MAC, mac) {
			e = f.enis[x.ID]
		}
	}
	if e == nil {
		return "", false
	}
	switch key {
	case "":
		keys := "device-number\ninterface-id\n"
		if len(f.ipv6sOfLocked(e, cutoff)) > 0 {
			keys += "ipv6s\n"
		}
		keys += "local-ipv4s\nmac\npublic-ipv4s\nsubnet-id\nsubnet-ipv4-cidr-block\n"
		if e.Subnet6.IsValid() {
			keys += "subnet-ipv6-cidr-blocks\n"
		}
		return keys + "vpc-id", true
	case "device-number":
		return strconv.Itoa(e.device), true
	case "interface-id":
		return e.ID, true
	case "mac":
		return e.MAC, true
	case "subnet-id":
		return e.SubnetID, true
	case "vpc-id":
		return e.VPCID, true
	case "subnet-ipv4-cidr-block":
		return e.Subnet.String(), true
	case "local-ipv4s":
		return joinAddrs(f.ipsOfLocked(e, cutoff)), true
	case "ipv6s":
		// Like IMDS, the key is absent while the ENI has no IPv6 address.
		ip6s := f.ipv6sOfLocked(e, cutoff)
		if len(ip6s) == 0 {
			return "", false
		}
		return joinAddrs(ip6s), true
	case "subnet-ipv6-cidr-blocks":
		if !e.Subnet6.IsValid() {
			return "", false
		}
		return e.Subnet6.String(), true
	case "public-ipv4s":
		var pubs []netip.Addr
		for _, id := range f.addrOrder {
			if c := f.addrs[id].assoc.visible(cutoff); c.ENI == e.ID {
				pubs = append(pubs, f.addrs[id].PublicIP)
			}
		}
		if len(pubs) == 0 {
			return "", false
		}
		return joinAddrs(pubs), true
	}
	return "", false
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, "\n")
}
