package uml

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Kernel is a guest kernel ready to boot.
type Kernel struct {
	Candidate string `json:"candidate"` // which candidate it is (see Candidates)
	Package   string `json:"package"`   // where it came from, with its version
	Binary    string `json:"binary"`    // host path of linux.uml
	// ModRoot is a directory whose lib/modules holds the kernel's modules,
	// as modprobe -d wants it.
	ModRoot string `json:"mod_root"`
	Release string `json:"release,omitempty"` // uname -r in the guest, once probed
}

// The candidates, in the order Choose tries them. Debian 12's comes first:
// it is the system's own package (no download), and where it boots it is
// the cheapest guest for a Go program (a health check cost 622 µs of CPU
// inside it against 2,078 µs inside 7.2 on the same AMD host, because UML
// traps every clock read). It panics at its first process on CPUs with AMX,
// as does Debian 13's 6.12 (which is therefore no candidate). Debian
// unstable's UML boots there: first the version that was proven (pinned),
// then whatever unstable has now, in case the pinned one has left the
// archive.
const (
	Debian12  = "debian12"
	SidPinned = "sid-pinned"
	SidNewest = "sid-newest"
)

// Candidates lists the candidate names in the order they are tried.
func Candidates() []string { return []string{Debian12, SidPinned, SidNewest} }

// EnvKernel names the environment variable that forces a candidate
// ("auto", or empty, tries them in order).
const EnvKernel = "LAB_KERNEL"

// Probe is the outcome of booting a candidate with a trivial init.
type Probe struct {
	Candidate string        `json:"candidate"`
	OK        bool          `json:"ok"`
	Release   string        `json:"release,omitempty"`
	Took      time.Duration `json:"took"`
	Err       string        `json:"error,omitempty"`
	// Tail is the end of the console, for a failed probe.
	Tail string `json:"tail,omitempty"`
}

// Choice is the kernel the lab boots on this host and how it was chosen.
type Choice struct {
	Host   Host    `json:"host"`
	Kernel Kernel  `json:"kernel"`
	How    string  `json:"how"`
	Probes []Probe `json:"probes"` // every probe that led here, in order
}

// String is the line every lab run prints about its guest kernel.
func (c Choice) String() string {
	return fmt.Sprintf("guest kernel %s (%s), %s", c.Kernel.Release, c.Kernel.Package, c.How)
}

// Preparer gets a candidate's kernel onto the host (installing or
// downloading it), and Prober boots one with a trivial init. Choose takes
// both so that its logic is tested with fakes.
type (
	Preparer func(ctx context.Context, candidate string) (Kernel, error)
	Prober   func(ctx context.Context, k Kernel) Probe
)

// Chooser picks the guest kernel.
type Chooser struct {
	Host    Host
	Prepare Preparer
	Probe   Prober
	// Cache is a file that keeps the last choice for this host, so that
	// only the first lab run on a machine pays for the probes; "" keeps
	// nothing.
	Cache string
	Logf  func(format string, args ...any)
}

// Choose returns the kernel to boot: the forced candidate (force is a
// candidate name) or the first candidate, in order, that prepares and
// boots. A cached choice for the same host and candidate is reused when
// its binary is still there.
func (c Chooser) Choose(ctx context.Context, force string) (*Choice, error) {
	cands := Candidates()
	how := "the first candidate that booted on this host"
	switch force {
	case "", "auto":
		force = ""
	default:
		if !isCandidate(force) {
			return nil, fmt.Errorf("%s=%q: not a candidate; use one of %s, or auto", EnvKernel, force, strings.Join(Candidates(), ", "))
		}
		cands = []string{force}
		how = "forced by " + EnvKernel + "=" + force
	}
	if ch, ok := c.cached(force); ok {
		ch.How += " (cached probe)"
		return ch, nil
	}
	ch := &Choice{Host: c.Host}
	var failed []string
	for i, cand := range cands {
		k, err := c.Prepare(ctx, cand)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ch.Probes = append(ch.Probes, Probe{Candidate: cand, Err: "prepare: " + err.Error()})
			failed = append(failed, fmt.Sprintf("%s: cannot be had: %v", cand, err))
			c.logf("lab: guest kernel %s cannot be had: %v", cand, err)
			continue
		}
		p := c.Probe(ctx, k)
		p.Candidate = cand
		ch.Probes = append(ch.Probes, p)
		if !p.OK {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failed = append(failed, fmt.Sprintf("%s (%s) did not boot: %s\n%s", cand, k.Package, p.Err, indent(p.Tail)))
			next := "no candidate left"
			if i+1 < len(cands) {
				next = "trying " + cands[i+1]
			}
			c.logf("lab: guest kernel %s (%s) did not boot on this host (%s): %s; %s", cand, k.Package, c.Host, p.Err, next)
			continue
		}
		k.Release = p.Release
		ch.Kernel = k
		ch.How = how
		if i > 0 && force == "" {
			ch.How = fmt.Sprintf("%s (%d before it failed)", how, i)
		}
		c.save(ch, force)
		return ch, nil
	}
	return nil, fmt.Errorf("no guest kernel boots on this host (%s):\n%s\nnext step: %s", c.Host, strings.Join(failed, "\n"), nextStep(c.Host, force))
}

func nextStep(h Host, force string) string {
	switch {
	case force != "":
		return fmt.Sprintf("unset %s to let the lab try every candidate", EnvKernel)
	case h.AMX:
		return "this CPU has AMX, where only Debian unstable's UML boots: let the lab reach Debian's archive (apt-get download user-mode-linux libc6 from sid) and install patchelf"
	default:
		return "install Debian 12's user-mode-linux and kmod (apt-get install user-mode-linux kmod), or let the lab reach Debian's archive for unstable's"
	}
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func isCandidate(s string) bool {
	for _, c := range Candidates() {
		if c == s {
			return true
		}
	}
	return false
}

func (c Chooser) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// cacheEntry is the cache file: the last choice per forced candidate ("" for
// auto), valid for one host.
type cacheEntry struct {
	HostKey string             `json:"host_key"`
	Choices map[string]*Choice `json:"choices"`
}

func (c Chooser) readCache() cacheEntry {
	var e cacheEntry
	if c.Cache == "" {
		return e
	}
	b, err := os.ReadFile(c.Cache)
	if err != nil || json.Unmarshal(b, &e) != nil || e.HostKey != c.Host.key() {
		return cacheEntry{}
	}
	return e
}

func (c Chooser) cached(force string) (*Choice, bool) {
	ch := c.readCache().Choices[force]
	if ch == nil || ch.Kernel.Binary == "" || ch.Kernel.Release == "" {
		return nil, false
	}
	if _, err := os.Stat(ch.Kernel.Binary); err != nil {
		return nil, false
	}
	return ch, true
}

func (c Chooser) save(ch *Choice, force string) {
	if c.Cache == "" {
		return
	}
	e := c.readCache()
	e.HostKey = c.Host.key()
	if e.Choices == nil {
		e.Choices = map[string]*Choice{}
	}
	e.Choices[force] = ch
	if err := writeJSON(c.Cache, e); err != nil {
		c.logf("lab: cannot keep the kernel choice: %v", err)
	}
}

// writeJSON writes v to path through a temporary file and a rename, so a
// concurrent reader sees the old file or the new one.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	return nil
}
