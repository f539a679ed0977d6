package config

import (
	"errors"
	"testing"
)

// FuzzParse: any input either loads into a configuration that passes its own
// invariants, or is refused with Problems; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("instances:\n  - {name: a, interface: eth0, vrid: 1, vips: [10.0.0.1]}\n"))
	f.Add([]byte("instances: [\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %T %v", err, err)
			}
			return
		}
		for _, s := range cfg.Services {
			if len(s.Endpoints) == 0 || len(s.Endpoints) > MaxGroupEndpoints {
				t.Fatalf("service %s accepted with %d endpoints", s.Name, len(s.Endpoints))
			}
		}
		for _, in := range cfg.Instances {
			// VRRPv2 may advertise no address (validate.go's vips); v3 needs one.
			if in.VRID < 1 || in.VRID > 255 || in.Priority < 1 || in.Priority > 254 || (in.Version == 3 && len(in.Addresses) == 0) {
				t.Fatalf("invalid instance accepted: %+v", in)
			}
		}
	})
}
