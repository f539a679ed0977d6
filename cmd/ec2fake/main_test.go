package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestServesEC2AdminAndIMDS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct {
		ec2  string
		imds map[string]string
	}
	readyc := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"-seed", "../../cloud/ec2fake/testdata/pair.json", "-listen", "127.0.0.1:0",
			"-imds", "i-0aaaaaaaaaaaaaaa1=127.0.0.1:0", "-access-key", "AKIDTEST",
		}, io.Discard, func(e string, m map[string]string) { readyc <- addrs{e, m} })
	}()
	var a addrs
	select {
	case a = <-readyc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}

	c := ec2.New(ec2.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String("http://" + a.ec2),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""), Retryer: aws.NopRetryer{},
	})
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String("eni-0aaaaaaaaaaaaaaa1"), PrivateIpAddresses: []string{"10.0.1.100"}, AllowReassignment: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + a.ec2 + "/_fake/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"10.0.1.100": "eni-0aaaaaaaaaaaaaaa1"`) {
		t.Fatalf("state after assign: %s", body)
	}

	meta := imds.New(imds.Options{Endpoint: "http://" + a.imds["i-0aaaaaaaaaaaaaaa1"], EnableFallback: aws.FalseTernary})
	doc, err := meta.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil || doc.InstanceID != "i-0aaaaaaaaaaaaaaa1" {
		t.Fatalf("identity: %+v %v", doc, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	if err := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, io.Discard, nil); err == nil {
		t.Fatal("missing -seed accepted")
	}
}
