package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/director-lb/director/cloud"
	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/testlog"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/internal/vip"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/vrrp"
	"github.com/director-lb/director/vrrp/transport"
)

// These tests run the whole daemon (New, Run, Apply) on fake edges: no
// root, no sockets, no kernel. Instances advertise every 20 ms and are
// alone on their fake segment, so each becomes master within a few
// intervals and a stopping master gives up within its short stop timeout.

const patience = 5 * time.Second

// fakeConn is a VRRP socket on no network: it records what is sent and
// delivers the frames a test injects.
type fakeConn struct {
	opts    transport.Options
	src     netip.Addr
	in      chan transport.Frame
	readErr chan error // a value makes Read fail with it, as a broken socket
	closed  chan struct{}
	once    sync.Once

	mu   sync.Mutex
	sent []*vrrp.Packet
}

func (c *fakeConn) Read(buf []byte) (transport.Frame, error) {
	select {
	case f := <-c.in:
		f.Payload = buf[:copy(buf, f.Payload)]
		return f, nil
	case err := <-c.readErr:
		return transport.Frame{}, err
	case <-c.closed:
		return transport.Frame{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(b []byte, dst netip.Addr) error {
	p, err := vrrp.Parse(b, c.src, dst)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sent = append(c.sent, p)
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) Source() netip.Addr { return c.src }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// lastSent is the last advert sent for vrid, if any.
func (c *fakeConn) lastSent(vrid uint8) *vrrp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.sent) - 1; i >= 0; i-- {
		if c.sent[i].VRID == vrid {
			return c.sent[i]
		}
	}
	return nil
}

// fakeLocal is vip.Fake with what the daemon needs of a local mover besides.
type fakeLocal struct {
	vip.Fake
	e      *fakeEdges // SetAddresses fails on e.failure("setaddresses", interface)
	cfg    vip.Config
	mu     sync.Mutex
	addrs  [][]netip.Prefix // every SetAddresses
	closed atomic.Bool
}

func (l *fakeLocal) SetAddresses(_ context.Context, a []netip.Prefix) error {
	if err := l.e.failure("setaddresses", l.cfg.Interface); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = append(l.addrs, slices.Clone(a))
	return nil
}

func (l *fakeLocal) setCalls() [][]netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.addrs)
}

func (l *fakeLocal) Close() error { l.closed.Store(true); return nil }

// fakeCloud is vip.Fake as an EC2 mover.
type fakeCloud struct {
	vip.Fake
	cfg    cloud.EC2Config
	local  vrrp.Mover
	closed atomic.Bool
}

func (c *fakeCloud) Status() cloud.Status {
	return cloud.Status{InstanceID: c.cfg.InstanceID, ENI: c.cfg.ENI, Holding: c.Held()}
}

func (c *fakeCloud) Close() error { c.closed.Store(true); return nil }

// carrierWatch is one fake carrier watch.
type carrierWatch struct {
	ctx context.Context
	ch  chan bool
}

// fakeEdges records everything the daemon opens; fail, if set, makes an
// edge fail ("listen", "carrier", "local", "ec2", "ipvs" with the
// interface, "" for ipvs).
type fakeEdges struct {
	mu       sync.Mutex
	conns    []*fakeConn
	locals   []*fakeLocal
	clouds   []*fakeCloud
	carriers map[string]*carrierWatch
	kernel   *ipvs.Fake
	fail     func(edge, iface string) error
	vmacs    []*fakeVMAC
}

func newFakeEdges() *fakeEdges {
	return &fakeEdges{carriers: map[string]*carrierWatch{}, kernel: ipvs.NewFake()}
}

func (e *fakeEdges) failure(edge, iface string) error {
	e.mu.Lock()
	f := e.fail
	e.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(edge, iface)
}

func (e *fakeEdges) setFail(f func(edge, iface string) error) {
	e.mu.Lock()
	e.fail = f
	e.mu.Unlock()
}

func (e *fakeEdges) edges() Edges {
	return Edges{
		ListenVRRP: func(o transport.Options) (VRRPConn, error) {
			if err := e.failure("listen", o.Interface); err != nil {
				return nil, err
			}
			src := o.Source
			if !src.IsValid() {
				src = netip.MustParseAddr("10.0.0.11")
			}
			c := &fakeConn{opts: o, src: src, in: make(chan transport.Frame, 16), readErr: make(chan error, 1), closed: make(chan struct{})}
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			return c, nil
		},
		EnsureVMAC: e.ensureVMAC,
		NewLocalMover: func(c vip.Config) (LocalMover, error) {
			if err := e.failure("local", c.Interface); err != nil {
				return nil, err
			}
			l := &fakeLocal{e: e, cfg: c}
			e.mu.Lock()
			e.locals = append(e.locals, l)
			e.mu.Unlock()
			return l, nil
		},
		WatchCarrier: func(ctx context.Context, iface string) (<-chan bool, error) {
			if err := e.failure("carrier", iface); err != nil {
				return nil, err
			}
			w := &carrierWatch{ctx: ctx, ch: make(chan bool, 4)}
			w.ch <- true
			e.mu.Lock()
			e.carriers[iface] = w
			e.mu.Unlock()
			return w.ch, nil
		},
		NewEC2Mover: func(_ context.Context, cfg cloud.EC2Config, local vrrp.Mover, _ cloud.Options) (CloudMover, error) {
			if err := e.failure("ec2", cfg.Interface); err != nil {
				return nil, err
			}
			c := &fakeCloud{cfg: cfg, local: local}
			e.mu.Lock()
			e.clouds = append(e.clouds, c)
			e.mu.Unlock()
			return c, nil
		},
		OpenIPVS: func() (ipvs.Kernel, error) {
			if err := e.failure("ipvs", ""); err != nil {
				return nil, err
			}
			return e.kernel, nil
		},
		DialSync: func() (SyncDaemon, error) { return nil, errors.New("no sync daemon in unit tests") },
	}
}

// openConns are the sockets not yet closed, by interface.
func (e *fakeEdges) openConns() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for _, c := range e.conns {
		if !c.isClosed() {
			out[c.opts.Interface]++
		}
	}
	return out
}

func (e *fakeEdges) connCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// conn is the open socket on iface.
func (e *fakeEdges) conn(t *testing.T, iface string) *fakeConn {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.conns {
		if c.opts.Interface == iface && !c.isClosed() {
			return c
		}
	}
	t.Fatalf("no open socket on %s", iface)
	return nil
}

// harness is a daemon running on fake edges.
type harness struct {
	t     *testing.T
	d     *Daemon
	e     *fakeEdges
	path  string
	logs  *testlog.Buffer
	stop  context.CancelFunc
	done  chan error
	ended bool
}

// instancesYAML is three instances: web and api share eth0's multicast
// socket, db is unicast on eth1. %s is the control socket.
const instancesYAML = `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
  - {name: api, interface: eth0, vrid: 52, advert_interval: 20ms, vips: [10.0.0.101/24]}
  - name: db
    interface: eth1
    vrid: 53
    advert_interval: 20ms
    vips: [10.1.0.100/24]
    unicast: {source: 10.1.0.11, peers: [10.1.0.12]}
`

func (h *harness) write(yaml string) {
	h.t.Helper()
	sock := filepath.Join(filepath.Dir(h.path), "ctl.sock")
	if err := os.WriteFile(h.path, []byte(fmt.Sprintf(yaml, sock)), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// load parses yaml as the daemon would read it.
func (h *harness) load(yaml string) *config.Config {
	h.t.Helper()
	h.write(yaml)
	cfg, err := config.Load(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

// newHarness prepares a daemon on fake edges without running it.
func newHarness(t *testing.T, yaml string) (*harness, *config.Config) {
	t.Helper()
	h := &harness{t: t, e: newFakeEdges(), path: filepath.Join(t.TempDir(), "director.yaml"), logs: &testlog.Buffer{}}
	return h, h.load(yaml)
}

// start runs a daemon on yaml until the test ends, and waits until every
// instance is master.
func start(t *testing.T, yaml string) *harness {
	t.Helper()
	h, cfg := newHarness(t, yaml)
	d, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		if !h.ended {
			h.shutdown()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", h.logs.String())
		}
	})
	for _, ic := range cfg.Instances {
		h.waitState(ic.Name, vrrp.StateMaster)
	}
	return h
}

// shutdown cancels Run and returns its error.
func (h *harness) shutdown() error {
	h.t.Helper()
	h.ended = true
	h.stop()
	select {
	case err := <-h.done:
		return err
	case <-time.After(patience):
		h.t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// running is the named running instance, or nil.
func (h *harness) running(name string) *runningInstance {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	for _, r := range h.d.running {
		if r.cfg.Name == name {
			return r
		}
	}
	return nil
}

func (h *harness) mustRunning(name string) *runningInstance {
	h.t.Helper()
	r := h.running(name)
	if r == nil {
		h.t.Fatalf("instance %s is not running", name)
	}
	return r
}

func (h *harness) names() []string {
	var out []string
	for _, in := range h.d.instances() {
		out = append(out, in.Name())
	}
	slices.Sort(out)
	return out
}

func (h *harness) waitState(name string, s vrrp.State) {
	h.t.Helper()
	testwait.Eventually(h.t, patience, name+" "+s.String(), func() bool {
		r := h.running(name)
		return r != nil && r.in.Stats().State == s
	})
}

// apply reloads yaml through the file, as SIGHUP does.
func (h *harness) apply(yaml string) ([]config.Change, error) {
	h.t.Helper()
	h.write(yaml)
	return h.d.ReloadFile(context.Background(), false)
}

func localOf(t *testing.T, r *runningInstance) *fakeLocal {
	t.Helper()
	l, ok := r.local.(*fakeLocal)
	if !ok {
		t.Fatalf("instance %s: local mover is %T", r.cfg.Name, r.local)
	}
	return l
}

// stopped reports whether r has finished a graceful stop (stopInstance
// waits for that before it returns).
func stopped(r *runningInstance) bool { return r.in.Stats().State == vrrp.StateStopped }

// New and Run start every configured instance (two sharing one socket),
// each takes its VIPs; cancelling the context stops them all, releases the
// VIPs and closes every mover, socket and carrier watch.
func TestRunStartsEveryInstanceAndStopsCleanly(t *testing.T) {
	h := start(t, instancesYAML)
	if got := h.names(); !slices.Equal(got, []string{"api", "db", "web"}) {
		t.Fatalf("running %v", got)
	}
	if got := h.e.openConns(); got["eth0"] != 1 || got["eth1"] != 1 || h.e.connCount() != 2 {
		t.Fatalf("sockets %v (%d opened), want one on eth0 (shared) and one on eth1", got, h.e.connCount())
	}
	if c := h.e.conn(t, "eth1"); c.opts.Multicast || c.opts.Source != netip.MustParseAddr("10.1.0.11") {
		t.Errorf("eth1 socket options %+v, want unicast from 10.1.0.11", c.opts)
	}
	locals := map[string]*fakeLocal{}
	for _, name := range []string{"web", "api", "db"} {
		l := localOf(t, h.mustRunning(name))
		testwait.Eventually(t, patience, name+" holding its VIPs", l.Held)
		locals[name] = l
	}
	if a := locals["db"].cfg.Addresses; len(a) != 1 || a[0] != netip.MustParsePrefix("10.1.0.100/24") {
		t.Errorf("db's mover has addresses %v", a)
	}

	if err := h.shutdown(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for name, l := range locals {
		if l.Held() || !l.closed.Load() {
			t.Errorf("%s after stop: held %v, closed %v; want released and closed", name, l.Held(), l.closed.Load())
		}
	}
	if got := h.e.openConns(); len(got) != 0 {
		t.Errorf("sockets still open after stop: %v", got)
	}
	h.e.mu.Lock()
	for iface, w := range h.e.carriers {
		if w.ctx.Err() == nil {
			t.Errorf("carrier watch of %s not cancelled", iface)
		}
	}
	h.e.mu.Unlock()
	if len(h.d.instances()) != 0 {
		t.Errorf("instances still listed after stop: %v", h.names())
	}
}

// A reload of the same file touches nothing: same instances, no
// transition, no VIP released, no socket opened.
func TestReloadUnchangedKeepsState(t *testing.T) {
	h := start(t, instancesYAML)
	before := map[string]*vrrp.Instance{}
	transitions := map[string]uint64{}
	calls := map[string]int{}
	for _, name := range []string{"web", "api", "db"} {
		r := h.mustRunning(name)
		before[name], transitions[name] = r.in, r.in.Stats().Transitions
		calls[name] = len(localOf(t, r).Calls())
	}
	opened := h.e.connCount()

	changes, err := h.apply(instancesYAML)
	if err != nil || len(changes) != 0 {
		t.Fatalf("reload: %v, changes %v; want none", err, changes)
	}
	for name, in := range before {
		r := h.mustRunning(name)
		if r.in != in {
			t.Errorf("%s was restarted", name)
		}
		if s := r.in.Stats(); s.State != vrrp.StateMaster || s.Transitions != transitions[name] {
			t.Errorf("%s: %s after %d transitions, want MASTER after %d", name, s.State, s.Transitions, transitions[name])
		}
		if l := localOf(t, r); slices.Contains(l.Calls()[calls[name]:], vip.CallRelease) || !l.Held() {
			t.Errorf("%s's VIPs were released by the reload: calls %v", name, l.Calls())
		}
	}
	if h.e.connCount() != opened {
		t.Errorf("the reload opened %d sockets", h.e.connCount()-opened)
	}
}

// A new priority and an added VIP are applied to the running instance: it
// stays master, adds the VIP locally and advertises it.
func TestReloadAppliesPriorityAndVIPsLive(t *testing.T) {
	h := start(t, instancesYAML)
	r := h.mustRunning("web")
	in, trans := r.in, r.in.Stats().Transitions
	l := localOf(t, r)

	next := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, priority: 150, advert_interval: 20ms, vips: [10.0.0.100/24, 10.0.0.102/24]}
  - {name: api, interface: eth0, vrid: 52, advert_interval: 20ms, vips: [10.0.0.101/24]}
  - name: db
    interface: eth1
    vrid: 53
    advert_interval: 20ms
    vips: [10.1.0.100/24]
    unicast: {source: 10.1.0.11, peers: [10.1.0.12]}
`
	changes, err := h.apply(next)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Errorf("changes %v, want priority and vips of web", changes)
	}
	if h.mustRunning("web").in != in {
		t.Fatal("web was restarted for a live change")
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.100/24"), netip.MustParsePrefix("10.0.0.102/24")}
	if got := l.setCalls(); len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("local mover SetAddresses calls %v, want one with %v", got, want)
	}
	conn := h.e.conn(t, "eth0")
	testwait.Eventually(t, patience, "web advertising priority 150 and both VIPs", func() bool {
		p := conn.lastSent(51)
		return in.Stats().Priority == 150 && p != nil && p.Priority == 150 &&
			slices.Contains(p.Addresses, netip.MustParseAddr("10.0.0.102"))
	})
	if s := in.Stats(); s.State != vrrp.StateMaster || s.Transitions != trans {
		t.Errorf("web %s after %d transitions, want still MASTER after %d", s.State, s.Transitions, trans)
	}
	if slices.Contains(l.Calls(), vip.CallRelease) && !l.Held() {
		t.Errorf("web's VIPs were released: %v", l.Calls())
	}
	if h.d.fileConfig().Instances[0].Priority != 150 {
		t.Error("the running configuration is not the new one")
	}
}

// An invalid file is refused: the error says so and nothing changes.
func TestReloadRefusesInvalidFile(t *testing.T) {
	h := start(t, instancesYAML)
	prev := h.d.fileConfig()
	web := h.mustRunning("web").in

	bad := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 300, advert_interval: 20ms, vips: [10.0.0.100/24]}
`
	if _, err := h.apply(bad); err == nil {
		t.Fatal("an invalid file was applied")
	}
	if h.d.fileConfig() != prev {
		t.Error("the running configuration changed")
	}
	if got := h.names(); !slices.Equal(got, []string{"api", "db", "web"}) || h.mustRunning("web").in != web {
		t.Errorf("instances changed: %v", got)
	}
}

// When an edge of an instance to start cannot be opened, the reload is
// refused whole: the instance it would have restarted keeps running,
// nothing it would have removed stops, what was already opened for it is
// closed again, and the running configuration stays.
func TestReloadRefusedWhenAnEdgeFails(t *testing.T) {
	// api moves to eth2 (a restart: opened first), db is removed, ec2i is
	// added on eth3 (opened second: fails).
	next := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
  - {name: api, interface: eth2, vrid: 52, advert_interval: 20ms, vips: [10.2.0.101/24]}
  - name: ec2i
    interface: eth3
    vrid: 54
    advert_interval: 20ms
    vips: [10.3.0.100/24]
    unicast: {source: 10.3.0.11, peers: [10.3.0.12]}
    ec2: {region: eu-west-1, instance_id: i-0123, eni: eni-0123}
`
	for _, edge := range []string{"listen", "carrier", "local", "ec2"} {
		t.Run(edge, func(t *testing.T) {
			h := start(t, instancesYAML)
			prev := h.d.fileConfig()
			ins := map[string]*vrrp.Instance{}
			for _, n := range []string{"web", "api", "db"} {
				ins[n] = h.mustRunning(n).in
			}
			h.e.setFail(func(e, iface string) error {
				if e == edge && iface == "eth3" {
					return errors.New("injected " + edge + " failure")
				}
				return nil
			})
			changes, err := h.apply(next)
			if err == nil {
				t.Fatalf("reload applied despite a failing %s edge: %v", edge, changes)
			}
			if h.d.fileConfig() != prev {
				t.Error("the running configuration changed")
			}
			for n, in := range ins {
				r := h.mustRunning(n)
				if r.in != in || stopped(r) || r.in.Stats().State != vrrp.StateMaster {
					t.Errorf("%s was touched by a refused reload (state %s)", n, r.in.Stats().State)
				}
			}
			if got := h.e.openConns(); got["eth2"] != 0 || got["eth3"] != 0 || got["eth0"] != 1 || got["eth1"] != 1 {
				t.Errorf("open sockets %v, want only eth0's and eth1's", got)
			}
			h.e.mu.Lock()
			for _, l := range h.e.locals {
				if l.cfg.Interface != "eth0" && l.cfg.Interface != "eth1" && !l.closed.Load() {
					t.Errorf("the mover opened for %s was not closed", l.cfg.Interface)
				}
			}
			h.e.mu.Unlock()

			// The same file applies once the edge works.
			h.e.setFail(nil)
			if _, err := h.apply(next); err != nil {
				t.Fatalf("reload after the failure cleared: %v", err)
			}
			if got := h.names(); !slices.Equal(got, []string{"api", "ec2i", "web"}) {
				t.Errorf("running %v after the second reload", got)
			}
		})
	}
}

// A removed instance hands over and releases its VIPs and mover; the socket
// it shared stays for the others, the one it had alone is closed.
func TestReloadRemovesInstances(t *testing.T) {
	h := start(t, instancesYAML)
	api, db := h.mustRunning("api"), h.mustRunning("db")
	web := h.mustRunning("web").in
	apiL, dbL := localOf(t, api), localOf(t, db)
	eth0, eth1 := h.e.conn(t, "eth0"), h.e.conn(t, "eth1")

	next := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
`
	if _, err := h.apply(next); err != nil {
		t.Fatal(err)
	}
	if got := h.names(); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("running %v, want web", got)
	}
	for name, l := range map[string]*fakeLocal{"api": apiL, "db": dbL} {
		if l.Held() || !l.closed.Load() {
			t.Errorf("removed %s: VIPs held %v, mover closed %v", name, l.Held(), l.closed.Load())
		}
	}
	for name, r := range map[string]*runningInstance{"api": api, "db": db} {
		if !stopped(r) {
			t.Errorf("removed %s still runs", name)
		}
		// A master hands over: its last advert has priority 0.
		c := eth0
		if name == "db" {
			c = eth1
		}
		if p := c.lastSent(r.in.Stats().VRID); p == nil || p.Priority != 0 {
			t.Errorf("removed %s did not send a priority-0 advert: %+v", name, p)
		}
	}
	if got := h.e.openConns(); got["eth0"] != 1 || got["eth1"] != 0 {
		t.Errorf("open sockets %v, want eth0's kept (web) and eth1's closed", got)
	}
	if eth0.isClosed() || h.mustRunning("web").in != web {
		t.Error("web or its socket was disturbed")
	}
	// The dispatcher no longer knows api's VRID.
	var dropsBefore uint64
	for _, in := range h.d.State().Instances {
		dropsBefore += in.Drops[string(vrrp.DropVRID)]
	}
	eth0.in <- advertFrame(t, 52, 200)
	testwait.Eventually(t, patience, "an advert for the removed VRID dropped", func() bool {
		var n uint64
		for _, in := range h.d.State().Instances {
			n += in.Drops[string(vrrp.DropVRID)]
		}
		return n > dropsBefore
	})
}

// advertFrame is a VRRPv3 advert from a peer on eth0's multicast group.
func advertFrame(t *testing.T, vrid, prio uint8) transport.Frame {
	t.Helper()
	src, dst := netip.MustParseAddr("10.0.0.12"), transport.MulticastGroup(4)
	p := vrrp.Packet{Version: vrrp.V3, VRID: vrid, Priority: prio, Interval: 20 * time.Millisecond, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.101")}}
	b, err := p.AppendMarshal(nil, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return transport.Frame{Src: src, Dst: dst, TTL: 255, Payload: b}
}

// An added instance starts on its own socket and an EC2 instance gets its
// cloud mover over its local one; the others are untouched.
func TestReloadAddsInstances(t *testing.T) {
	h := start(t, instancesYAML)
	web := h.mustRunning("web").in
	next := instancesYAML + `  - {name: extra, interface: eth0, vrid: 55, advert_interval: 20ms, vips: [10.0.0.105/24]}
  - name: ec2i
    interface: eth3
    vrid: 54
    advert_interval: 20ms
    vips: [10.3.0.100/24]
    unicast: {source: 10.3.0.11, peers: [10.3.0.12]}
    ec2: {region: eu-west-1, instance_id: i-0123, eni: eni-0123}
`
	changes, err := h.apply(next)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Errorf("changes %v, want two added instances", changes)
	}
	h.waitState("extra", vrrp.StateMaster)
	h.waitState("ec2i", vrrp.StateMaster)
	if h.mustRunning("web").in != web {
		t.Error("web was restarted")
	}
	if got := h.e.openConns(); got["eth0"] != 1 || got["eth3"] != 1 {
		t.Errorf("open sockets %v, want extra on eth0's shared socket and ec2i on a new one", got)
	}
	r := h.mustRunning("ec2i")
	c, ok := r.cloud.(*fakeCloud)
	if !ok {
		t.Fatalf("ec2i's cloud mover is %T", r.cloud)
	}
	if c.local != r.local {
		t.Error("the EC2 mover does not wrap the instance's local mover")
	}
	testwait.Eventually(t, patience, "ec2i's EC2 mover holding the VIPs", c.Held)
	var st *stateCloud
	for _, is := range h.d.State().Instances {
		if is.Name == "ec2i" && is.Cloud != nil {
			st = &stateCloud{is.Cloud.InstanceID, is.Cloud.Holding}
		}
	}
	if st == nil || st.id != "i-0123" || !st.holding {
		t.Errorf("state of ec2i's cloud mover %+v", st)
	}

	// Removing it closes both movers.
	l := localOf(t, r)
	if _, err := h.apply(instancesYAML); err != nil {
		t.Fatal(err)
	}
	if !c.closed.Load() || !l.closed.Load() || c.Held() {
		t.Errorf("removed ec2i: cloud closed %v, local closed %v, VIPs held %v", c.closed.Load(), l.closed.Load(), c.Held())
	}
}

type stateCloud struct {
	id      string
	holding bool
}

// A change that needs a restart stops the old instance (handing over) and
// starts a new one; the socket it shares stays open throughout.
func TestReloadRestartsChangedInstance(t *testing.T) {
	h := start(t, instancesYAML)
	old := h.mustRunning("api")
	oldL := localOf(t, old)
	opened := h.e.connCount()
	eth0 := h.e.conn(t, "eth0")

	next := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
  - {name: api, interface: eth0, vrid: 56, advert_interval: 20ms, vips: [10.0.0.101/24]}
  - name: db
    interface: eth1
    vrid: 53
    advert_interval: 20ms
    vips: [10.1.0.100/24]
    unicast: {source: 10.1.0.11, peers: [10.1.0.12]}
`
	if _, err := h.apply(next); err != nil {
		t.Fatal(err)
	}
	r := h.mustRunning("api")
	if r == old || r.in == old.in {
		t.Fatal("api was not restarted")
	}
	if !stopped(old) || !oldL.closed.Load() {
		t.Error("the old api still runs or its mover is open")
	}
	if r.in.Stats().VRID != 56 {
		t.Errorf("new api has VRID %d", r.in.Stats().VRID)
	}
	h.waitState("api", vrrp.StateMaster)
	if h.e.connCount() != opened || eth0.isClosed() {
		t.Errorf("eth0's socket was reopened (%d opened)", h.e.connCount()-opened)
	}
	if n := len(h.d.instances()); n != 3 {
		t.Errorf("%d instances running, want 3", n)
	}
}

// A lost carrier puts the instances on it in FAULT (they release their
// VIPs); its return brings them back.
func TestCarrierLossFaultsInstances(t *testing.T) {
	h := start(t, instancesYAML)
	l := localOf(t, h.mustRunning("db"))
	h.e.mu.Lock()
	w := h.e.carriers["eth1"]
	h.e.mu.Unlock()

	w.ch <- false
	h.waitState("db", vrrp.StateFault)
	testwait.Eventually(t, patience, "db releasing its VIPs", func() bool { return !l.Held() })
	if s := h.mustRunning("web").in.Stats().State; s != vrrp.StateMaster {
		t.Errorf("web on eth0 is %s, want MASTER", s)
	}
	w.ch <- true
	h.waitState("db", vrrp.StateMaster)
	testwait.Eventually(t, patience, "db holding its VIPs again", l.Held)
}

// A reload that leaves no instance on an interface, and none tracking it,
// stops watching its carrier; one still in use keeps its watch, and a late
// report from a stopped watch changes nothing.
func TestReloadStopsUnusedCarrierWatches(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
  - name: db
    interface: eth1
    vrid: 53
    advert_interval: 20ms
    vips: [10.1.0.100/24]
    track: [{interface: eth2, weight: -10}]
`)
	watch := func(iface string) *carrierWatch {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		w := h.e.carriers[iface]
		if w == nil {
			t.Fatalf("%s was never watched", iface)
		}
		return w
	}
	eth0, eth1, eth2 := watch("eth0"), watch("eth1"), watch("eth2")
	if _, err := h.apply(`
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
`); err != nil {
		t.Fatal(err)
	}
	for iface, w := range map[string]*carrierWatch{"eth1": eth1, "eth2": eth2} {
		select {
		case <-w.ctx.Done():
		case <-time.After(patience):
			t.Errorf("%s is still watched after the reload removed its instance", iface)
		}
	}
	if eth0.ctx.Err() != nil {
		t.Error("eth0's watch stopped, though web still runs on it")
	}
	h.d.mu.Lock()
	_, watched := h.d.carriers["eth1"]
	h.d.mu.Unlock()
	if watched {
		t.Error("eth1 still listed among the carriers")
	}
	// The real watch closes its channel a moment after its context ends; a
	// report in between is ignored.
	eth1.ch <- false
	// Bringing db back watches eth1 anew.
	if _, err := h.apply(instancesYAML); err != nil {
		t.Fatal(err)
	}
	if w := watch("eth1"); w == eth1 || w.ctx.Err() != nil {
		t.Error("eth1 not watched anew when db came back")
	}
	h.waitState("db", vrrp.StateMaster)
}

// A VRRP socket whose reader fails is reopened, with backoff while it
// cannot be; meanwhile the watchdog check fails, so that systemd restarts a
// daemon that cannot get its socket back. The instances on it carry on with
// the new socket, both ways.
func TestReaderFailureReopensSocket(t *testing.T) {
	h := start(t, instancesYAML)
	old := h.e.conn(t, "eth0")
	opened := h.e.connCount()
	refuse := errors.New("injected: cannot reopen")
	h.e.setFail(func(edge, iface string) error {
		if edge == "listen" && iface == "eth0" {
			return refuse
		}
		return nil
	})
	old.readErr <- errors.New("injected: read failed")

	testwait.Eventually(t, patience, "the watchdog check failing while eth0 has no reader", func() bool {
		err := h.d.alive(context.Background(), time.Second)
		return err != nil && strings.Contains(err.Error(), "eth0")
	})
	if !old.isClosed() {
		t.Error("the failed socket was not closed")
	}
	h.e.setFail(nil)
	testwait.Eventually(t, patience, "a new socket on eth0", func() bool { return h.e.connCount() > opened })
	testwait.Eventually(t, patience, "the watchdog check passing again", func() bool {
		return h.d.alive(context.Background(), time.Second) == nil
	})
	c := h.e.conn(t, "eth0")
	// web (priority 100) hears a better master on the new socket...
	c.in <- advertFrame(t, 51, 200)
	h.waitState("web", vrrp.StateBackup)
	// ...and api, still master, advertises through it.
	testwait.Eventually(t, patience, "api advertising on the new socket", func() bool { return c.lastSent(52) != nil })
	if !strings.Contains(h.logs.String(), "VRRP receive stopped") {
		t.Error("the reader failure was not logged")
	}
}

// An instance that cannot start stops Run with its error, and the ones
// already started are stopped again.
func TestRunFailsWhenAnInstanceCannotStart(t *testing.T) {
	h, cfg := newHarness(t, instancesYAML)
	injected := errors.New("injected")
	h.e.setFail(func(edge, iface string) error {
		if edge == "listen" && iface == "eth1" {
			return injected
		}
		return nil
	})
	d, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background()) }()
	select {
	case err = <-errc:
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
	if !errors.Is(err, injected) {
		t.Fatalf("Run: %v, want the socket's error", err)
	}
	if got := h.e.openConns(); len(got) != 0 {
		t.Errorf("sockets left open: %v", got)
	}
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	for _, l := range h.e.locals {
		if !l.closed.Load() {
			t.Errorf("mover of %s left open", l.cfg.Interface)
		}
	}
}

// The state directory (the IPVS ownership file and the runtime decisions)
// must be root's and writable by nobody else, or director does not start.
func TestNewRefusesLooseStateDirectory(t *testing.T) {
	const yaml = `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
ipvs: {state_file: STATE}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.21, checks: []}]
`
	h, _ := newHarness(t, yaml)
	dir := filepath.Join(filepath.Dir(h.path), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg := h.load(strings.ReplaceAll(yaml, "STATE", filepath.Join(dir, "ipvs.json")))
	_, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err == nil || !strings.Contains(err.Error(), "state directory "+dir+": mode 0777") {
		t.Fatalf("New with a world-writable state directory: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatalf("New with a private state directory: %v", err)
	}
	d.Close()
}

// With services New opens IPVS through its edge: a failure is a start-up
// error, and otherwise the master's services reach the kernel.
func TestNewOpensIPVS(t *testing.T) {
	const yaml = `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
ipvs: {state_file: STATE}
decisions: {file: /DECISIONS}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.21, checks: []}]
`
	h, _ := newHarness(t, yaml)
	withState := bytes.ReplaceAll([]byte(yaml), []byte("STATE"), []byte(filepath.Join(filepath.Dir(h.path), "ipvs.json")))
	withState = bytes.ReplaceAll(withState, []byte("/DECISIONS"), []byte(filepath.Join(filepath.Dir(h.path), "decisions.json")))
	cfg := h.load(string(withState))

	h.e.setFail(func(edge, _ string) error {
		if edge == "ipvs" {
			return errors.New("no ip_vs")
		}
		return nil
	})
	if _, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil))); err == nil {
		t.Fatal("New succeeded without IPVS")
	}
	h.e.setFail(nil)
	d, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testwait.Eventually(t, patience, "the http service in the kernel", func() bool {
		for _, s := range h.e.kernel.Snapshot() {
			if s.Key.Port == 80 && len(s.Destinations) == 1 {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A dry run lists the changes and applies none; the log level follows a
// reload; services cannot be added to a daemon started without IPVS.
func TestReloadDryRunLogLevelAndServices(t *testing.T) {
	h := start(t, instancesYAML)
	prev := h.d.fileConfig()
	removeAll := `
control_socket: %s
log_level: debug
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
`
	h.write(removeAll)
	changes, err := h.d.ReloadFile(context.Background(), true)
	if err != nil || len(changes) != 3 {
		t.Fatalf("dry run: %v, changes %v; want the log level and two removals", err, changes)
	}
	if h.d.fileConfig() != prev || len(h.d.instances()) != 3 {
		t.Fatal("a dry run changed the daemon")
	}

	if _, err := h.apply(removeAll); err != nil {
		t.Fatal(err)
	}
	if h.d.level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after a reload to debug", h.d.level.Level())
	}

	withService := removeAll + `ipvs: {state_file: /nonexistent/ipvs.json}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    real_servers: [{address: 10.0.0.21}]
`
	cur := h.d.fileConfig()
	if _, err := h.apply(withService); err == nil {
		t.Fatal("services added to a daemon without IPVS")
	}
	if h.d.fileConfig() != cur {
		t.Error("the refused reload changed the running configuration")
	}
}

// A daemon that is not running (yet, or any more) applies nothing.
func TestApplyNeedsARunningDaemon(t *testing.T) {
	h, cfg := newHarness(t, instancesYAML)
	d, err := New(cfg, h.e.edges(), "v-test", nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Apply(context.Background(), cfg, false); err == nil {
		t.Fatal("Apply before Run succeeded")
	}
	if h.e.connCount() != 0 {
		t.Errorf("Apply before Run opened %d sockets", h.e.connCount())
	}
}

// A VIP change the local mover cannot make is reported, and the rest of
// the reload is applied: the instance keeps running, not restarted.
func TestReloadReportsFailedLiveVIPChange(t *testing.T) {
	h := start(t, instancesYAML)
	web := h.mustRunning("web").in
	h.e.setFail(func(edge, _ string) error {
		if edge == "setaddresses" {
			return errors.New("injected")
		}
		return nil
	})
	next := `
control_socket: %s
instances:
  - {name: web, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24, 10.0.0.102/24]}
  - {name: api, interface: eth0, vrid: 52, advert_interval: 20ms, vips: [10.0.0.101/24]}
`
	_, err := h.apply(next)
	if err == nil || !strings.Contains(err.Error(), "instance web") {
		t.Fatalf("reload: %v, want web's failure", err)
	}
	if h.mustRunning("web").in != web {
		t.Error("web was restarted")
	}
	if got := h.names(); !slices.Equal(got, []string{"api", "web"}) {
		t.Errorf("running %v: the rest of the reload (db removed) was not applied", got)
	}
	if !strings.Contains(h.logs.String(), "reload applied with errors") {
		t.Error("the failure was not logged")
	}
}

// IPv6 VIPs reach the EC2 mover: an IPv6 instance's own, and a dual-stack
// instance's excluded ones with move_excluded. The local mover gets every
// address either way.
func TestEC2IPv6VIPsWired(t *testing.T) {
	h := start(t, `
control_socket: %s
instances:
  - name: dual
    interface: eth3
    vrid: 54
    advert_interval: 20ms
    vips: [10.3.0.100/24]
    vips_excluded: [2001:db8:3::100/64]
    unicast: {source: 10.3.0.11, peers: [10.3.0.12]}
    ec2: {region: eu-west-1, instance_id: i-0123, eni: eni-0123, move_excluded: true}
  - name: six
    interface: eth4
    vrid: 55
    advert_interval: 20ms
    vips: [2001:db8:4::100/64]
    unicast: {source: "2001:db8:4::11", peers: ["2001:db8:4::12"]}
    ec2: {region: eu-west-1, instance_id: i-0123, eni: eni-0456}
`)
	for _, tc := range []struct {
		name  string
		cloud []netip.Addr
		local []netip.Prefix
	}{
		{"dual", []netip.Addr{netip.MustParseAddr("10.3.0.100"), netip.MustParseAddr("2001:db8:3::100")},
			[]netip.Prefix{netip.MustParsePrefix("10.3.0.100/24"), netip.MustParsePrefix("2001:db8:3::100/64")}},
		{"six", []netip.Addr{netip.MustParseAddr("2001:db8:4::100")}, []netip.Prefix{netip.MustParsePrefix("2001:db8:4::100/64")}},
	} {
		h.waitState(tc.name, vrrp.StateMaster)
		r := h.mustRunning(tc.name)
		c, ok := r.cloud.(*fakeCloud)
		if !ok {
			t.Fatalf("%s: cloud mover is %T", tc.name, r.cloud)
		}
		if !slices.Equal(c.cfg.VIPs, tc.cloud) {
			t.Errorf("%s: the EC2 mover moves %v, want %v", tc.name, c.cfg.VIPs, tc.cloud)
		}
		if l := localOf(t, r); !slices.Equal(l.cfg.Addresses, tc.local) {
			t.Errorf("%s: the local mover adds %v, want %v", tc.name, l.cfg.Addresses, tc.local)
		}
		testwait.Eventually(t, patience, tc.name+"'s EC2 mover holding", c.Held)
	}
}

// A reload logs the warnings of the configuration it loaded.
func TestReloadLogsWarnings(t *testing.T) {
	h := start(t, instancesYAML)
	h.write(instancesYAML + `ipvs: {state_file: /nonexistent/ipvs.json}
services:
  - name: http
    vip: 10.0.0.100
    port: 80
    scheduler: mh
    real_servers: [{address: 10.0.0.21}]
`)
	if _, err := h.d.ReloadFile(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if l := h.logs.String(); !strings.Contains(l, "level=WARN msg=\"configuration warning\"") || !strings.Contains(l, "services[0].scheduler: mh without mh-fallback") {
		t.Errorf("no warning logged:\n%s", l)
	}
}
