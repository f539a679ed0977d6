//go:build lab

package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// figureCase is one row of the figures table.
type figureCase struct {
	name    string
	version int
	advert  time.Duration
	how     Failure
}

var figureCases = []figureCase{
	{"cut, VRRPv2 1s", 2, time.Second, FailCut},
	{"cut, VRRPv3 100ms", 3, 100 * time.Millisecond, FailCut},
	{"cut, VRRPv3 20ms", 3, 20 * time.Millisecond, FailCut},
	{"SIGTERM, VRRPv2 1s", 2, time.Second, FailTerm},
}

const figureCycles = 3

// TestLabFigures measures the client's longest outage when the master
// fails, for keepalived and director under the same conditions in one run,
// and prints a table with the ratio. It is a benchmark (about four
// minutes), so it runs only with LAB_FIGURES=1.
func TestLabFigures(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	type cell struct {
		outages []time.Duration
		err     string
	}
	table := map[string]map[lp.Impl]*cell{}
	for _, c := range figureCases {
		table[c.name] = map[lp.Impl]*cell{}
		for _, impl := range impls {
			p := lp.DefaultParams(impl)
			p.Version, p.Advert = c.version, lp.Duration(c.advert)
			cl := &cell{}
			table[c.name][impl] = cl
			t.Run(safeName(c.name)+"/"+string(impl), func(t *testing.T) {
				res := Run(t, FiguresPlan(name(t), p, c.how, figureCycles))
				for i := range figureCycles {
					run, ok := res.ProbeOf(CycleLabel(i))
					if !ok {
						t.Fatalf("no probe for cycle %d", i)
					}
					st := run.Stats()
					if !st.Recovered {
						t.Errorf("cycle %d: client never recovered: %s", i, st)
					}
					cl.outages = append(cl.outages, st.LongestOutage)
				}
				t.Logf("%s %s: outages %v", c.name, impl, cl.outages)
			})
			if len(cl.outages) < figureCycles {
				cl.err = "failed"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintln(&b, RanOn(t))
	fmt.Fprintf(&b, "longest client outage per failover, median (max) of %d, requests every 10 ms, 100 ms timeout\n", figureCycles)
	fmt.Fprintf(&b, "%-20s %-18s %-18s %s\n", "case", "keepalived", "director", "director/keepalived")
	for _, c := range figureCases {
		k, d := table[c.name][lp.Keepalived], table[c.name][lp.Director]
		ratio := "-"
		if km, dm := median(k.outages), median(d.outages); k.err == "" && d.err == "" && km > 0 {
			ratio = fmt.Sprintf("%.2f", dm.Seconds()/km.Seconds())
		}
		fmt.Fprintf(&b, "%-20s %-18s %-18s %s\n", c.name, figureCell(k.outages, k.err), figureCell(d.outages, d.err), ratio)
	}
	t.Logf("\n%s", b.String())
	fmt.Print(b.String())
	// go test runs in the package directory: labtests/.work/figures.txt.
	out := filepath.Join(".work", "figures.txt")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", out, err)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func figureCell(ds []time.Duration, err string) string {
	if err != "" {
		return err
	}
	return fmt.Sprintf("%v (%v)", median(ds).Round(time.Millisecond), slices.Max(ds).Round(time.Millisecond))
}
