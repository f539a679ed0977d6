package ipvs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SysctlDir is where the kernel exposes net.ipv4.vs.* for the current
// network namespace.
const SysctlDir = "/proc/sys/net/ipv4/vs"

// Sysctls are the integer IPVS settings director may manage. Others
// (est_cpulist, sync_threshold) take more than one number and are left
// to sysctl.conf.
var Sysctls = []string{
	"am_droprate", "amemthresh", "backup_only", "cache_bypass", "conn_reuse_mode",
	"conntrack", "drop_entry", "drop_packet", "est_nice", "expire_nodest_conn",
	"expire_quiescent_template", "ignore_tunneled", "lblc_expiration", "lblcr_expiration",
	"nat_icmp_send", "pmtu_disc", "run_estimation", "schedule_icmp", "secure_tcp",
	"sloppy_sctp", "sloppy_tcp", "snat_reroute", "sync_persist_mode", "sync_ports",
	"sync_qlen_max", "sync_refresh_period", "sync_retries", "sync_sock_size", "sync_version",
}

// DefaultSysctls make a drained or failed real server get no new
// connections. Without them the kernel hands a new connection whose client
// port matches an old entry (FIN_WAIT is the last state a DSR director
// sees, kept two minutes) to that entry's server, weight 0 or not:
//   - conn_reuse_mode 3 reschedules such reuse for DSR's FIN_WAIT entries too;
//   - expire_nodest_conn 1 reschedules it away from a weight-0 server and
//     expires entries of deleted servers instead of dropping their packets;
//   - expire_quiescent_template 1 does the same for persistence templates.
func DefaultSysctls() map[string]int {
	return map[string]int{"conn_reuse_mode": 3, "expire_nodest_conn": 1, "expire_quiescent_template": 1}
}

// KnownSysctl reports whether name is one of Sysctls.
func KnownSysctl(name string) bool {
	i := sort.SearchStrings(Sysctls, name)
	return i < len(Sysctls) && Sysctls[i] == name
}

// SysctlChange is one setting written: its value before and after.
type SysctlChange struct {
	Name     string
	Old, New int
}

// SetSysctls writes the wanted settings under dir (SysctlDir, or a
// directory of plain files in tests), skipping those already right, and
// returns what changed. It goes on past a failure so one bad setting
// does not hold back the others.
func SetSysctls(dir string, want map[string]int) ([]SysctlChange, error) {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	var changes []SysctlChange
	var errs []error
	for _, n := range names {
		if !KnownSysctl(n) {
			errs = append(errs, fmt.Errorf("sysctl net.ipv4.vs.%s: not an IPVS setting director manages", n))
			continue
		}
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("sysctl net.ipv4.vs.%s: %w", n, err))
			continue
		}
		old, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			errs = append(errs, fmt.Errorf("sysctl net.ipv4.vs.%s: read %q: %w", n, strings.TrimSpace(string(b)), err))
			continue
		}
		if old == want[n] {
			continue
		}
		// O_TRUNC without O_CREATE: a sysctl file always exists.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
		if err == nil {
			_, err = f.WriteString(strconv.Itoa(want[n]))
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sysctl net.ipv4.vs.%s = %d: %w", n, want[n], err))
			continue
		}
		changes = append(changes, SysctlChange{Name: n, Old: old, New: want[n]})
	}
	return changes, errors.Join(errs...)
}
