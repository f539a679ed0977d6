//go:build lab

package labtests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/vrrp"
)

// figureCycles is the number of failovers per cell; LAB_FIGURE_CYCLES
// changes it (1 for a quick look).
func figureCycles() int {
	if n, err := strconv.Atoi(os.Getenv("LAB_FIGURE_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 5
}

// figureRow is one implementation's measurements at one advert interval,
// a value per cycle.
type figureRow struct {
	fine, http, vip, arp []time.Duration
	// age is how long before the cut lb1's last advert was heard; react
	// is from that advert to the VIP on lb2: the backup's Master_Down
	// timer and its takeover, whatever the cut's phase.
	age, react []time.Duration
	err        string
}

// TestLabFigures measures cut failovers at VRRPv3 adverts of 1 s, 100,
// 50 and 20 ms, for keepalived and director in one run (one boot each),
// five cycles per interval: the client's longest outage by the fine UDP
// probe and by the HTTP prober, and the takeover (cut → VIP on lb2 →
// the client's ARP entry on lb2's MAC). It prints a table with the host
// and the guest kernel. It is a benchmark (about five minutes), so it runs
// only with LAB_FIGURES=1.
func TestLabFigures(t *testing.T) {
	if os.Getenv("LAB_FIGURES") != "1" {
		t.Skip("benchmark; run with LAB_FIGURES=1")
	}
	cycles := figureCycles()
	table := map[lp.Impl]map[time.Duration]*figureRow{}
	for _, impl := range impls {
		cells := map[time.Duration]*figureRow{}
		table[impl] = cells
		for _, a := range FigureAdverts {
			cells[a] = &figureRow{err: "failed"}
		}
		t.Run(string(impl), func(t *testing.T) {
			res := Run(t, FailoverFiguresPlan(name(t), impl, FigureAdverts, cycles))
			if res.AdvertsDropped > 0 {
				t.Fatalf("the advert record overflowed (%d dropped): the ages would be wrong", res.AdvertsDropped)
			}
			for _, a := range FigureAdverts {
				c := &figureRow{}
				for i := range cycles {
					run, ok := res.ProbeOf(FigureCycleLabel(a, i))
					cut, okc := res.Step(FigureCutLabel(a, i))
					if !ok || !okc || run.Fine == nil {
						t.Fatalf("%v cycle %d: no probe run or cut step", a, i)
					}
					fine, http := run.Fine.Stats(), run.Stats()
					if !fine.Recovered || !http.Recovered {
						t.Errorf("%v cycle %d: client never recovered: fine %s; HTTP %s", a, i, fine, http)
					}
					tk := res.Takeover(cut.Start, lp.LB2)
					if !tk.HasVIP || !tk.HasARP {
						t.Errorf("%v cycle %d: takeover incomplete: %s", a, i, tk)
					}
					last, okl := lp.LastAdvert(res.Adverts, lp.LB1, cut.End)
					if !okl {
						t.Fatalf("%v cycle %d: no advert of lb1 heard before the cut (%d adverts recorded)", a, i, len(res.Adverts))
					}
					c.age = append(c.age, cut.End.Sub(last))
					c.react = append(c.react, cut.Start.Add(tk.VIP).Sub(last))
					c.fine = append(c.fine, fine.LongestOutage)
					c.http = append(c.http, http.LongestOutage)
					c.vip = append(c.vip, tk.VIP)
					c.arp = append(c.arp, tk.ARP)
					t.Logf("%s %v cycle %d: fine outage %v (%d of %d lost, slowest answer %v), HTTP outage %v, %s; lb1's last advert %v before the cut, %v before the VIP on lb2", impl, a, i,
						fine.LongestOutage.Round(time.Millisecond), fine.Failed, fine.Total, run.Fine.Slowest().Round(time.Millisecond),
						http.LongestOutage.Round(time.Millisecond), tk, c.age[i].Round(time.Millisecond), c.react[i].Round(time.Millisecond))
				}
				cells[a] = c
			}
		})
	}
	text := figuresTable(RanOn(t), cycles, table)
	t.Logf("\n%s", text)
	fmt.Print(text)
	// go test runs in the package directory: labtests/.work/figures.txt.
	out := filepath.Join(".work", "figures.txt")
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Errorf("write %s: %v", out, err)
	}
}

func figuresTable(ranOn string, cycles int, table map[lp.Impl]map[time.Duration]*figureRow) string {
	var b strings.Builder
	fmt.Fprintln(&b, ranOn)
	fmt.Fprintf(&b, "cut of the master, VRRPv3, median (max) of %d, ms; fine probe: UDP every %v, %v timeout; HTTP: every %v, %v timeout\n",
		cycles, lp.FineInterval, lp.FineTimeout, lp.ProbeInterval, lp.ProbeTimeout)
	fmt.Fprintf(&b, "cuts spread over one advert interval; last advert: lb1's last advert heard on the segment, its age at the cut, and from it to the VIP on lb2 (RFC 5798's Master_Down_Interval for lb2 at priority %d: %.3f × advert, then the takeover)\n",
		figureBackupPriority, rfcMasterDown(time.Second, figureBackupPriority).Seconds())
	fmt.Fprintf(&b, "%-7s %-11s %-15s %-15s %-15s %-15s %-15s %-15s\n", "advert", "impl", "client outage", "VIP on lb2", "client ARP", "HTTP outage", "advert age", "advert → VIP")
	for _, a := range FigureAdverts {
		for _, impl := range impls {
			c := table[impl][a]
			if c.err != "" {
				fmt.Fprintf(&b, "%-7v %-11s %s\n", a, impl, c.err)
				continue
			}
			fmt.Fprintf(&b, "%-7v %-11s %-15s %-15s %-15s %-15s %-15s %-15s\n", a, impl, medMax(c.fine), medMax(c.vip), medMax(c.arp), medMax(c.http), medMax(c.age), medMax(c.react))
		}
		k, d := table[lp.Keepalived][a], table[lp.Director][a]
		if k.err == "" && d.err == "" && median(k.fine) > 0 {
			fmt.Fprintf(&b, "%-7s %-11s %.2f\n", "", "dir/ka", median(d.fine).Seconds()/median(k.fine).Seconds())
		}
	}
	return b.String()
}

// figureBackupPriority is lb2's priority in the figures.
var figureBackupPriority = lp.DefaultParams(lp.Director).Priority[lp.LB2]

// rfcMasterDown is RFC 5798's Master_Down_Interval for a backup of priority
// prio hearing adverts every a, as director's VRRP machine computes it.
func rfcMasterDown(a time.Duration, prio int) time.Duration {
	return vrrp.NewMachine(vrrp.MachineConfig{Version: vrrp.V3, Priority: uint8(prio), Interval: a}).MasterDownInterval()
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// medMax renders "median (max)" in whole milliseconds.
func medMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	ms := func(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }
	return fmt.Sprintf("%d (%d)", ms(median(ds)), ms(slices.Max(ds)))
}

func figureCell(ds []time.Duration, err string) string {
	if err != "" {
		return err
	}
	return fmt.Sprintf("%v (%v)", median(ds).Round(time.Millisecond), slices.Max(ds).Round(time.Millisecond))
}
