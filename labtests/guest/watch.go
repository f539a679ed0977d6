package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

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

func (w *vipWatch) timeline() []labplan.HolderEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]labplan.HolderEvent(nil), w.events...)
}
