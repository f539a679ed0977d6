package register

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeRequest checks that any input either decodes to a request that
// survives a JSON round trip unchanged, or is refused with a FieldError.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"service":"web","address":"10.0.0.23","port":80,"weight":1}`,
		`{"service":"web","address":"10.0.0.23","port":80}`,
		`{"service":"a","service":"b","address":"::1","port":1}`,
		`{"service":"web","address":"10.0.0.1","port":80,"weight":null}`,
		`{}`, `[]`, `null`, ``, `{"port":1e2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(bytes.NewReader(data))
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v is not a FieldError with a field", err)
			}
			return
		}
		if len(data) > MaxBodySize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if req.Service == "" || req.Address == "" {
			t.Fatalf("accepted incomplete request %+v", req)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %+v: %v", req, err)
		}
		again, err := DecodeRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if again.Service != req.Service || again.Address != req.Address || again.Port != req.Port ||
			(again.Weight == nil) != (req.Weight == nil) ||
			(again.Weight != nil && *again.Weight != *req.Weight) {
			t.Fatalf("round trip changed %+v to %+v", req, again)
		}
	})
}
