package vrrpproc

import (
	"encoding/json"
	"testing"
)

// The pipe's decoders never panic, and whatever they accept is one thing
// that encodes and decodes to itself.
func FuzzDecodeToChild(f *testing.F) {
	for _, s := range []string{`{"id":1,"state":true}`, `{"tracks":{"service http":true}}`,
		`{"id":2,"config":{"file":"d.yaml","text":"bG9nX2xldmVsOiBpbmZvCg=="}}`, `{"id":3,"failover":""}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := DecodeToChild(line)
		if err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeToChild(b); err != nil {
			t.Fatalf("re-encoded %s: %v", b, err)
		}
	})
}

func FuzzDecodeFromChild(f *testing.F) {
	for _, s := range []string{`{"reply":{"id":1,"instances":[{"name":"web","state":"MASTER"}]}}`,
		`{"master":{"instance":"web","master":true}}`, `{"ec2_call":{"op":"AssignPrivateIpAddresses","took":1000}}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := DecodeFromChild(line)
		if err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeFromChild(b); err != nil {
			t.Fatalf("re-encoded %s: %v", b, err)
		}
	})
}
