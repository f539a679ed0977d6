package peer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	st, err := Decode(strings.NewReader(`{"node":"lb2","config_hash":"ABCdef0123","decisions":[{"kind":"override","target":"10.0.0.1:80","action":"drain","at":"2026-11-23T10:00:00Z","node":"lb2"}]}`))
	if err != nil || st.Node != "lb2" || st.ConfigHash != "ABCdef0123" || len(st.Decisions) != 1 {
		t.Fatalf("got %+v, %v", st, err)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"empty":         {"", "EOF"},
		"trailing data": {`{"node":"a"} {}`, "after the JSON object"},
		"unknown field": {`{"node":"a","x":1}`, "unknown field"},
		"no node":       {`{"node":""}`, "node name"},
		"long node":     {`{"node":"` + strings.Repeat("n", 256) + `"}`, "node name"},
		"long hash":     {`{"node":"a","config_hash":"` + strings.Repeat("a", 129) + `"}`, "longer than 128"},
		"non-hex hash":  {`{"node":"a","config_hash":"g0"}`, "not hexadecimal"},
		"wrong type":    {`{"node":1}`, "cannot unmarshal"},
		"too big":       {`{"node":"a","config_hash":"` + strings.Repeat(" ", MaxStateSize) + `"}`, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode: whatever Decode accepts is within its limits and survives
// an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"node":"lb1","config_hash":"00ff","decisions":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if st.Node == "" || len(st.Node) > maxNode || len(st.ConfigHash) > maxHash {
			t.Fatalf("accepted %+v", st)
		}
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if again.Node != st.Node || again.ConfigHash != st.ConfigHash || len(again.Decisions) != len(st.Decisions) {
			t.Fatalf("round trip: %+v vs %+v", st, again)
		}
	})
}
