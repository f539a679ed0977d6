package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/control"
)

func socketFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("socket", config.DefaultControlSocket, "control socket `path` of the daemon")
}

func cmdState(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("state", "state [-json] [-socket path]\n\nState shows each VRRP instance (state, priority, master, last transition and why,\nadverts sent, received and dropped by reason), each sync group (its state and\nmembers) and each service's real servers.", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	st, err := control.NewClient(*sock).State(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, "director:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return 0
	}
	printState(stdout, st)
	return 0
}

func printState(w io.Writer, st control.State) {
	fmt.Fprintf(w, "director %s, config %s, up %s\n\n", st.Version, st.Config, time.Since(st.Started).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tVRID\tIFACE\tSTATE\tPRIO\tMASTER\tSINCE\tREASON\tSENT\tRECV\tDROPPED")
	for _, in := range st.Instances {
		since := "-"
		if !in.LastTransition.IsZero() {
			since = time.Since(in.LastTransition).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", in.Name, in.VRID, in.Interface, in.State, in.Priority,
			orDash(in.Master), since, in.LastReason, in.AdvertsSent, in.AdvertsRecv, drops(in.Drops))
	}
	tw.Flush()
	printTracks(w, st.Instances)
	if len(st.SyncGroups) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SYNC GROUP\tSTATE\tGATE\tMEMBERS")
		for _, g := range st.SyncGroups {
			ms := make([]string, len(g.Members))
			for i, m := range g.Members {
				ms[i] = m.Name + " " + m.State
				if m.Ready {
					ms[i] += " (ready)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.State, g.Gate, strings.Join(ms, ", "))
		}
		tw.Flush()
	}
	for _, in := range st.Instances {
		if c := in.Cloud; c != nil {
			fmt.Fprintf(w, "\n%s on EC2: instance %s, ENI %s, holding %t, verified %t, moves %d (in progress %d, failed %d), last move %s\n",
				in.Name, c.InstanceID, c.ENI, c.Holding, c.Verified, c.Moves, c.MovesInProgress, c.FailedMoves, orDash(c.LastMoveDuration))
			if c.LastError != "" {
				fmt.Fprintf(w, "  last error: %s\n", c.LastError)
			}
			for _, s := range c.Suspended {
				fmt.Fprintf(w, "  suspended: %s\n", s)
			}
		}
	}
	if p := st.Peer; p != nil {
		fmt.Fprintf(w, "\npeer %s (%s): ", p.Peer, orDash(p.PeerNode))
		switch {
		case p.LastContact.IsZero():
			fmt.Fprint(w, "never heard")
		default:
			fmt.Fprintf(w, "last heard %s ago", time.Since(p.LastContact).Round(time.Second))
		}
		if p.LastError != "" {
			fmt.Fprintf(w, ", last error: %s", p.LastError)
		}
		switch {
		case p.PeerHash == "":
		case p.HashMismatch:
			fmt.Fprintf(w, "\n  CONFIGURATION DIFFERS: ours %.12s, peer's %.12s", st.ConfigHash, p.PeerHash)
		default:
			fmt.Fprintf(w, "\n  configuration matches (%.12s)", st.ConfigHash)
		}
		fmt.Fprintln(w)
	}
	if r := st.Routing; r != nil {
		printRouting(w, r)
	}
	if len(st.Services) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVIRTUAL\tREAL SERVER\tWEIGHT\tCONFIGURED\tOVERRIDE\tHEALTH\tREASON")
	for _, s := range st.Services {
		for _, r := range s.RealServers {
			addr := r.Address
			if r.Registered {
				addr += " (registered)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Key, addr, r.Weight, r.ConfiguredWeight, orDash(r.Override), orDash(r.Health), r.Reason)
		}
	}
	tw.Flush()
}

// printTracks lists what each instance's priority follows: state, last
// result and the weight it applies now.
func printTracks(w io.Writer, ins []control.InstanceState) {
	some := false
	for _, in := range ins {
		some = some || len(in.Tracks) > 0
	}
	if !some {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tTRACK\tNAME\tSTATE\tWEIGHT\tAPPLIED\tRESULT")
	for _, in := range ins {
		for _, t := range in.Tracks {
			weight := strconv.Itoa(t.Weight)
			if t.Reverse {
				weight += " reverse"
			}
			applied := fmt.Sprintf("%+d", t.Applied)
			if t.Fault {
				applied = "FAULT"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, t.Kind, t.Name, t.State, weight, applied, orDash(t.Result))
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func drops(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

func cmdHandover(cmd string, args []string, stdout, stderr io.Writer) int {
	what := map[string]string{
		"failback": "Failback makes this node master of INSTANCE (all instances if none is named) now,\nas a one-time preemption, even with preempt: false. The current master hands\nover make-before-break. It waits for the outcome.",
		"failover": "Failover hands mastership of INSTANCE (all if none is named) to the peer,\nmake-before-break, and waits until the peer is master. This node does not\npreempt back until it is master again.",
	}[cmd]
	fs := newFlags(cmd, cmd+" [-socket path] [-timeout d] [INSTANCE]\n\n"+what, stderr)
	sock := socketFlag(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the outcome")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "director %s: at most one instance\n", cmd)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := control.NewClient(*sock)
	f := c.Failback
	if cmd == "failover" {
		f = c.Failover
	}
	if err := f(ctx, fs.Arg(0)); err != nil {
		fmt.Fprintf(stderr, "director %s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s done\n", cmd)
	return 0
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", "reload [-dry-run] [-socket path]\n\nReload makes the running daemon re-read its configuration file and apply the\ndifference (as SIGHUP does). An invalid file is refused and the running\nconfiguration stays. With -dry-run it prints the difference and applies nothing.", stderr)
	dry := fs.Bool("dry-run", false, "print the changes, apply nothing")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := control.NewClient(*sock).Reload(ctx, *dry)
	if err != nil {
		fmt.Fprintln(stderr, "director reload:", err)
		return 1
	}
	printChanges(stdout, r.Changes)
	return 0
}

func printChanges(w io.Writer, changes []string) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, c := range changes {
		fmt.Fprintln(w, c)
	}
}

// runningConfig fetches the daemon's configuration, or nil when no daemon
// answers: validate works without one.
func runningConfig(sock string) *config.Config {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	y, err := control.NewClient(sock).RunningConfig(ctx)
	if err != nil {
		return nil
	}
	cfg, err := config.Parse("running", y)
	if err != nil {
		return nil
	}
	return cfg
}

// cmdRealServer is drain, enable, disable and weight.
func cmdRealServer(cmd string, args []string, stdout, stderr io.Writer) int {
	what := map[string]string{
		"drain":   "RS\n\nDrain sets the real server's weight to 0: no new connections, the existing ones finish.",
		"disable": "RS\n\nDisable removes the real server from its services.",
		"enable":  "RS\n\nEnable undoes drain, disable and weight: health checks and the configuration decide again.",
		"weight":  "RS N\n\nWeight sets the real server's weight to N while its checks pass.",
	}[cmd]
	fs := newFlags(cmd, cmd+" [-socket path] "+what+"\n\nRS is ADDRESS:PORT (in every service) or SERVICE/ADDRESS:PORT. The decision\nsurvives reloads and restarts; director state shows it.", stderr)
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	want := 1
	if cmd == "weight" {
		want = 2
	}
	if fs.NArg() != want {
		fs.Usage()
		return 2
	}
	w := 0
	if cmd == "weight" {
		n, err := strconv.Atoi(fs.Arg(1))
		if err != nil {
			fmt.Fprintf(stderr, "director weight: %q is not a number\n", fs.Arg(1))
			return 2
		}
		w = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := control.NewClient(*sock).RealServer(ctx, fs.Arg(0), cmd, w); err != nil {
		fmt.Fprintf(stderr, "director %s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s done\n", cmd, fs.Arg(0))
	return 0
}
