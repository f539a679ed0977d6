// Package uml is the lab's one way to boot a User-Mode Linux guest: it
// finds a guest kernel that boots on this host (probing candidates with a
// trivial init), keeps the proof in a cache, and boots guests with the
// host's root file system read-only and the lab's work directory mounted
// inside, whatever the checkout's path.
//
// Everything that boots a guest uses it: the lab scenarios, the demo,
// ipvsbench and the ipvsadm capture (through cmd/labboot).
package uml

import (
	"bufio"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is what the lab reports about the machine it runs on: the guest
// kernel that boots depends on it (Debian 12's and 13's UML panic on CPUs
// with AMX).
type Host struct {
	Kernel string // uname -r
	CPU    string // model name
	AMX    bool   // the CPU lists amx_tile
}

// ReadHost reads the host's kernel release and CPU.
func ReadHost() Host {
	var h Host
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return h
	}
	defer f.Close()
	h.CPU, h.AMX = parseCPUInfo(bufio.NewScanner(f))
	return h
}

func parseCPUInfo(sc *bufio.Scanner) (model string, amx bool) {
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		case "flags":
			if !amx {
				amx = hasWord(v, "amx_tile")
			}
		}
	}
	return model, amx
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// String is the one line every lab run prints about its host.
func (h Host) String() string {
	amx := "no"
	if h.AMX {
		amx = "yes"
	}
	return "host kernel " + h.Kernel + ", CPU " + h.CPU + ", AMX " + amx
}

// key identifies the host for the probe cache: a different host kernel or
// CPU may boot a different set of guest kernels.
func (h Host) key() string {
	return h.Kernel + "|" + h.CPU + "|" + map[bool]string{true: "amx", false: "-"}[h.AMX]
}
