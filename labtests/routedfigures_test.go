//go:build lab

package labtests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// TestRoutedFigures (LAB_FIGURES=1): the routed mode's performance
// figures. Detection: the time from a director's death (SIGKILL and its
// link cut) to the router dropping its next hop, with BFD at 100 ms x 3
// (director's speaker, and the FRR stand-in beside it) and without BFD
// (hold 9 s, keepalive 3 s), five deaths each. Scaling:
// answered requests a second through three, two and one director(s), as
// a ratio to one. The guest has one CPU for the client, the router, the
// directors and the real servers alike, so the ratio shows what more
// directors cost or save on that CPU, not a real fleet's capacity.
func TestRoutedFigures(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	const cycles = 5
	var fig strings.Builder
	fmt.Fprintln(&fig, RanOn(t))
	// BFD with director's own speaker (GoBGP) and, for comparison, with
	// the FRR stand-in announcing (bfdd on both ends); and no BFD.
	for _, row := range []struct {
		label     string
		announcer string
		bfd       bool
	}{
		{"BFD 100ms x3 (director)", RoutedAnnouncer, true},
		{"BFD 100ms x3 (FRR stand-in)", lp.AnnounceFRR, true},
		{"no BFD, hold 9s (director)", RoutedAnnouncer, false},
	} {
		label := row.label
		t.Run(strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(label), func(t *testing.T) {
			p := RoutedParams(row.announcer)
			p.Routed.BFD, p.Routed.BFDMultiplier = row.bfd, 3
			res := Run(t, RoutedDetectPlan(name(t), p, cycles))
			var ds []time.Duration
			for i := range cycles {
				ms, err := strconv.Atoi(strings.TrimSpace(execOut(t, res, fmt.Sprintf("%s-%d", LabelDetect, i))))
				if err != nil {
					t.Fatalf("cycle %d: %v", i, err)
				}
				ds = append(ds, time.Duration(ms)*time.Millisecond)
			}
			slices.Sort(ds)
			line := fmt.Sprintf("  %-28s director death to next hop gone: median %v, min %v, max %v (%d deaths: %v)", label, ds[len(ds)/2], ds[0], ds[len(ds)-1], cycles, ds)
			t.Log(line)
			fmt.Fprintln(&fig, line)
		})
	}
	t.Run("scaling", func(t *testing.T) {
		p := RoutedParams(RoutedAnnouncer)
		const clients, d = 8, 5 * time.Second
		res := Run(t, RoutedScalePlan(name(t), p, clients, d))
		rate := map[int]lp.LoadResult{}
		for _, n := range []int{3, 2, 1} {
			var lr lp.LoadResult
			if err := json.Unmarshal([]byte(execOut(t, res, LabelLoadPrefx+strconv.Itoa(n))), &lr); err != nil {
				t.Fatalf("load through %d: %v", n, err)
			}
			rate[n] = lr
		}
		for _, n := range []int{1, 2, 3} {
			lr := rate[n]
			line := fmt.Sprintf("  scaling, %d clients for %v: %d director(s): %.0f requests/s (%.2f x one), %d failed, real servers %v",
				clients, d, n, lr.Rate, lr.Rate/rate[1].Rate, lr.Failed, lr.Responders)
			t.Log(line)
			fmt.Fprintln(&fig, line)
		}
	})
	t.Logf("\n%s", fig.String())
	// go test runs in the package directory: labtests/.work/routed-figure.txt.
	out := filepath.Join(".work", "routed-figure.txt")
	if err := os.WriteFile(out, []byte(fig.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", out, err)
	}
}
