package register

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRequestAccepts(t *testing.T) {
	r, err := DecodeRequest(strings.NewReader(` {"weight":3, "port":80, "address":"10.0.0.1", "service":"web"} ` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Service != "web" || r.Address != "10.0.0.1" || r.Port != 80 || r.Weight == nil || *r.Weight != 3 {
		t.Fatalf("decoded %+v", r)
	}
	r, err = DecodeRequest(strings.NewReader(`{"service":"web","address":"10.0.0.1","port":80}`))
	if err != nil || r.Weight != nil {
		t.Fatalf("without weight: %+v, %v", r, err)
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	cases := []struct{ body, field string }{
		{``, "body"},
		{`[]`, "body"},
		{`"x"`, "body"},
		{`{"service":"web","address":"10.0.0.1","port":80`, "body"},
		{`{"service":"web","address":"10.0.0.1","port":80}{}`, "body"},
		{`{"service":"web","address":"10.0.0.1","port":80} x`, "body"},
		{`{"Service":"web","address":"10.0.0.1","port":80}`, "Service"},
		{`{"service":"web","service":"db","address":"10.0.0.1","port":80}`, "service"},
		{`{"service":null,"address":"10.0.0.1","port":80}`, "service"},
		{`{"service":"web","address":"10.0.0.1","port":80,"weight":null}`, "weight"},
		{`{"service":1,"address":"10.0.0.1","port":80}`, "service"},
		{`{"service":"web","address":["10.0.0.1"],"port":80}`, "address"},
		{`{"service":"web","address":"10.0.0.1","port":1e2}`, "port"},
		{`{"service":"web","address":"10.0.0.1","port":99999999999999999999}`, "port"},
		{`{"service":"","address":"10.0.0.1","port":80}`, "service"},
		{`{"service":"web","address":"","port":80}`, "address"},
		{`{"service":"web","address":"10.0.0.1"}`, "port"},
		{`{"service":"web","address":"10.0.0.1","port":80,"x":{}}`, "x"},
		{`{"":1,"service":"web","address":"10.0.0.1","port":80}`, "body"},
		{`{"service":"web","address":"10.0.0.1","port":80,"pad":"` + strings.Repeat("a", MaxBodySize) + `"}`, "body"},
	}
	for _, c := range cases {
		_, err := DecodeRequest(strings.NewReader(c.body))
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%.60q: err %v, want a FieldError", c.body, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%.60q: field %q (%v), want %q", c.body, fe.Field, err, c.field)
		}
	}
}
