package checkproc

import (
	"io"
	"log/slog"
	"testing"

	"github.com/director-lb/director/checks"
)

// FuzzDecodeFromWorker: whatever comes down the pipe, decoding and
// handling it never panics, and a decoded message has exactly one part.
func FuzzDecodeFromWorker(f *testing.F) {
	for _, s := range []string{
		`{"reply":{"seq":1,"statuses":[{"id":{"Server":"10.0.0.1:80","Spec":"{}"},"status":{"Health":1,"Rounds":3}}]}}`,
		`{"result":{"id":{"Server":"10.0.0.1:80","Spec":"x"},"result":{"OK":true,"Reason":"HTTP 200"},"status":{"Health":1}}}`,
		`{"event":{"id":{"Server":"[::1]:80","Spec":"x"},"prev":0,"status":{"Health":2}}}`,
		`{"log":{"time":"2026-12-07T06:00:00Z","level":4,"msg":"m","attrs":[["k","v"]]}}`,
		`{"reply":{"seq":2,"err":"bad"},"log":{"msg":"two"}}`,
		`{}`, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeFromWorker(b)
		if err != nil {
			return
		}
		n := 0
		for _, set := range []bool{m.Reply != nil, m.Result != nil, m.Event != nil, m.Log != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("decoded a message with %d parts", n)
		}
		c := &Client{log: slog.New(slog.NewTextHandler(io.Discard, nil)), statuses: map[checks.ID]mirrored{}, seq: 1}
		c.cfg.OnEvent = func(checks.Event) {}
		c.handle(1, m)
	})
}
