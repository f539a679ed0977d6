// Command ipvsbench times IPVS programming in a User-Mode Linux guest (the
// host kernel has no IPVS): the director's batched reconciler beside the
// one-request-per-write path and `ipvsadm -R` of the same rules, one
// weight change through Reconciler.SetWeight, and full reads
// (`ipvsadm -Ln`, the reconciler's own, `director status -n`).
//
// On the host, as root:
//
//	go run ./cmd/ipvsbench [-services 1000] [-dests 10] [-work DIR]
//
// boots the guest, runs itself inside (-guest) and prints the figures;
// the guest writes them to DIR/results.json. Compare figures of one run:
// UML timings are noisy from run to run.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/dataplane"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/labtests/uml"
)

func main() {
	var o options
	flag.IntVar(&o.services, "services", 1000, "virtual services")
	flag.IntVar(&o.dests, "dests", 10, "real servers per service")
	flag.IntVar(&o.samples, "samples", 21, "samples of each single-weight timing")
	flag.BoolVar(&o.old, "old", true, "also time the one-request-per-write path")
	flag.StringVar(&o.work, "work", "", "host: run directory for the guest's files and results (default labtests/.work/perf under the repository)")
	flag.DurationVar(&o.limit, "limit", 20*time.Minute, "host: longest the guest may run")
	flag.BoolVar(&o.guest, "guest", false, "run the measurements here (inside the guest)")
	flag.StringVar(&o.out, "out", "", "guest: directory for results.json")
	flag.StringVar(&o.director, "director", "", "guest: director binary whose `status -n` to time")
	flag.Parse()
	var err error
	if o.guest {
		err = guest(o)
	} else {
		err = host(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipvsbench:", err)
		os.Exit(1)
	}
}

type options struct {
	services, dests, samples int
	old, guest               bool
	work, out, director      string
	limit                    time.Duration
}

// Results is what one guest run measured. Durations are in seconds.
type Results struct {
	Services, Dests, Writes int
	Kernel                  string

	BatchedApply  float64 // (a) Apply from empty, batched
	BatchedVerify string  // "ok" when a full read matched the desired table
	ReaderFull    float64 // Netlink.Services on the full table
	ResyncNoop    float64 // Resync of the converged table: full read and diff

	SetWeight      Stats // (d) SetWeight on the full table
	SetWeightSmall Stats // SetWeight on a 10 x 10 table
	CachedApply    Stats // Apply of the whole desired state, one weight changed, CacheFor set
	// DataplaneWeight is a weight change through the daemon's own path:
	// an override into internal/dataplane, Desired, the diff and the
	// write, timed from the call to the end of the loop's kernel pass.
	DataplaneWeight Stats
	DataplanePath   string  // how the passes were written: "SetWeight" when all took the fast path
	UncachedApply   float64 // the same without CacheFor: a full read each time

	DeleteAll float64 // Apply of nothing, without draining: batched deletes

	// Checks of Batch against the real kernel: each failure attributed to
	// its write, none lost, in a mixed batch and in a batch that all fails.
	BatchErrnos   string
	BatchAllFail  string
	AllFailWrites int

	OldApply float64 `json:",omitempty"` // (b) Apply from empty, one request per write

	IpvsadmRestore    float64 // (c) ipvsadm -R of the same rules
	IpvsadmRestoreOK  string
	IpvsadmList       float64 // (e) ipvsadm -Ln, median of StatusSamples
	IpvsadmListMax    float64
	IpvsadmListLines  int
	StatusSamples     int
	DirectorStatus    float64 `json:",omitempty"` // director status -n, median, alternating with ipvsadm
	DirectorStatusMax float64 `json:",omitempty"`
	DirectorStatusOK  string  `json:",omitempty"`
}

// Stats summarizes timings in milliseconds.
type Stats struct {
	N                 int
	Min, Median, Max  float64
	SamplesMillis     []float64
	VerifiedInKernel  bool
	KernelReadsPerSet int `json:",omitempty"`
}

func statsOf(ds []time.Duration) Stats {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	s := Stats{N: len(ms), SamplesMillis: ms}
	if len(ms) == 0 {
		return s
	}
	sorted := slices.Clone(ms)
	slices.Sort(sorted)
	s.Min, s.Median, s.Max = sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1]
	return s
}

// table is n services of m real servers, as in ipvs's own benchmarks:
// VIPs 10.1.x.y:80, real servers 10.2.j.1:80, wrr, direct routing.
func table(n, m int, weight int32) []ipvs.Service {
	out := make([]ipvs.Service, 0, n)
	for i := range n {
		k := ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
		s := ipvs.Service{Key: k, Scheduler: "wrr"}
		for j := range m {
			s.Destinations = append(s.Destinations, ipvs.Destination{
				Addr: netip.AddrFrom4([4]byte{10, 2, byte((j + 1) >> 8), byte(j + 1)}), Port: 80, Weight: weight, Forward: ipvs.Route,
			})
		}
		out = append(out, s)
	}
	return out
}

// rules renders t for ipvsadm -R.
func rules(t []ipvs.Service) string {
	var b strings.Builder
	for _, s := range t {
		vip := netip.AddrPortFrom(s.Key.Addr, s.Key.Port)
		fmt.Fprintf(&b, "-A -t %s -s %s\n", vip, s.Scheduler)
		for _, d := range s.Destinations {
			fmt.Fprintf(&b, "-a -t %s -r %s -g -w %d\n", vip, d.AddrPort(), d.Weight)
		}
	}
	return b.String()
}

// unbatched hides Netlink's Batch, so the Reconciler writes one request
// at a time, as before batching.
type unbatched struct{ ipvs.Kernel }

func guest(o options) (err error) {
	if o.out == "" {
		return errors.New("-guest needs -out")
	}
	res := Results{Services: o.services, Dests: o.dests, Writes: o.services * (1 + o.dests)}
	defer func() {
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(filepath.Join(o.out, "results.json"), append(b, '\n'), 0o644)
		}
		err = errors.Join(err, jerr)
		fmt.Println(summary(res))
	}()
	var uts syscall.Utsname
	if syscall.Uname(&uts) == nil {
		res.Kernel = cstr(uts.Release[:])
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	nl, err := ipvs.NewNetlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	if err := flush(); err != nil {
		return err
	}
	res.AllFailWrites = 5000
	res.BatchErrnos, res.BatchAllFail = checkBatch(nl, res.AllFailWrites)
	if err := flush(); err != nil {
		return err
	}

	// SetWeight on a small table, for comparison with the big one.
	small := table(10, 10, 1)
	rec, err := ipvs.New(ipvs.Config{Kernel: nl, DrainTimeout: -1, Logger: quiet})
	if err != nil {
		return err
	}
	if _, err := rec.Apply(ctx, small); err != nil {
		return fmt.Errorf("small table: %w", err)
	}
	if res.SetWeightSmall, err = timeSetWeight(ctx, rec, nl, small[5], o.samples); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}

	// (a) Batched Apply from empty.
	want := table(o.services, o.dests, 1)
	rec, err = ipvs.New(ipvs.Config{Kernel: nl, DrainTimeout: -1, CacheFor: time.Hour, Logger: quiet})
	if err != nil {
		return err
	}
	t0 := time.Now()
	r, err := rec.Apply(ctx, want)
	res.BatchedApply = time.Since(t0).Seconds()
	if err != nil || r.Created != res.Writes {
		return fmt.Errorf("batched apply: %v (%v)", err, r)
	}
	t0 = time.Now()
	got, err := nl.Services()
	res.ReaderFull = time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	res.BatchedVerify = verify(got, want)

	// (d) One weight change.
	mid := want[len(want)/2]
	if res.SetWeight, err = timeSetWeight(ctx, rec, nl, mid, o.samples); err != nil {
		return err
	}
	var cached []time.Duration
	for i := range o.samples {
		w := int32(10 + i%2)
		want[len(want)/2].Destinations[0].Weight = w
		t0 := time.Now()
		r, err := rec.Apply(ctx, want)
		cached = append(cached, time.Since(t0))
		if err != nil || r.Updated != 1 {
			return fmt.Errorf("cached apply: %v (%v)", err, r)
		}
	}
	res.CachedApply = statsOf(cached)
	res.CachedApply.VerifiedInKernel = weightIs(nl, mid.Key, mid.Destinations[0].AddrPort(), want[len(want)/2].Destinations[0].Weight)

	t0 = time.Now()
	if r, err := rec.Resync(ctx); err != nil || r.Changed() {
		return fmt.Errorf("resync: %v (%v)", err, r)
	}
	res.ResyncNoop = time.Since(t0).Seconds()

	plain, err := ipvs.New(ipvs.Config{Kernel: nl, DrainTimeout: -1, Logger: quiet})
	if err != nil {
		return err
	}
	if _, err := plain.Apply(ctx, want); err != nil {
		return err
	}
	want[len(want)/2].Destinations[0].Weight = 42
	t0 = time.Now()
	if r, err := plain.Apply(ctx, want); err != nil || r.Updated != 1 {
		return fmt.Errorf("uncached apply: %v (%v)", err, r)
	}
	res.UncachedApply = time.Since(t0).Seconds()

	t0 = time.Now()
	if r, err := plain.Apply(ctx, nil); err != nil || r.Deleted != o.services {
		return fmt.Errorf("delete all: %v (%v)", err, r)
	}
	res.DeleteAll = time.Since(t0).Seconds()
	if err := flush(); err != nil {
		return err
	}
	if res.DataplaneWeight, res.DataplanePath, err = timeDataplane(ctx, nl, o); err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}

	// (b) One request per write.
	if o.old {
		old, err := ipvs.New(ipvs.Config{Kernel: unbatched{nl}, DrainTimeout: -1, Logger: quiet})
		if err != nil {
			return err
		}
		t0 = time.Now()
		r, err := old.Apply(ctx, table(o.services, o.dests, 1))
		res.OldApply = time.Since(t0).Seconds()
		if err != nil || r.Created != res.Writes {
			return fmt.Errorf("unbatched apply: %v (%v)", err, r)
		}
		if err := flush(); err != nil {
			return err
		}
	}

	// (c) ipvsadm -R, then (e) ipvsadm -Ln and director status -n.
	t0 = time.Now()
	cmd := exec.Command("ipvsadm", "-R")
	cmd.Stdin = strings.NewReader(rules(table(o.services, o.dests, 1)))
	out, err := cmd.CombinedOutput()
	res.IpvsadmRestore = time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("ipvsadm -R: %w: %s", err, out)
	}
	if got, err := nl.Services(); err != nil {
		res.IpvsadmRestoreOK = err.Error()
	} else {
		res.IpvsadmRestoreOK = verify(got, table(o.services, o.dests, 1))
	}
	// ipvsadm -Ln and director status -n alternate, so that both meet the
	// same guest; the medians are compared.
	const statusSamples = 5
	res.StatusSamples = statusSamples
	if o.director != "" {
		// Warm director's binary: its first read over hostfs is not
		// what is measured (ipvsadm's is warm from -R).
		exec.Command(o.director, "version").Run()
	}
	var ipvsadmT, directorT []time.Duration
	res.DirectorStatusOK = "ok"
	for range statusSamples {
		t0 = time.Now()
		out, err = exec.Command("ipvsadm", "-Ln").Output()
		ipvsadmT = append(ipvsadmT, time.Since(t0))
		if err != nil {
			return fmt.Errorf("ipvsadm -Ln: %w", err)
		}
		res.IpvsadmListLines = strings.Count(string(out), "\n")
		if o.director == "" {
			continue
		}
		var stderr strings.Builder
		cmd := exec.Command(o.director, "status", "-n")
		cmd.Stderr = &stderr
		t0 = time.Now()
		dout, err := cmd.Output()
		directorT = append(directorT, time.Since(t0))
		switch {
		case err != nil:
			first, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
			res.DirectorStatusOK = fmt.Sprintf("failed: %v: %s", err, first)
		case string(dout) != string(out):
			res.DirectorStatusOK = "output differs from ipvsadm -Ln"
		}
	}
	st := statsOf(ipvsadmT)
	res.IpvsadmList, res.IpvsadmListMax = st.Median/1000, st.Max/1000
	if len(directorT) > 0 {
		st = statsOf(directorT)
		res.DirectorStatus, res.DirectorStatusMax = st.Median/1000, st.Max/1000
	} else {
		res.DirectorStatusOK = ""
	}
	return flush()
}

// checkBatch sends batches whose answers are known in advance and reports
// "ok" or what differed.
func checkBatch(nl *ipvs.Netlink, n int) (mixed, allFail string) {
	a := ipvs.Service{Key: ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.9.0.1"), Port: 80}, Scheduler: "rr"}
	missing := ipvs.ServiceKey{Family: 4, Protocol: ipvs.TCP, Addr: netip.MustParseAddr("10.9.0.2"), Port: 80}
	x := ipvs.Destination{Addr: netip.MustParseAddr("10.2.0.1"), Port: 80, Weight: 1, Forward: ipvs.Route}
	y := ipvs.Destination{Addr: netip.MustParseAddr("10.2.0.2"), Port: 80, Weight: 1, Forward: ipvs.Route}
	ws := []ipvs.Write{
		{Kind: ipvs.OpCreateService, Service: a},
		{Kind: ipvs.OpCreateDestination, Service: a, Dest: x},
		{Kind: ipvs.OpCreateDestination, Service: a, Dest: x},
		{Kind: ipvs.OpCreateDestination, Service: ipvs.Service{Key: missing}, Dest: x},
		{Kind: ipvs.OpUpdateDestination, Service: a, Dest: y},
		{Kind: ipvs.OpCreateService, Service: a},
		{Kind: ipvs.OpDeleteService, Service: a},
	}
	want := []error{nil, nil, syscall.EEXIST, syscall.ESRCH, syscall.ENOENT, syscall.EEXIST, nil}
	mixed = "ok"
	for i, err := range nl.Batch(ws) {
		if !errors.Is(err, want[i]) || (want[i] == nil && err != nil) {
			mixed = fmt.Sprintf("write %d (%s): %v, want %v", i, ws[i].Kind, err, want[i])
			break
		}
	}
	ws = ws[:0]
	for i := range n {
		d := x
		d.Port = uint16(1000 + i)
		ws = append(ws, ipvs.Write{Kind: ipvs.OpCreateDestination, Service: ipvs.Service{Key: missing}, Dest: d})
	}
	allFail = "ok"
	for i, err := range nl.Batch(ws) {
		if err != syscall.ESRCH {
			allFail = fmt.Sprintf("write %d: %v, want ESRCH", i, err)
			break
		}
	}
	return mixed, allFail
}

// timeSetWeight flips the weight of svc's first real server samples
// times and checks the kernel holds the last one.
func timeSetWeight(ctx context.Context, rec *ipvs.Reconciler, nl *ipvs.Netlink, svc ipvs.Service, samples int) (Stats, error) {
	dst := svc.Destinations[0].AddrPort()
	var ds []time.Duration
	var w int32
	for i := range samples {
		w = int32(2 + i%2)
		t0 := time.Now()
		r, err := rec.SetWeight(ctx, svc.Key, dst, w)
		ds = append(ds, time.Since(t0))
		if err != nil || r.Updated != 1 {
			return Stats{}, fmt.Errorf("SetWeight: %v (%v)", err, r)
		}
	}
	s := statsOf(ds)
	s.VerifiedInKernel = weightIs(nl, svc.Key, dst, w)
	return s, nil
}

func weightIs(nl *ipvs.Netlink, key ipvs.ServiceKey, dst netip.AddrPort, w int32) bool {
	s, err := nl.Service(key)
	if err != nil {
		return false
	}
	i := slices.IndexFunc(s.Destinations, func(d ipvs.Destination) bool { return d.AddrPort() == dst })
	return i >= 0 && s.Destinations[i].Weight == w
}

// verify compares a kernel read with the desired table.
func verify(got, want []ipvs.Service) string {
	line := func(s ipvs.Service) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", s.Key, s.Scheduler)
		ds := slices.Clone(s.Destinations)
		slices.SortFunc(ds, func(a, b ipvs.Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
		for _, d := range ds {
			fmt.Fprintf(&b, " %s/%s/%d", d.AddrPort(), d.Forward, d.Weight)
		}
		return b.String()
	}
	render := func(t []ipvs.Service) []string {
		var out []string
		for _, s := range t {
			out = append(out, line(s))
		}
		slices.Sort(out)
		return out
	}
	g, w := render(got), render(want)
	if len(g) != len(w) {
		return fmt.Sprintf("%d services in the kernel, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			return fmt.Sprintf("kernel %q, want %q", g[i], w[i])
		}
	}
	return "ok"
}

func flush() error {
	if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
		return fmt.Errorf("ipvsadm -C: %w: %s", err, out)
	}
	return nil
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func summary(r Results) string {
	var b strings.Builder
	ratio := func(a, b float64) string {
		if a <= 0 || b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fx", a/b)
	}
	fmt.Fprintf(&b, "ipvsbench: %d services x %d real servers (%d writes), kernel %s\n", r.Services, r.Dests, r.Writes, r.Kernel)
	fmt.Fprintf(&b, "  (a) director Apply from empty, batched   %8.3f s  (table check: %s)\n", r.BatchedApply, r.BatchedVerify)
	if r.OldApply > 0 {
		fmt.Fprintf(&b, "  (b) director Apply, one request/write    %8.3f s  (%s the batched time)\n", r.OldApply, ratio(r.OldApply, r.BatchedApply))
	}
	fmt.Fprintf(&b, "  (c) ipvsadm -R                           %8.3f s  (%s the batched time; table check: %s)\n", r.IpvsadmRestore, ratio(r.IpvsadmRestore, r.BatchedApply), r.IpvsadmRestoreOK)
	fmt.Fprintf(&b, "  (d) SetWeight, full table    median %7.2f ms  min %.2f  max %.2f  (n=%d, in kernel: %v)\n", r.SetWeight.Median, r.SetWeight.Min, r.SetWeight.Max, r.SetWeight.N, r.SetWeight.VerifiedInKernel)
	fmt.Fprintf(&b, "      SetWeight, 10x10 table   median %7.2f ms  min %.2f  max %.2f\n", r.SetWeightSmall.Median, r.SetWeightSmall.Min, r.SetWeightSmall.Max)
	fmt.Fprintf(&b, "      Apply, CacheFor set      median %7.2f ms  min %.2f  max %.2f  (in kernel: %v)\n", r.CachedApply.Median, r.CachedApply.Min, r.CachedApply.Max, r.CachedApply.VerifiedInKernel)
	fmt.Fprintf(&b, "      daemon's path (dataplane) median %7.2f ms  min %.2f  max %.2f  (n=%d, written by %s, in kernel: %v)\n", r.DataplaneWeight.Median, r.DataplaneWeight.Min, r.DataplaneWeight.Max, r.DataplaneWeight.N, r.DataplanePath, r.DataplaneWeight.VerifiedInKernel)
	fmt.Fprintf(&b, "      Apply, no cache (re-read) %8.3f s\n", r.UncachedApply)
	fmt.Fprintf(&b, "  (e) ipvsadm -Ln                          %8.3f s  max %.3f  (median of %d, %d lines)\n", r.IpvsadmList, r.IpvsadmListMax, r.StatusSamples, r.IpvsadmListLines)
	if r.DirectorStatusOK != "" {
		ratio := 0.0
		if r.IpvsadmList > 0 {
			ratio = r.DirectorStatus / r.IpvsadmList
		}
		fmt.Fprintf(&b, "      director status -n                   %8.3f s  max %.3f  (%s; %.2fx ipvsadm)\n", r.DirectorStatus, r.DirectorStatusMax, r.DirectorStatusOK, ratio)
	}
	fmt.Fprintf(&b, "      director full read (Services)        %8.3f s\n", r.ReaderFull)
	fmt.Fprintf(&b, "      director Resync, nothing to do       %8.3f s\n", r.ResyncNoop)
	fmt.Fprintf(&b, "      director Apply of nothing (deletes)  %8.3f s\n", r.DeleteAll)
	fmt.Fprintf(&b, "  checks: errnos in a mixed batch: %s; %d failing writes in one batch: %s\n", r.BatchErrnos, r.AllFailWrites, r.BatchAllFail)
	return strings.TrimRight(b.String(), "\n")
}

// host boots a UML guest (the lab's kernel, through labtests/uml) that
// runs this program with -guest.
func host(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: the guest needs it")
	}
	for _, bin := range []string{"/usr/sbin/ipvsadm", "/usr/sbin/modprobe"} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s missing (apt-get install kmod ipvsadm): %w", bin, err)
		}
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return errors.New("not in the repository")
	}
	labWork := filepath.Join(strings.TrimSpace(string(top)), "labtests", ".work")
	work := cmp.Or(o.work, filepath.Join(labWork, "perf"))
	if work, err = filepath.Abs(work); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	os.Remove(filepath.Join(work, "results.json"))
	ctx := context.Background()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	choice, err := uml.Select(ctx, labWork, logf)
	if err != nil {
		return err
	}
	fmt.Printf("lab: %s\nlab: %s\n", choice.Host, choice)

	// This very program, copied where the guest sees it (work is mounted
	// at uml.GuestOut).
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(self, filepath.Join(work, "ipvsbench")); err != nil {
		return err
	}
	args := fmt.Sprintf("-guest -out %s -services %d -dests %d -samples %d -old=%v", uml.GuestOut, o.services, o.dests, o.samples, o.old)
	if buildDirector(work) != "" {
		args += " -director " + uml.GuestOut + "/director"
	}
	script := fmt.Sprintf(`ip link set lo up
# Real servers need a unicast route.
ip link add bench0 type dummy && ip link set bench0 up && ip addr add 10.255.255.254/8 dev bench0
%s/ipvsbench %s`, uml.GuestOut, args)
	console := filepath.Join(work, "console.log")
	fmt.Fprintf(os.Stderr, "ipvsbench: booting the guest (console: %s)\n", console)
	err = uml.Boot(ctx, uml.Spec{
		Kernel: &choice.Kernel, Work: labWork, RunDir: work, Mem: "1024M", Limit: o.limit,
		Modules: []string{"ip_vs", "ip_vs_wrr", "ip_vs_rr", "dummy"}, Script: script,
	})
	b, rerr := os.ReadFile(filepath.Join(work, "results.json"))
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("no results (see %s): %w", console, rerr))
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	fmt.Printf("guest kernel: %s\n", choice.Kernel.Release)
	fmt.Println(summary(res))
	fmt.Printf("results: %s\n", filepath.Join(work, "results.json"))
	if log, _ := os.ReadFile(console); !strings.Contains(string(log), uml.ExitLine+"0") {
		return fmt.Errorf("guest run failed, see %s", console)
	}
	return nil
}

// buildDirector builds cmd/director for `director status -n`, if this is
// the repository and it builds; "" otherwise.
func buildDirector(work string) string {
	bin := filepath.Join(work, "director")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/director")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "ipvsbench: no director binary, skipping director status: %v %s\n", err, cmp.Or(strings.TrimSpace(string(out)), ""))
		return ""
	}
	return bin
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// countingProgrammer tells the dataplane's fast path (SetWeight) from a
// full Apply, for the report.
type countingProgrammer struct {
	*ipvs.Reconciler
	applies, setWeights atomic.Int64
}

func (c *countingProgrammer) Apply(ctx context.Context, desired []ipvs.Service) (ipvs.Result, error) {
	c.applies.Add(1)
	return c.Reconciler.Apply(ctx, desired)
}

func (c *countingProgrammer) SetWeight(ctx context.Context, key ipvs.ServiceKey, dst netip.AddrPort, w int32) (ipvs.Result, error) {
	c.setWeights.Add(1)
	return c.Reconciler.SetWeight(ctx, key, dst, w)
}

// benchConfig is the table of table(n, m, 1) as a director configuration.
func benchConfig(n, m int, stateFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: bench\nipvs:\n  state_file: %s\n  resync_interval: 1h\n  drain_timeout: 0s\nservices:\n", stateFile)
	for i, s := range table(n, m, 1) {
		fmt.Fprintf(&b, "  - name: s%d\n    vip: %s\n    port: 80\n    scheduler: wrr\n    real_servers:\n", i, s.Key.Addr)
		for _, d := range s.Destinations {
			fmt.Fprintf(&b, "      - {address: %s, port: 80, weight: 1}\n", d.Addr)
		}
	}
	return b.String()
}

// timeDataplane programs the table through the daemon's own dataplane
// (internal/dataplane over the real kernel) and times weight changes made
// the way the daemon makes them: an input changes (here an operator
// weight, which takes the same road as a health change: Desired, the
// diff, the write), timed from the call to the end of the loop's pass.
func timeDataplane(ctx context.Context, nl *ipvs.Netlink, o options) (Stats, string, error) {
	dir, err := os.MkdirTemp("", "ipvsbench-dp")
	if err != nil {
		return Stats{}, "", err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Parse("ipvsbench.yaml", []byte(benchConfig(o.services, o.dests, filepath.Join(dir, "owned.json"))))
	if err != nil {
		return Stats{}, "", err
	}
	quiet := slog.New(slog.DiscardHandler)
	rec, err := ipvs.New(ipvs.Config{Kernel: nl, StatePath: cfg.IPVS.StateFile, CacheFor: 59 * time.Minute, Logger: quiet})
	if err != nil {
		return Stats{}, "", err
	}
	prog := &countingProgrammer{Reconciler: rec}
	passes := make(chan error, 16)
	dp, err := dataplane.New(cfg, dataplane.Options{
		Programmer: prog, Logger: quiet,
		OnPass: func(_ ipvs.Result, _ time.Duration, err error) { passes <- err },
	})
	if err != nil {
		return Stats{}, "", err
	}
	defer dp.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { dp.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	wait := func() error {
		select {
		case err := <-passes:
			return err
		case <-time.After(2 * time.Minute):
			return errors.New("no kernel pass within 2 minutes")
		}
	}
	if err := wait(); err != nil { // the first pass creates the table
		return Stats{}, "", err
	}
	mid := table(o.services, o.dests, 1)[o.services/2]
	dst := mid.Destinations[0].AddrPort()
	target := fmt.Sprintf("s%d/%s", o.services/2, dst)
	applies := prog.applies.Load()
	var ds []time.Duration
	w := 0
	for i := range o.samples {
		w = 10 + i%2
		t0 := time.Now()
		if err := dp.SetOverride(target, "weight", w); err != nil {
			return Stats{}, "", err
		}
		if err := wait(); err != nil {
			return Stats{}, "", err
		}
		ds = append(ds, time.Since(t0))
	}
	st := statsOf(ds)
	st.VerifiedInKernel = weightIs(nl, mid.Key, dst, int32(w))
	path := fmt.Sprintf("SetWeight (%d calls, %d Apply)", prog.setWeights.Load(), prog.applies.Load()-applies)
	if prog.applies.Load() != applies {
		path = fmt.Sprintf("Apply %d times, SetWeight %d", prog.applies.Load()-applies, prog.setWeights.Load())
	}
	return st, path, nil
}
