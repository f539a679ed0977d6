package uml

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeHost is a host whose candidates boot or fail as the test says.
type fakeHost struct {
	unavailable map[string]bool // Prepare fails
	boots       map[string]bool // Probe succeeds
	prepared    []string
	probed      []string
	binDir      string
}

func (f *fakeHost) prepare(_ context.Context, cand string) (Kernel, error) {
	f.prepared = append(f.prepared, cand)
	if f.unavailable[cand] {
		return Kernel{}, errors.New("archive unreachable")
	}
	bin := filepath.Join(f.binDir, cand)
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		return Kernel{}, err
	}
	return Kernel{Candidate: cand, Package: "pkg-" + cand, Binary: bin, ModRoot: "/m/" + cand}, nil
}

func (f *fakeHost) probe(_ context.Context, k Kernel) Probe {
	f.probed = append(f.probed, k.Candidate)
	if f.boots[k.Candidate] {
		return Probe{OK: true, Release: "rel-" + k.Candidate}
	}
	return Probe{Err: "kernel panic", Tail: "userspace - ptrace set fp regs failed, errno = 14\nKernel panic"}
}

func (f *fakeHost) chooser(t *testing.T, cache string, h Host) Chooser {
	f.binDir = t.TempDir()
	return Chooser{Host: h, Prepare: f.prepare, Probe: f.probe, Cache: cache, Logf: t.Logf}
}

func TestChooseOrder(t *testing.T) {
	amx := Host{Kernel: "6.18", CPU: "Intel", AMX: true}
	for _, tc := range []struct {
		name        string
		unavailable []string
		boots       []string
		force       string
		want        string   // chosen candidate; "" for an error
		probed      []string // in order
	}{
		{name: "debian12 boots", boots: []string{Debian12, SidPinned, SidNewest}, want: Debian12, probed: []string{Debian12}},
		{name: "AMX: debian12 panics, pinned boots", boots: []string{SidPinned, SidNewest}, want: SidPinned, probed: []string{Debian12, SidPinned}},
		{name: "pinned left the archive", unavailable: []string{SidPinned}, boots: []string{SidNewest}, want: SidNewest, probed: []string{Debian12, SidNewest}},
		{name: "nothing boots", unavailable: []string{SidPinned, SidNewest}, want: "", probed: []string{Debian12}},
		{name: "forced fallback where debian12 works", boots: []string{Debian12, SidPinned, SidNewest}, force: SidNewest, want: SidNewest, probed: []string{SidNewest}},
		{name: "forced kernel that panics", boots: []string{SidPinned}, force: Debian12, want: "", probed: []string{Debian12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeHost{unavailable: set(tc.unavailable), boots: set(tc.boots)}
			ch, err := f.chooser(t, "", amx).Choose(t.Context(), tc.force)
			if !slices.Equal(f.probed, tc.probed) {
				t.Errorf("probed %v, want %v", f.probed, tc.probed)
			}
			if tc.want == "" {
				if err == nil {
					t.Fatalf("chose %s, want an error", ch.Kernel.Candidate)
				}
				// The error carries the probe's console and the next step.
				for _, want := range []string{"ptrace set fp regs failed", "next step:", "AMX yes"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Kernel.Candidate != tc.want || ch.Kernel.Release != "rel-"+tc.want {
				t.Errorf("chose %+v, want %s", ch.Kernel, tc.want)
			}
			if tc.force != "" && !strings.Contains(ch.How, "forced by LAB_KERNEL="+tc.force) {
				t.Errorf("how = %q, want it to name the forcing variable", ch.How)
			}
			if !strings.Contains(ch.String(), ch.Kernel.Release) || !strings.Contains(ch.String(), ch.Kernel.Package) {
				t.Errorf("choice line %q lacks the release or the package", ch)
			}
		})
	}
}

func TestChooseRejectsUnknownCandidate(t *testing.T) {
	f := &fakeHost{}
	if _, err := f.chooser(t, "", Host{}).Choose(t.Context(), "debian11"); err == nil || !strings.Contains(err.Error(), "not a candidate") {
		t.Fatalf("err = %v, want not a candidate", err)
	}
	if len(f.prepared) != 0 {
		t.Errorf("prepared %v for an unknown candidate", f.prepared)
	}
}

// A choice is probed once per host: the next lab run reads the cache, a
// different host probes again, and a vanished binary is probed again.
func TestChooseCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "choice.json")
	h := Host{Kernel: "6.18", CPU: "AMD"}
	f := &fakeHost{boots: set([]string{Debian12})}
	c := f.chooser(t, cache, h)
	first, err := c.Choose(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Choose(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.probed) != 1 || again.Kernel != first.Kernel || !strings.Contains(again.How, "cached") {
		t.Errorf("second choice probed %v, got %+v (%s)", f.probed, again.Kernel, again.How)
	}
	// A forced candidate is cached apart from the automatic choice.
	f.boots[SidNewest] = true
	if ch, err := c.Choose(t.Context(), SidNewest); err != nil || ch.Kernel.Candidate != SidNewest {
		t.Fatalf("forced: %+v, %v", ch, err)
	}
	if ch, _ := c.Choose(t.Context(), ""); ch.Kernel.Candidate != Debian12 {
		t.Errorf("automatic choice after a forced one = %s", ch.Kernel.Candidate)
	}
	other := c
	other.Host.AMX = true
	if _, err := other.Choose(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if len(f.probed) != 3 {
		t.Errorf("another host reused the cache: probed %v", f.probed)
	}
	if err := os.Remove(first.Kernel.Binary); err != nil {
		t.Fatal(err)
	}
	f.probed = nil
	if _, err := other.Choose(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if len(f.probed) == 0 {
		t.Error("a cached kernel whose binary is gone was not probed again")
	}
}

func TestParseCPUInfo(t *testing.T) {
	in := "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu vme amx_bf16 amx_tile amx_int8\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu vme\n"
	model, amx := parseCPUInfo(bufio.NewScanner(strings.NewReader(in)))
	if model != "Intel(R) Xeon(R) Platinum 8480+" || !amx {
		t.Errorf("got %q amx=%v", model, amx)
	}
	_, amx = parseCPUInfo(bufio.NewScanner(strings.NewReader("flags\t: fpu amx_tilex\n")))
	if amx {
		t.Error("amx_tilex read as amx_tile")
	}
}

func TestGuestPath(t *testing.T) {
	for host, want := range map[string]string{
		"/tmp/co/labtests/.work/bin/guest":     "/mnt/lab/bin/guest",
		"/tmp/co/labtests/.work":               "/mnt/lab",
		"/usr/sbin/ipvsadm":                    "/usr/sbin/ipvsadm",
		"/tmp/co/labtests/.workshop/x":         "/tmp/co/labtests/.workshop/x",
		"/tmp/co/labtests/.work/../other/file": "/tmp/co/labtests/other/file",
	} {
		if got := GuestPath("/tmp/co/labtests/.work", filepath.Clean(host)); got != filepath.Clean(want) {
			t.Errorf("GuestPath(%s) = %s, want %s", host, got, want)
		}
	}
}

func TestInitScript(t *testing.T) {
	s := InitScript(Spec{
		Kernel: &Kernel{ModRoot: "/tmp/co/.work/kernels/sid/modroot"},
		Work:   "/tmp/co/.work", RunDir: "/tmp/co/.work/runs/x",
		Modules: []string{"veth", "ipv6"}, Script: "/mnt/lab/bin/guest run",
	})
	order := []string{
		"#!/bin/sh\n",
		"mount -t tmpfs tmpfs /mnt\n",
		"mount -t hostfs -o /tmp/co/.work none /mnt/lab",
		"mount -t hostfs -o /tmp/co/.work/runs/x none /mnt/out",
		// /tmp is hidden only once the checkout under it is mounted.
		"mount -t tmpfs tmpfs /tmp\n",
		"exec /usr/sbin/modprobe -d /mnt/lab/kernels/sid/modroot",
		"echo /run/modprobe > /proc/sys/kernel/modprobe",
		"lab_modprobe veth ipv6 ||",
		"/mnt/lab/bin/guest run",
		ExitLine + "$?",
		"poweroff -f\n",
	}
	at := 0
	for _, want := range order {
		i := strings.Index(s[at:], want)
		if i < 0 {
			t.Fatalf("init script lacks %q after offset %d:\n%s", want, at, s)
		}
		at += i + len(want)
	}
	// Built-in modules count as loaded.
	if !strings.Contains(s, "[ -d /sys/module/$1 ]") || !strings.Contains(s, "/proc/sys/net/ipv6") {
		t.Errorf("lab_have does not check /sys/module and /proc:\n%s", s)
	}
}

func TestProbeVerdicts(t *testing.T) {
	ok := "lab: guest kernel 7.2.7\numl-probe: release=7.2.7\n" + ExitLine + "0\nreboot: Power down\n"
	if rel, good := probeRelease(ok); !good || rel != "7.2.7" {
		t.Errorf("probeRelease(ok) = %q, %v", rel, good)
	}
	if !HaltedCleanly(ok) {
		t.Error("HaltedCleanly(ok) = false")
	}
	panicked := "Run /x/init.sh as init process\nuserspace - ptrace set fp regs failed, errno = 14\nKernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
	if _, good := probeRelease(panicked); good {
		t.Error("a panic passed the probe")
	}
	if why := probeFailure(panicked, errors.New("exit status 1")); !strings.Contains(why, "AMX") {
		t.Errorf("panic explained as %q, want the AMX hint", why)
	}
	noModule := "lab: module ip_vs is neither loaded nor built in\nlab: modules missing\n"
	if why := probeFailure(noModule, nil); !strings.Contains(why, "ip_vs") {
		t.Errorf("missing module explained as %q", why)
	}
}

func TestHaltedCleanly(t *testing.T) {
	for _, c := range []struct {
		console string
		want    bool
	}{
		{"lab: guest exited with status 0\nPowering off.\nreboot: System halted\n", true},
		{"lab: guest exited with status 0\nreboot: Power down\n", true},
		{"lab: guest exited with status 1\nreboot: System halted\n", false},
		{"lab: guest exited with status 0\n", false},
		{"reboot: System halted\nlab: guest exited with status 0\n", false},
	} {
		if got := HaltedCleanly(c.console); got != c.want {
			t.Errorf("HaltedCleanly(%q) = %v, want %v", c.console, got, c.want)
		}
	}
}

func set(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}
