package peer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/decisions"
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

// Whatever the store holds, this node's whole state fits in one sync:
// past MaxStateSize the peer refuses it, and the pair stopped syncing in
// both directions for good. A peer pushing ever more decisions (here with
// the longest node names) must not get the store past that.
func TestStateFitsTheSyncLimit(t *testing.T) {
	store, err := decisions.Open(decisions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node := strings.Repeat("n", 255)
	at := time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC)
	var batch []decisions.Decision
	for i := range 20000 {
		target := fmt.Sprintf("%s/[2001:db8:ffff:ffff:ffff:ffff:%x:%x]:65535", strings.Repeat("s", 64), i>>16, i&0xffff)
		batch = append(batch, decisions.Decision{Kind: decisions.KindRegistration, Target: target, Action: decisions.ActionRegister, Weight: 65535, At: at, Node: node})
	}
	store.Merge(batch, nil)
	b, err := json.Marshal(State{Node: node, ConfigHash: strings.Repeat("f", 128), Decisions: store.Snapshot()})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxStateSize {
		t.Fatalf("state of %d decisions is %d bytes, over the %d-byte sync limit", len(store.Snapshot()), len(b), MaxStateSize)
	}
	if _, err := Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("the peer would refuse it: %v", err)
	}
}

// FuzzSyncPayload: a sync body from the peer, decoded and merged as the
// daemon does (clock fixed, targets vetted). Whatever it holds, what the
// store keeps is valid, dated within the allowed skew, within the encoded
// size bound, and this node's whole state still fits one sync.
func FuzzSyncPayload(f *testing.F) {
	f.Add([]byte(`{"node":"lb2","config_hash":"00ff","decisions":[{"kind":"override","target":"web/10.0.0.21:80","action":"drain","at":"2026-01-02T03:04:05Z","node":"lb2"}]}`))
	f.Add([]byte(`{"node":"lb2","decisions":[{"kind":"override","target":"web/10.0.0.21:80","action":"disable","at":"9999-01-01T00:00:00Z","node":"lb2"}]}`))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		store, err := decisions.Open(decisions.Options{Now: func() time.Time { return now }, Limits: decisions.Limits{Entries: 50}})
		if err != nil {
			t.Fatal(err)
		}
		// The daemon refuses targets it does not know; here, services
		// other than web.
		known := func(d decisions.Decision) error {
			if !strings.HasPrefix(d.Target, "web/") {
				return fmt.Errorf("unknown %s", d.Target)
			}
			return nil
		}
		store.Merge(st.Decisions, known)
		for _, d := range store.Snapshot() {
			if err := d.Validate(); err != nil || !strings.HasPrefix(d.Target, "web/") || d.At.After(now.Add(decisions.MaxClockSkew)) {
				t.Fatalf("kept %+v (%v)", d, err)
			}
			if e, _ := json.Marshal(d); len(e) > decisions.MaxEncodedSize {
				t.Fatalf("kept %+v of %d bytes", d, len(e))
			}
		}
		out, err := json.Marshal(State{Node: "lb1", Decisions: store.Snapshot()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(bytes.NewReader(out)); err != nil {
			t.Fatalf("our state after the merge does not decode: %v", err)
		}
	})
}
