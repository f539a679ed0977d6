package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/labtests/labplan"
)

// vipWatch follows the VIPs on the load balancers through netlink address
// notifications (exact times, no polling) and keeps the timeline. Any of
// a node's interfaces counts: a VIP may sit on eth1 (a gateway pair's
// inside VIP) or on a VMAC macvlan that comes and goes with the daemon.
type vipWatch struct {
	log *slog.Logger

	mu      sync.Mutex
	held    map[string]map[string]bool // node -> addr -> held
	events  []labplan.HolderEvent
	changed chan struct{} // closed and replaced on every change
}

func newVIPWatch(log *slog.Logger) *vipWatch {
	return &vipWatch{log: log, held: map[string]map[string]bool{}, changed: make(chan struct{})}
}

var watchedAddrs = []string{labplan.VIP4.Addr().String(), labplan.VIP6.Addr().String(), labplan.InsideVIP4Addr}

// start subscribes to node's address changes until ctx ends. The initial
// state is recorded (as "not held" unless listed) so the timeline is
// complete from the beginning.
func (w *vipWatch) start(ctx context.Context, node string) error {
	ns, err := netns.GetFromName(node)
	if err != nil {
		return fmt.Errorf("watch %s: open netns: %w", node, err)
	}
	now := time.Now()
	w.mu.Lock()
	w.held[node] = map[string]bool{}
	for _, a := range watchedAddrs {
		w.events = append(w.events, labplan.HolderEvent{At: now, Node: node, Addr: a, Held: false})
	}
	w.mu.Unlock()

	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	err = netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the socket at the end is no error
				w.log.Warn("vip watch error", "node", node, "err", err)
			}
		},
	})
	if err != nil {
		ns.Close()
		return fmt.Errorf("watch %s: subscribe: %w", node, err)
	}
	go func() {
		defer ns.Close()
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				w.set(node, u.LinkAddress.IP.String(), u.NewAddr)
			}
		}
	}()
	return nil
}

func (w *vipWatch) set(node, addr string, held bool) {
	watched := false
	for _, a := range watchedAddrs {
		watched = watched || a == addr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !watched || w.held[node][addr] == held {
		return
	}
	w.held[node][addr] = held
	w.events = append(w.events, labplan.HolderEvent{At: time.Now(), Node: node, Addr: addr, Held: held})
	close(w.changed)
	w.changed = make(chan struct{})
	verb := "lost"
	if held {
		verb = "took"
	}
	w.log.Info(fmt.Sprintf("VIP %s: %s %s it", addr, node, verb), "holders", w.holdersLocked(addr))
}

// holds reports whether node's eth0 holds addr now.
func (w *vipWatch) holds(node, addr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held[node][addr]
}

func (w *vipWatch) holdersLocked(addr string) string {
	var hs []string
	for _, n := range []string{labplan.LB1, labplan.LB2, labplan.LB3} {
		if w.held[n][addr] {
			hs = append(hs, n)
		}
	}
	if len(hs) == 0 {
		return "none"
	}
	return strings.Join(hs, ",")
}

// wait blocks until node's eth0 holds (want) or lacks the IPv4 VIP.
func (w *vipWatch) wait(ctx context.Context, node string, want bool) error {
	addr := labplan.VIP4Addr
	for {
		w.mu.Lock()
		ok := w.held[node][addr] == want
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitSole blocks until node alone holds the IPv4 VIP and no load
// balancer has taken or lost it for quiet.
func (w *vipWatch) waitSole(ctx context.Context, node string, quiet time.Duration) error {
	addr := labplan.VIP4Addr
	for {
		w.mu.Lock()
		sole := w.holdersLocked(addr) == node
		var last time.Time
		for _, e := range w.events {
			if e.Addr == addr {
				last = e.At
			}
		}
		ch := w.changed
		w.mu.Unlock()
		var wake <-chan time.Time
		if sole {
			left := quiet - time.Since(last)
			if left <= 0 {
				return nil
			}
			wake = time.After(left)
		}
		select {
		case <-ch:
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *vipWatch) timeline() []labplan.HolderEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]labplan.HolderEvent(nil), w.events...)
}

// neighWatch follows the client's neighbour (ARP and NDP) entries for the
// VIPs through netlink neighbour notifications, naming the load balancer
// whose MAC each one points at: when the client's entry reached the new
// master is the last part of a takeover.
type neighWatch struct {
	macs map[string]string // MAC -> load balancer

	mu     sync.Mutex
	events []labplan.NeighEvent
	last   map[string]labplan.NeighEvent // addr -> last recorded
}

// lbMACs maps each load balancer's eth0 MAC to its name.
func lbMACs() (map[string]string, error) {
	out := map[string]string{}
	for _, n := range []string{labplan.LB1, labplan.LB2} {
		ns, err := netns.GetFromName(n)
		if err != nil {
			return nil, fmt.Errorf("netns %s: %w", n, err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			return nil, fmt.Errorf("netlink in %s: %w", n, err)
		}
		l, err := h.LinkByName("eth0")
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("%s eth0: %w", n, err)
		}
		out[l.Attrs().HardwareAddr.String()] = n
	}
	return out, nil
}

func startNeighWatch(ctx context.Context, log *slog.Logger, node string) (*neighWatch, error) {
	macs, err := lbMACs()
	if err != nil {
		return nil, err
	}
	w := &neighWatch{macs: macs, last: map[string]labplan.NeighEvent{}}
	ns, err := netns.GetFromName(node)
	if err != nil {
		return nil, fmt.Errorf("neighbour watch %s: open netns: %w", node, err)
	}
	updates := make(chan netlink.NeighUpdate, 64)
	done := make(chan struct{})
	err = netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				log.Warn("neighbour watch error", "node", node, "err", err)
			}
		},
	})
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("neighbour watch %s: subscribe: %w", node, err)
	}
	go func() {
		defer ns.Close()
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				w.add(u)
			}
		}
	}()
	return w, nil
}

func (w *neighWatch) add(u netlink.NeighUpdate) {
	if u.IP == nil {
		return
	}
	addr := u.IP.String()
	if !slices.Contains(watchedAddrs, addr) {
		return
	}
	e := labplan.NeighEvent{
		At: time.Now(), Addr: addr, State: neighState(u.State),
		Deleted: u.Type == unix.RTM_DELNEIGH,
	}
	if len(u.HardwareAddr) > 0 {
		e.MAC = u.HardwareAddr.String()
		e.Node = w.macs[e.MAC]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Keep changes only: the kernel notifies every confirmation too.
	if p, ok := w.last[addr]; ok && p.MAC == e.MAC && p.State == e.State && p.Deleted == e.Deleted {
		return
	}
	w.last[addr] = e
	w.events = append(w.events, e)
}

func (w *neighWatch) timeline() []labplan.NeighEvent {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// neighState names a NUD state as ip neigh does.
func neighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}
