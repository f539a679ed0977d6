package labplan

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as "1.5s" so plans
// and results stay readable.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Impl names the VRRP implementation run on a load balancer node.
type Impl string

// Implementations the lab knows how to configure and start.
const (
	Director   Impl = "director"
	Keepalived Impl = "keepalived"
)

// Params are the VRRP settings of one scenario.
type Params struct {
	// Version is 2 or 3.
	Version int `json:"version"`
	// Advert is the advertisement interval: whole seconds for version 2,
	// centiseconds for version 3.
	Advert  Duration `json:"advert"`
	Unicast bool     `json:"unicast,omitempty"`
	Preempt bool     `json:"preempt"`
	// Priority and Impl are keyed by node name (LB1, LB2).
	Priority map[string]int  `json:"priority"`
	Impl     map[string]Impl `json:"impl"`
	// IPVS, when set, gives both nodes the lab's IPVS services.
	IPVS *IPVS `json:"ipvs,omitempty"`
	// EC2 gives each director instance an ec2 block pointing at the fake
	// EC2 region in host AWS, which the guest then runs.
	EC2 bool `json:"ec2,omitempty"`
	// Idle, when set, gives both nodes the idle-footprint services
	// instead of IPVS's (see Idle).
	Idle *Idle `json:"idle,omitempty"`
	// Track gives both nodes a tracking script (and maintenance file),
	// for the HAProxy pair (see Track).
	Track *Track `json:"track,omitempty"`
	// Hooks gives director nodes a slow notify_master hook and a notify
	// FIFO (see Hooks); keepalived nodes ignore it.
	Hooks *Hooks `json:"hooks,omitempty"`
	// Gateway makes the pair a gateway between the shared segment and
	// the inside one (a NAT pair's shape): a second instance on eth1
	// holds InsideVIP4, in one sync group with the first (see gateway.go).
	Gateway bool `json:"gateway,omitempty"`
	// AllowedSources gives director nodes allowed_sources: [the other
	// node] (multicast); keepalived has no such setting.
	AllowedSources bool `json:"allowed_sources,omitempty"`
	// VMAC puts each instance's VIPs on a macvlan with the VRRP virtual
	// MAC (keepalived's use_vmac).
	VMAC bool `json:"vmac,omitempty"`
	// Routed replaces the VRRP pair by three active directors behind a
	// BGP router's ECMP (see routed.go).
	Routed *Routed `json:"routed,omitempty"`
	// RTPriority gives director nodes rt_priority (realtime scheduling of
	// the daemon's threads); keepalived nodes ignore it.
	RTPriority int `json:"rt_priority,omitempty"`
	// WatchAdverts records the IPv4 VRRP adverts the client hears
	// (Results.Adverts), with the kernel's receive times.
	WatchAdverts bool `json:"watch_adverts,omitempty"`
}

// DefaultParams is VRRPv3 every 100 ms over multicast, lb1 at priority 150
// and lb2 at 100, preemption on, impl on both nodes.
func DefaultParams(impl Impl) Params {
	return Params{
		Version:  3,
		Advert:   Duration(100 * time.Millisecond),
		Preempt:  true,
		Priority: map[string]int{LB1: 150, LB2: 100},
		Impl:     map[string]Impl{LB1: impl, LB2: impl},
	}
}

// Validate reports settings that one of the implementations could not
// express, before a guest is booted for nothing.
func (p Params) Validate() error {
	var errs []error
	a := p.Advert.D()
	switch p.Version {
	case 2:
		if a < time.Second || a%time.Second != 0 || a > 255*time.Second {
			errs = append(errs, fmt.Errorf("VRRPv2 advert %v: must be 1..255 whole seconds", a))
		}
	case 3:
		if a < 10*time.Millisecond || a%(10*time.Millisecond) != 0 || a > 40950*time.Millisecond {
			errs = append(errs, fmt.Errorf("VRRPv3 advert %v: must be 10ms..40.95s in centiseconds", a))
		}
	default:
		errs = append(errs, fmt.Errorf("VRRP version %d: want 2 or 3", p.Version))
	}
	if p.IPVS != nil {
		if err := p.IPVS.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Idle != nil {
		if err := p.Idle.Validate(); err != nil {
			errs = append(errs, err)
		}
		if p.IPVS != nil {
			errs = append(errs, errors.New("idle and ipvs are exclusive"))
		}
	}
	if p.Gateway && (p.EC2 || p.IPVS != nil || p.Idle != nil) {
		errs = append(errs, errors.New("a gateway pair has neither EC2, IPVS nor idle services"))
	}
	if p.VMAC && p.EC2 {
		errs = append(errs, errors.New("VMAC and EC2 are exclusive: EC2 moves addresses, not MACs"))
	}
	if p.EC2 && !p.Unicast {
		errs = append(errs, errors.New("EC2 needs unicast VRRP"))
	}
	if p.Routed != nil {
		if err := p.Routed.validate(p); err != nil {
			errs = append(errs, err)
		}
		for _, n := range p.LBs() {
			if p.Impl[n] != Director {
				errs = append(errs, fmt.Errorf("routed: %s runs %q; only director has a routed mode", n, p.Impl[n]))
			}
		}
	}
	for _, n := range p.LBs() {
		if p.EC2 && p.Impl[n] != Director {
			errs = append(errs, fmt.Errorf("EC2: %s runs %q; only director moves VIPs through EC2", n, p.Impl[n]))
		}
		if pr := p.Priority[n]; pr < 1 || pr > 254 {
			errs = append(errs, fmt.Errorf("%s priority %d: want 1..254", n, pr))
		}
		switch p.Impl[n] {
		case Director, Keepalived:
		default:
			errs = append(errs, fmt.Errorf("%s implementation %q: want %q or %q", n, p.Impl[n], Director, Keepalived))
		}
	}
	return errors.Join(errs...)
}

// Describe is a short label such as "v3/100ms/multicast/keepalived+director".
func (p Params) Describe() string {
	if r := p.Routed; r != nil {
		bfd := "no BFD"
		if r.BFD {
			bfd = fmt.Sprintf("BFD 100ms x%d", r.multiplier())
		}
		sched := "rr"
		if p.IPVS != nil {
			sched = p.IPVS.scheduler()
		}
		return fmt.Sprintf("routed/%s/%s/%s/sync=%t", r.Announcer, bfd, sched, p.IPVS != nil && p.IPVS.Sync)
	}
	mode := "multicast"
	if p.Unicast {
		mode = "unicast"
	}
	impl := string(p.Impl[LB1])
	if p.Impl[LB2] != p.Impl[LB1] {
		impl += "+" + string(p.Impl[LB2])
	}
	return fmt.Sprintf("v%d/%v/%s/%s", p.Version, p.Advert, mode, impl)
}

// Node is a load balancer as the guest sees it: which daemon to run and the
// configuration file (a name inside the run directory) to give it.
type Node struct {
	Name   string `json:"name"`
	Impl   Impl   `json:"impl"`
	Config string `json:"config"`
	// Variants maps a variant name (Plan.Variants) to its configuration
	// file, for use_config steps.
	Variants map[string]string `json:"variants,omitempty"`
}

// Paths are absolute paths as seen inside the guest: the lab's work
// directory is mounted at uml.GuestWork, the run directory at Out.
type Paths struct {
	// Out is where the run directory is mounted read-write in the guest.
	Out         string `json:"out"`
	GuestBin    string `json:"guest_bin"`
	DirectorBin string `json:"director_bin,omitempty"`
	// DirectorStatus is true when DirectorBin has the status command
	// (an ipvsadm -Ln lookalike); status steps fall back to ipvsadm.
	DirectorStatus bool `json:"director_status,omitempty"`
	// EC2FakeBin is cmd/ec2fake, for plans with Params.EC2.
	EC2FakeBin string `json:"ec2fake_bin,omitempty"`
}

// Plan is everything the guest program needs; the guest starts with an empty
// environment, so nothing may come from anywhere else.
type Plan struct {
	Name   string `json:"name"`
	Params Params `json:"params"`
	Nodes  []Node `json:"nodes"`
	Steps  []Step `json:"steps"`
	// Timeout caps the whole step list inside the guest.
	Timeout Duration `json:"timeout"`
	// Modules are loaded before the topology is built; empty means
	// DefaultModules.
	Modules []string `json:"modules,omitempty"`
	// Sysctls maps a host name to /proc/sys keys ("net/ipv4/neigh/eth0/...")
	// and values, set once its eth0 exists.
	Sysctls map[string]map[string]string `json:"sysctls,omitempty"`
	// Variants are other parameter sets whose configurations are written
	// next to the main ones; a use_config step makes a node's next start
	// use one (to restart a daemon with a changed configuration).
	Variants map[string]Params `json:"variants,omitempty"`
	// Files are written into the run directory before boot, by name, for
	// steps to read (Paths.Out + "/" + name in the guest).
	Files map[string]string `json:"-"`
	// Configs, when set for a node, is that node's configuration file as
	// written, instead of one rendered from Params (whose Impl still says
	// which daemon reads it): a keepalived.conf written by hand, or the
	// director.yaml the importer made of it.
	Configs map[string]string `json:"-"`
	Paths   Paths             `json:"paths"`
}

// DefaultModules are the UML kernel modules every scenario needs.
func DefaultModules() []string {
	return []string{"veth", "bridge", "ipv6", "nf_tables"}
}

// IPVSModules are loaded on top of DefaultModules when a plan configures
// IPVS. The core is loaded up front (schedulers still load on demand) so
// that a daemon's first netlink request finds the family.
func IPVSModules() []string { return []string{"ip_vs", "ip_vs_rr"} }

// ModuleList is what the guest's init loads for p.
func (p Plan) ModuleList() []string {
	mods := p.Modules
	if len(mods) == 0 {
		mods = DefaultModules()
	}
	if p.Params.IPVS != nil {
		mods = append(append([]string(nil), mods...), IPVSModules()...)
	}
	if p.Params.Routed != nil {
		// vip0 of the FRR stand-in; the routed services' scheduler.
		mods = append(append([]string(nil), mods...), "dummy", "ip_vs_mh")
	}
	return mods
}

// Node returns the node called name.
func (p Plan) Node(name string) (Node, bool) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// StepKind names what a step does. The guest keeps one handler per kind.
type StepKind string

// Step kinds.
const (
	KindStart         StepKind = "start"          // start Node's daemon
	KindRestart       StepKind = "restart"        // stop Node's daemon if running, start it again
	KindSignal        StepKind = "signal"         // send Signal (TERM, KILL or HUP) to Node's daemon
	KindWaitExit      StepKind = "wait_exit"      // wait up to Duration for Node's daemon to exit
	KindWaitVIP       StepKind = "wait_vip"       // wait up to Duration until Node's eth0 holds the VIP
	KindWaitNoVIP     StepKind = "wait_no_vip"    // wait up to Duration until Node's eth0 lost the VIP
	KindWaitSole      StepKind = "wait_sole"      // wait up to Duration until Node alone has held the VIP for Interval
	KindSleep         StepKind = "sleep"          // sleep Duration
	KindProbeStart    StepKind = "probe_start"    // start the client's HTTP prober against the VIP
	KindProbeStop     StepKind = "probe_stop"     // stop it and keep its samples
	KindCut           StepKind = "cut"            // take Node's bridge port down
	KindHeal          StepKind = "heal"           // bring Node's bridge port up again
	KindPartition     StepKind = "partition"      // drop VRRP between lb1 and lb2 only
	KindHealPartition StepKind = "heal_partition" // undo partition
	KindExec          StepKind = "exec"           // run Argv in Node's namespace ("" = guest root)
	KindSay           StepKind = "say"            // print Text on the console
	KindUseConfig     StepKind = "use_config"     // Node's next (re)start or reload (HUP) uses configuration Variant
	KindWaitExec      StepKind = "wait_exec"      // run Argv in Node every 100 ms until its output matches Match (or, Absent, stops matching), up to Duration
	KindStatus        StepKind = "status"         // show Node's IPVS table: "director status Argv" when available, else "ipvsadm Argv"
	KindConnsOpen     StepKind = "conns_open"     // open Count long-lived connections from the client to VIP:EchoPort; Interval > 0 streams a message every Interval
	KindConnsCheck    StepKind = "conns_check"    // one echo round trip on every idle connection still alive
	KindConnsClose    StepKind = "conns_close"    // close the connections and keep their record
	KindServe         StepKind = "serve"          // set Node's HTTP server (a real server's, or a load balancer's own) to Mode (ServeUp, ...)
	KindDNSQuery      StepKind = "dns_query"      // send Count A queries from the client to VIP:DNSPort, one every Interval; stdout lists the answers
	KindSampleProc    StepKind = "sample_proc"    // sample Node's daemon processes for Duration; stdout is a ProcSample in JSON
	KindFlood         StepKind = "flood"          // send Count protocol-112 packets a second from Node for Duration, Mode junk or forged; stdout is a FloodResult in JSON
	KindServer        StepKind = "server"         // open (Mode ServeUp) or close (ServeDown) real server Node's Server (ServerEcho, ServerDNS)
	KindWaitIPVS      StepKind = "wait_ipvs"      // run ipvsadm -Ln in Node every 100 ms until NormalizeIPVS of its output is Text, up to Duration
	KindLoad          StepKind = "load"           // Count clients request VIP:80 as fast as they can for Duration; stdout is a LoadResult in JSON
	KindHoldPlant     StepKind = "hold_plant"     // run Argv in Node; once the client's VIP entry has Target's MAC, Interval later plant Node's MAC in it; stdout says whether Node held the VIP just before and after (HoldPlant)
)

// A real server's other servers, which server steps open and close: the
// echo server on EchoPort and the DNS server on DNSPort (on the VIP and
// on the host's own address).
const (
	ServerEcho = "echo"
	ServerDNS  = "dns"
)

// HTTP server modes of a real server (serve steps).
const (
	ServeUp   = "up"   // answers at once with its name
	ServeDown = "down" // listener closed: connections are refused
	ServeSlow = "slow" // answers after Duration
	ServeFlap = "flap" // alternates down and up, Duration each, until the next serve step
)

// Step is one action of a plan. Fields that a kind does not use stay empty.
type Step struct {
	Kind     StepKind `json:"kind"`
	Node     string   `json:"node,omitempty"`
	Duration Duration `json:"duration,omitempty"`
	Signal   string   `json:"signal,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Text     string   `json:"text,omitempty"`
	// Label lets a test find this step's result (Results.Step).
	Label string `json:"label,omitempty"`
	// Match is wait_exec's regular expression, matched against stdout;
	// Absent waits until it no longer matches.
	Match  string `json:"match,omitempty"`
	Absent bool   `json:"absent,omitempty"`
	// Variant names a Plan.Variants entry (use_config).
	Variant string `json:"variant,omitempty"`
	// Count and Interval shape conns_open.
	Count    int      `json:"count,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	// Mode is a serve step's HTTP server mode.
	Mode string `json:"mode,omitempty"`
	// Target is probe_start's host:port; empty means the VIP's port 80
	// (ProbeDNS: DNSPort). Mode ProbeDNS makes it a DNS prober.
	Target string `json:"target,omitempty"`
	// Server is a server step's server (ServerEcho, ServerDNS).
	Server string `json:"server,omitempty"`
	// Fine makes probe_start run the fine UDP probe beside the prober
	// (see FinePort).
	Fine bool `json:"fine,omitempty"`
	// MayFail keeps the plan going when this step fails; by default the
	// first failure ends the plan.
	MayFail bool `json:"may_fail,omitempty"`
}

// As returns s with a label.
func (s Step) As(label string) Step { s.Label = label; return s }

// Tolerant returns s marked so that its failure does not end the plan.
func (s Step) Tolerant() Step { s.MayFail = true; return s }

func (s Step) String() string {
	var b strings.Builder
	b.WriteString(string(s.Kind))
	for _, f := range []string{s.Node, s.Signal, s.Variant, s.Server, s.Mode, s.Target} {
		if f != "" {
			b.WriteString(" " + f)
		}
	}
	if s.Duration != 0 {
		b.WriteString(" " + s.Duration.String())
	}
	if s.Count != 0 {
		fmt.Fprintf(&b, " %d", s.Count)
	}
	if s.Interval != 0 {
		word := " every "
		if s.Kind == KindWaitSole {
			word = " quiet "
		}
		b.WriteString(word + s.Interval.String())
	}
	if len(s.Argv) > 0 {
		b.WriteString(" " + strings.Join(s.Argv, " "))
	}
	if s.Match != "" {
		if s.Absent {
			b.WriteString(" !~")
		} else {
			b.WriteString(" =~")
		}
		fmt.Fprintf(&b, " %q", s.Match)
	}
	if s.Text != "" {
		b.WriteString(" " + fmt.Sprintf("%q", s.Text))
	}
	if s.Fine {
		b.WriteString(" +fine")
	}
	if s.Label != "" {
		b.WriteString(" [" + s.Label + "]")
	}
	return b.String()
}

// Step constructors, one per kind.

func Start(node string) Step   { return Step{Kind: KindStart, Node: node} }
func Restart(node string) Step { return Step{Kind: KindRestart, Node: node} }

// Signal sends sig ("TERM", "KILL" or "HUP") to node's daemon; HUP makes
// it reload its configuration file (see UseConfig). KILL goes to the
// daemon's whole process group, so that a forking daemon such as keepalived
// really crashes instead of its children shutting down cleanly.
func Signal(node, sig string) Step { return Step{Kind: KindSignal, Node: node, Signal: sig} }
func WaitExit(node string, d time.Duration) Step {
	return Step{Kind: KindWaitExit, Node: node, Duration: Duration(d)}
}
func WaitVIP(node string, d time.Duration) Step {
	return Step{Kind: KindWaitVIP, Node: node, Duration: Duration(d)}
}
func WaitNoVIP(node string, d time.Duration) Step {
	return Step{Kind: KindWaitNoVIP, Node: node, Duration: Duration(d)}
}

// WaitSole waits up to d until node is the only load balancer holding the
// IPv4 VIP and no load balancer has taken or lost it for quiet. Two
// backups whose Master_Down_Timers fire within one advert's delivery both
// take the VIP at start; the lower priority steps down at the winner's
// next advert, so a quiet of one advert interval and a margin proves the
// election over.
func WaitSole(node string, d, quiet time.Duration) Step {
	return Step{Kind: KindWaitSole, Node: node, Duration: Duration(d), Interval: Duration(quiet)}
}
func Sleep(d time.Duration) Step { return Step{Kind: KindSleep, Duration: Duration(d)} }
func ProbeStart() Step           { return Step{Kind: KindProbeStart} }

// ProbeStartTo starts the client's prober against target (host:port)
// instead of the VIP: a host behind a gateway pair, for instance.
func ProbeStartTo(target string) Step { return Step{Kind: KindProbeStart, Target: target} }
func ProbeStop() Step                 { return Step{Kind: KindProbeStop} }

// ProbeStartFine starts the client's HTTP prober and, beside it, the fine
// UDP probe (FinePort); the probe_stop's run carries both.
func ProbeStartFine() Step { return Step{Kind: KindProbeStart, Fine: true} }

// ProbeDNS is probe_start's mode for a DNS prober: instead of HTTP
// requests on new connections it sends an A query for DNSName to the
// VIP's DNSPort every ProbeInterval, all from one connected UDP socket
// (one source port), waiting up to ProbeTimeout for the answer. A
// sample's From is the answering real server; an ICMP port unreachable
// fails the query at once. Without one-packet scheduling IPVS would hold
// such a client on one real server.
const ProbeDNS = "dns"

// DNSProbeStart starts the client's DNS prober (ProbeDNS).
func DNSProbeStart() Step   { return Step{Kind: KindProbeStart, Mode: ProbeDNS} }
func Cut(node string) Step  { return Step{Kind: KindCut, Node: node} }
func Heal(node string) Step { return Step{Kind: KindHeal, Node: node} }
func Partition() Step       { return Step{Kind: KindPartition} }
func HealPartition() Step   { return Step{Kind: KindHealPartition} }
func Exec(node string, argv ...string) Step {
	return Step{Kind: KindExec, Node: node, Argv: argv}
}
func Say(text string) Step { return Step{Kind: KindSay, Text: text} }

// HoldPlant runs argv (a handover command) in old's namespace and, once
// the client's entry for the IPv4 VIP has successor's MAC and after
// more has passed, writes old's MAC into it, as if the client had asked
// during old's make-before-break hold and old had answered last. The
// guest does it itself, through netlink, within milliseconds: a shell
// loop of ip commands in a busy guest took seconds. Its stdout says
// whether old held the VIP just before and just after the plant, in
// HoldPlantSaid's words; it ends when argv does, up to d.
func HoldPlant(old, successor string, after, d time.Duration, argv ...string) Step {
	return Step{Kind: KindHoldPlant, Node: old, Target: successor, Interval: Duration(after), Duration: Duration(d), Argv: argv}
}

// HoldPlantSaid is a hold_plant step's stdout.
func HoldPlantSaid(node string, before, after bool) string {
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprintf("%s held the VIP before: %s, after: %s", node, yn(before), yn(after))
}

// UseConfig makes node's next start, restart or reload (signal HUP) use
// configuration variant: the daemon always runs on a live copy of its
// selected configuration, which this step rewrites.
func UseConfig(node, variant string) Step {
	return Step{Kind: KindUseConfig, Node: node, Variant: variant}
}

// WaitExec runs argv in node until its stdout matches the regular
// expression match, for up to d.
func WaitExec(node string, d time.Duration, match string, argv ...string) Step {
	return Step{Kind: KindWaitExec, Node: node, Duration: Duration(d), Match: match, Argv: argv}
}

// WaitExecAbsent runs argv in node until its stdout no longer matches match.
func WaitExecAbsent(node string, d time.Duration, match string, argv ...string) Step {
	s := WaitExec(node, d, match, argv...)
	s.Absent = true
	return s
}

// WaitIPVS polls node's ipvsadm -Ln until the table, normalised
// (NormalizeIPVS), is want (as FormatIPVS writes it), for up to d. Its
// output is the table that matched.
func WaitIPVS(node string, d time.Duration, want string) Step {
	return Step{Kind: KindWaitIPVS, Node: node, Duration: Duration(d), Text: want}
}

// Status shows node's IPVS table with ipvsadm-style arguments.
func Status(node string, args ...string) Step { return Step{Kind: KindStatus, Node: node, Argv: args} }

// ConnsOpen opens n long-lived connections from the client to the VIP's
// echo service; with every > 0 each sends a message and checks its echo
// every interval, otherwise they stay idle until conns_check.
func ConnsOpen(n int, every time.Duration) Step {
	return Step{Kind: KindConnsOpen, Count: n, Interval: Duration(every)}
}
func ConnsCheck() Step { return Step{Kind: KindConnsCheck} }

// Serve sets real server rs's HTTP server to mode; d is the delay of
// ServeSlow and the half period of ServeFlap.
func Serve(rs, mode string, d time.Duration) Step {
	return Step{Kind: KindServe, Node: rs, Mode: mode, Duration: Duration(d)}
}

// DNSQuery sends n A queries for DNSName from the client to VIP:DNSPort,
// one every interval, each on a new socket.
func DNSQuery(n int, every time.Duration) Step {
	return Step{Kind: KindDNSQuery, Count: n, Interval: Duration(every)}
}
func ConnsClose() Step { return Step{Kind: KindConnsClose} }

// Server opens (mode ServeUp) or closes (ServeDown: TCP connections are
// refused, UDP datagrams get a port unreachable) real server rs's server,
// ServerEcho or ServerDNS.
func Server(rs, server, mode string) Step {
	return Step{Kind: KindServer, Node: rs, Server: server, Mode: mode}
}

// Validate checks the plan before boot: unknown kinds, missing nodes, a KILL
// or TERM spelled differently.
func (p Plan) Validate() error {
	var errs []error
	if err := p.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	for name, v := range p.Variants {
		if err := v.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("variant %s: %w", name, err))
		}
		for _, n := range p.Params.LBs() {
			if v.Impl[n] != p.Params.Impl[n] {
				errs = append(errs, fmt.Errorf("variant %s: %s runs %s, not %s", name, n, v.Impl[n], p.Params.Impl[n]))
			}
		}
	}
	for h := range p.Sysctls {
		if _, ok := HostByName(h); !ok {
			errs = append(errs, fmt.Errorf("sysctls for unknown host %q", h))
		}
	}
	lbs := map[string]bool{}
	for _, n := range p.Params.LBs() {
		lbs[n] = true
	}
	for n := range p.Configs {
		if !lbs[n] {
			errs = append(errs, fmt.Errorf("configuration for %q, which is not a load balancer", n))
		}
	}
	for i, s := range p.Steps {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("step %d (%s): %s", i, s.Kind, fmt.Sprintf(format, a...)))
		}
		switch s.Kind {
		case KindStart, KindRestart, KindWaitExit, KindWaitVIP, KindWaitNoVIP, KindWaitSole:
			if !lbs[s.Node] {
				bad("node %q is not a load balancer", s.Node)
			}
		case KindSignal:
			if !lbs[s.Node] {
				bad("node %q is not a load balancer", s.Node)
			}
			if s.Signal != "TERM" && s.Signal != "KILL" && s.Signal != "HUP" {
				bad("signal %q: want TERM, KILL or HUP", s.Signal)
			}
		case KindCut, KindHeal:
			if _, ok := HostByName(s.Node); !ok {
				bad("unknown host %q", s.Node)
			}
		case KindHoldPlant:
			for _, n := range []string{s.Node, s.Target} {
				if _, ok := HostByName(n); !ok {
					bad("unknown host %q", n)
				}
			}
			if len(s.Argv) == 0 || s.Duration <= 0 {
				bad("needs argv and a duration")
			}
		case KindExec, KindWaitExec:
			if _, ok := HostByName(s.Node); !ok && s.Node != "" {
				bad("unknown host %q", s.Node)
			}
			if len(s.Argv) == 0 {
				bad("empty argv")
			}
			if s.Kind == KindWaitExec {
				if _, err := regexp.Compile(s.Match); err != nil || s.Match == "" {
					bad("match %q: want a regular expression (%v)", s.Match, err)
				}
				if s.Duration <= 0 {
					bad("no timeout")
				}
			}
		case KindUseConfig:
			if !lbs[s.Node] {
				bad("node %q is not a load balancer", s.Node)
			}
			if _, ok := p.Variants[s.Variant]; !ok {
				bad("no configuration variant %q", s.Variant)
			}
		case KindStatus:
			if _, ok := HostByName(s.Node); !ok {
				bad("unknown host %q", s.Node)
			}
		case KindConnsOpen:
			if s.Count < 1 {
				bad("count %d: want at least one connection", s.Count)
			}
			if s.Interval < 0 {
				bad("negative interval")
			}
		case KindServe:
			if h, ok := HostByName(s.Node); !ok || !h.HTTP {
				bad("%q runs no HTTP server", s.Node)
			}
			switch s.Mode {
			case ServeUp, ServeDown:
			case ServeSlow, ServeFlap:
				if s.Duration <= 0 {
					bad("mode %s needs a duration", s.Mode)
				}
			default:
				bad("unknown mode %q", s.Mode)
			}
		case KindWaitIPVS:
			if !lbs[s.Node] || s.Duration <= 0 || s.Text == "" {
				bad("node %q duration %v: want a load balancer, a timeout and a table", s.Node, s.Duration)
			} else if NormalizeIPVS(s.Text) != s.Text {
				bad("table %q is not in FormatIPVS's form", s.Text)
			}
		case KindServer:
			if h, ok := HostByName(s.Node); !ok || !h.RealServer {
				bad("%q is not a real server", s.Node)
			}
			if s.Server != ServerEcho && s.Server != ServerDNS {
				bad("server %q: want %q or %q", s.Server, ServerEcho, ServerDNS)
			}
			if s.Mode != ServeUp && s.Mode != ServeDown {
				bad("mode %q: want %q or %q", s.Mode, ServeUp, ServeDown)
			}
		case KindDNSQuery:
			if s.Count < 1 || s.Interval < 0 {
				bad("count %d interval %v: want at least one query", s.Count, s.Interval)
			}
		case KindProbeStart:
			if s.Mode != "" && s.Mode != ProbeDNS {
				bad("mode %q: want none (HTTP) or %s", s.Mode, ProbeDNS)
			}
		case KindFlood:
			if _, ok := HostByName(s.Node); !ok || lbs[s.Node] {
				bad("node %q: want a host that is not a load balancer", s.Node)
			}
			if s.Count < 1 || s.Duration <= 0 || (s.Mode != FloodJunk && s.Mode != FloodForged) {
				bad("rate %d, duration %v, mode %q: want a rate, a duration and junk or forged", s.Count, s.Duration, s.Mode)
			}
		case KindSampleProc:
			if !lbs[s.Node] || s.Duration <= 0 {
				bad("node %q duration %v: want a load balancer and a duration", s.Node, s.Duration)
			}
		case KindLoad:
			if s.Count < 1 || s.Duration <= 0 {
				bad("clients %d duration %v: want clients and a duration", s.Count, s.Duration)
			}
		case KindSleep, KindProbeStop, KindPartition, KindHealPartition, KindSay,
			KindConnsCheck, KindConnsClose:
		default:
			bad("unknown kind")
		}
	}
	return errors.Join(errs...)
}
