package ec2fake_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/director-lb/director/cloud/ec2fake"
)

// FuzzRequest feeds arbitrary Query API bodies to the fake: whatever the
// parameters, it must answer with EC2's error envelope or a well-formed
// <ActionResponse>, never panic, and keep every address's owner an ENI
// it knows.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"Action=AssignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1&Ipv6Addresses.1=2001:db8:0:1::100",
		"Action=UnassignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-0bbbbbbbbbbbbbbb2&Ipv6Addresses.1=2001:db8:0:1::100",
		"Action=AssignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1&Ipv6Addresses.1=2001:db8:0:1::5&Ipv6Addresses.2=2001:db8:0:1::5",
		"Action=AssignIpv6Addresses&Version=2016-11-15&NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1&Ipv6Addresses.1=fe80::1%25eth0",
		"Action=AssignPrivateIpAddresses&Version=2016-11-15&NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1&PrivateIpAddress.1=10.0.1.100&AllowReassignment=true",
		"Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=ipv6-addresses.ipv6-address&Filter.1.Value.1=2001:db8:0:1::100",
		"Action=AssociateAddress&Version=2016-11-15&AllocationId=eipalloc-0000000000000001&NetworkInterfaceId=eni-0bbbbbbbbbbbbbbb2&PrivateIpAddress=2001:db8:0:1::100",
		"Action=DescribeAddresses&Version=2016-11-15&DryRun=true",
		"Action=Nope&Version=1",
		"%zz",
		"",
	} {
		f.Add([]byte(s))
	}
	seed, err := os.ReadFile("testdata/pair.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ec2fake.LoadSeed(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		fake, err := ec2fake.FromSeed(ec2fake.Options{Seed: 1}, s)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDA/20260101/eu-west-1/ec2/aws4_request")
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)

		root, err := rootElement(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("status %d with a body that is not XML (%v): %q", rec.Code, err, rec.Body.String())
		}
		if rec.Code == http.StatusOK {
			form, _ := url.ParseQuery(string(body))
			if want := form.Get("Action") + "Response"; root != want {
				t.Fatalf("success answered with <%s>, want <%s>", root, want)
			}
		} else if root != "Response" {
			t.Fatalf("status %d answered with <%s>, not the error envelope", rec.Code, root)
		}
		for ip, eni := range fake.Snapshot().IPs {
			if eni != "" && !strings.HasPrefix(eni, "eni-") {
				t.Fatalf("%s owned by %q", ip, eni)
			}
			if !ip.Is4() && !ip.Is6() {
				t.Fatalf("invalid address %v in the state", ip)
			}
		}
	})
}

// rootElement is the name of the first element of an XML document.
func rootElement(b []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var root string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == "" {
				return "", errors.New("no element")
			}
			return root, nil
		}
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}
