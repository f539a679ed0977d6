package checks

import (
	"slices"
	"testing"
)

func TestParseStatusCodes(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"200"}, "200"},
		{[]string{"200-299"}, "200-299"},
		{[]string{"200,301-302"}, "200,301-302"},
		{[]string{"200", "204", "201-203"}, "200-204"},
		{[]string{"301-302 200"}, "200,301-302"},
		{[]string{"200-299", "250-350"}, "200-350"},
		{[]string{"100", "599"}, "100,599"},
	}
	for _, tc := range tests {
		got, err := ParseStatusCodes(tc.in...)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "abc", "99", "600", "2000", "+200", "200-", "-200", "299-200", "200--300", "20x", " , "} {
		if got, err := ParseStatusCodes(bad); err == nil {
			t.Errorf("%q: parsed as %s, want an error", bad, got)
		}
	}
	codes, _ := ParseStatusCodes("200,301-302")
	for code, want := range map[int]bool{200: true, 201: false, 300: false, 301: true, 302: true, 303: false, 503: false} {
		if codes.Contains(code) != want {
			t.Errorf("Contains(%d) = %v, want %v", code, !want, want)
		}
	}
}

// FuzzParseStatusCodes: parsing never panics, accepts only codes 100-599,
// and what it prints parses back to the same set.
func FuzzParseStatusCodes(f *testing.F) {
	for _, s := range []string{"200", "200-299", "200,301-302", "599", "100-599,200", "abc", "1-2-3", "200 - 300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		codes, err := ParseStatusCodes(s)
		if err != nil {
			return
		}
		for i, r := range codes {
			if r.Lo < 100 || r.Hi > 599 || r.Lo > r.Hi {
				t.Fatalf("%q: bad range %v", s, r)
			}
			if i > 0 && r.Lo <= codes[i-1].Hi+1 {
				t.Fatalf("%q: ranges not merged: %v", s, codes)
			}
		}
		again, err := ParseStatusCodes(codes.String())
		if err != nil || !slices.Equal(again, codes) {
			t.Fatalf("%q: printed as %q, which parses to %v, %v", s, codes.String(), again, err)
		}
	})
}
