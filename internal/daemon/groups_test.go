package daemon

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/director-lb/director/internal/testwait"
)

// groupYAML is a service group over two real servers on loopback: 127.0.0.1:1
// refuses connections (its check fails), 10.0.0.22 is unchecked.
const groupYAML = `
control_socket: %s
notify_fifo: FIFO
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24, 10.0.0.10/24, 10.0.0.11/24]}
ipvs: {state_file: STATE}
services:
  - name: VSG_1
    scheduler: rr
    members:
      - {vip: 10.0.0.100, port: 80}
      - {vip: 10.0.0.10-11, port: 1}
      - {fwmark: 9}
    real_servers:
      - {address: 127.0.0.1, port: 1, weight: 2, checks: [{type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}]}
      - {address: 10.0.0.22, port: 80, weight: 4}
`

// The daemon programs one virtual service per member of a group, with the
// same real servers and weights, shows the group as one service, and names
// it in the FIFO as keepalived does.
func TestServiceGroupInTheKernel(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "notify.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened before the daemon starts, so that no line is dropped.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	yaml := strings.NewReplacer("FIFO", fifo, "STATE", filepath.Join(dir, "ipvs.json")).Replace(groupYAML)
	h := start(t, yaml)

	kernel := func() string {
		var out []string
		for _, s := range h.e.kernel.Snapshot() {
			var ds []string
			for _, d := range s.Destinations {
				ds = append(ds, fmt.Sprintf("%s=%d", d.AddrPort(), d.Weight))
			}
			slices.Sort(ds)
			out = append(out, fmt.Sprintf("%s %v", s.Key, ds))
		}
		slices.Sort(out)
		return strings.Join(out, "; ")
	}
	// The checked server fails (nothing listens on 127.0.0.1:1) and is
	// drained everywhere; the unchecked one keeps its weight everywhere.
	// Direct-routed, each is a destination of the member's port (0 for
	// the mark), as keepalived programs a group.
	want := "FWM 9 [10.0.0.22:0=4 127.0.0.1:0=0]; TCP 10.0.0.100:80 [10.0.0.22:80=4 127.0.0.1:80=0]; " +
		"TCP 10.0.0.10:1 [10.0.0.22:1=4 127.0.0.1:1=0]; TCP 10.0.0.11:1 [10.0.0.22:1=4 127.0.0.1:1=0]"
	testwait.Eventually(t, patience, "four virtual services, 127.0.0.1:1 drained", func() bool { return kernel() == want })

	st := h.d.State()
	if len(st.Services) != 1 || st.Services[0].Key != "TCP 10.0.0.100:80 +3" || len(st.Services[0].Members) != 4 {
		t.Errorf("state services = %+v, want the group once with its four members", st.Services)
	}
	br := bufio.NewReader(rd)
	var got []string
	testwait.Eventually(t, patience, "the FIFO line of the failed server", func() bool {
		if line, err := br.ReadString('\n'); err == nil {
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
		return slices.Contains(got, "RS [127.0.0.1]:tcp:1 [VSG_1]:0 DOWN")
	})

	// A reload that drops a member removes its virtual service only.
	if _, err := h.apply(strings.Replace(yaml, "      - {fwmark: 9}\n", "", 1)); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, patience, "the fwmark member gone", func() bool {
		k := kernel()
		return !strings.Contains(k, "FWM 9") && strings.Count(k, "TCP ") == 3
	})
}
