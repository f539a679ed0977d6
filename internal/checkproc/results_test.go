package checkproc

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/testwait"
)

func TestOutcomesNoteChangesOnly(t *testing.T) {
	o := newOutcomes()
	id := checks.Check{Server: netip.MustParseAddrPort("10.0.0.1:80"), Spec: checks.Spec{Type: checks.TypeTCP}}.ID()
	fail := checks.Result{Reason: "connect: connection refused"}
	steps := []struct {
		r    checks.Result
		want bool
	}{
		{fail, true},  // the first result
		{fail, false}, // the same again
		{checks.Result{OK: true, Reason: "connected"}, true}, // passes now
		{checks.Result{OK: true, Reason: "connected"}, false},
		{checks.Result{Reason: "timeout after 1s (connect)", TimedOut: true}, true}, // fails otherwise
	}
	for i, s := range steps {
		if got := o.note(id, s.r); got != s.want {
			t.Errorf("step %d: note = %v, want %v", i, got, s.want)
		}
	}
	o.keep(nil) // the check is gone: a re-added one starts afresh
	if !o.note(id, fail) {
		t.Error("a check's first result after it was removed and added again was not news")
	}
}

// workerRig runs Serve in process on pipes and counts what it sends.
type workerRig struct {
	in      *io.PipeWriter
	mu      sync.Mutex
	results int
	rounds  map[checks.ID]int // from the last reply
	seq     int64
}

func newWorkerRig(t *testing.T) *workerRig {
	t.Helper()
	toR, toW := io.Pipe()
	fromR, fromW := io.Pipe()
	r := &workerRig{in: toW, rounds: map[checks.ID]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Serve(toR, fromW, slog.LevelError)
		fromW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(fromR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m, err := decodeFromWorker(sc.Bytes())
			if err != nil {
				continue
			}
			r.mu.Lock()
			switch {
			case m.Result != nil:
				r.results++
			case m.Reply != nil:
				for _, s := range m.Reply.Statuses {
					r.rounds[s.ID] = s.Status.Rounds
				}
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { toW.Close(); <-done; fromR.Close() })
	return r
}

func (r *workerRig) set(t *testing.T, cs []checks.Check, results bool) {
	t.Helper()
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	b, err := json.Marshal(toWorker{Seq: seq, Set: cs, Results: results})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.in.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

func (r *workerRig) counts(id checks.ID) (results, rounds int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results, r.rounds[id]
}

// A check that fails the same way round after round costs the daemon one
// result message, not one per round, unless the daemon asks for all
// (metrics); then every round's result comes.
func TestWorkerSendsRepeatedResultsOnlyWhenAsked(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close() // refused from now on: the same failure every round
	c := checks.Check{Server: addr, Spec: checks.Spec{Type: checks.TypeTCP, Interval: 100 * time.Millisecond,
		Timeout: 80 * time.Millisecond, Rise: 1, Fall: 1}}
	r := newWorkerRig(t)
	r.set(t, []checks.Check{c}, false)
	testwait.Eventually(t, 20*time.Second, "five rounds", func() bool {
		r.set(t, []checks.Check{c}, false) // each set's reply reports the rounds
		_, rounds := r.counts(c.ID())
		return rounds >= 5
	})
	// Results wait up to resultDelay for company: one more set's reply
	// comes after any result still held back.
	results, rounds := r.counts(c.ID())
	if results != 1 {
		t.Fatalf("%d result messages for %d identical failing rounds, want 1 (the first)", results, rounds)
	}
	r.set(t, []checks.Check{c}, true)
	testwait.Eventually(t, 20*time.Second, "every round's result once asked", func() bool {
		n, _ := r.counts(c.ID())
		return n >= 4
	})
}
