package vip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchCarrier reports whether ifname has carrier: it is administratively
// up, operationally up (IFF_RUNNING) and its lower layer is up
// (IFF_LOWER_UP). The first value is the state at the time of the call,
// then one value per change until ctx ends, when the channel is closed.
// A deleted or renamed interface has no carrier; one created again under
// the same name is followed.
//
// Values are coalesced: a reader that falls behind gets the latest state,
// never the same value twice in a row, so a flap shorter than the reader's
// delay may go unseen.
//
// The watch stays in the network namespace of the calling goroutine's
// thread. If the kernel drops notifications (socket overrun), the watch
// resubscribes and re-reads the state.
func WatchCarrier(ctx context.Context, ifname string) (<-chan bool, error) {
	if err := checkIfName(ifname); err != nil {
		return nil, err
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("watch carrier of %s: get network namespace: %w", ifname, err)
	}
	// Already in ns: open the socket here. The library would setns(2) into
	// ns even so, which needs CAP_SYS_ADMIN, which the systemd unit withholds.
	// Only rtnetlink: asking for every family fails on kernels without xfrm_user.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("watch carrier of %s: %w", ifname, err)
	}
	w := &carrierWatch{ifname: ifname, ns: ns, h: h}
	// Subscribe before reading the state, so no change falls in between.
	sub, err := w.subscribe()
	if err != nil {
		w.close()
		return nil, err
	}
	up, err := w.current()
	if err != nil {
		sub.stop()
		w.close()
		return nil, err
	}
	out := make(chan bool)
	go w.run(ctx, sub, up, out)
	return out, nil
}

type carrierWatch struct {
	ifname string
	ns     netns.NsHandle
	h      *netlink.Handle
	index  int // of the interface named ifname, 0 if none
}

type linkSub struct {
	updates chan netlink.LinkUpdate
	done    chan struct{}
}

// stop ends the subscription and drains it, so the library's receive
// goroutine is never left blocked on a send.
func (s *linkSub) stop() {
	close(s.done)
	for range s.updates {
	}
}

func (w *carrierWatch) subscribe() (*linkSub, error) {
	s := &linkSub{
		updates: make(chan netlink.LinkUpdate, 64),
		done:    make(chan struct{}),
	}
	opt := netlink.LinkSubscribeOptions{
		// The subscription ends itself (closing updates) after a receive
		// error; run notices the closed channel and resubscribes.
		ErrorCallback: func(error) {},
	}
	if !w.inOwnNetns() {
		// A resubscription on a thread of another namespace (tests run
		// watches in namespaces of their own) must switch to the watch's.
		opt.Namespace = &w.ns
	}
	err := netlink.LinkSubscribeWithOptions(s.updates, s.done, opt)
	if err != nil {
		return nil, fmt.Errorf("watch carrier of %s: subscribe: %w", w.ifname, err)
	}
	return s, nil
}

// inOwnNetns reports whether the calling thread is in the watch's network
// namespace, where a socket can be opened without setns(2).
func (w *carrierWatch) inOwnNetns() bool {
	cur, err := netns.Get()
	if err != nil {
		return false
	}
	defer cur.Close()
	return cur.Equal(w.ns)
}

// current reads the interface's state. The interface must exist.
func (w *carrierWatch) current() (bool, error) {
	link, err := w.h.LinkByName(w.ifname)
	if err != nil {
		return false, fmt.Errorf("watch carrier of %s: %w", w.ifname, err)
	}
	w.index = link.Attrs().Index
	return hasCarrier(link.Attrs()), nil
}

// recover re-reads the state after a lost subscription; a missing
// interface has no carrier.
func (w *carrierWatch) recover() (bool, error) {
	up, err := w.current()
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		w.index = 0
		return false, nil
	}
	return up, err
}

func (w *carrierWatch) close() {
	w.h.Close()
	_ = w.ns.Close()
}

func (w *carrierWatch) run(ctx context.Context, sub *linkSub, cur bool, out chan<- bool) {
	defer close(out)
	defer w.close()
	var sent, sentAny bool
	pending := true
	changed := func() bool { return !sentAny || cur != sent }
	backoff := 100 * time.Millisecond
	for {
		var send chan<- bool
		if pending {
			send = out
		}
		select {
		case <-ctx.Done():
			if sub != nil {
				sub.stop()
			}
			return
		case send <- cur:
			sent, sentAny, pending = cur, true, false
		case u, ok := <-updatesOf(sub):
			if !ok {
				// Lost the subscription; try again after a pause.
				sub = nil
				continue
			}
			if up, relevant := w.apply(u); relevant {
				cur = up
				pending = changed()
			}
		case <-retryAfter(sub, backoff):
			s, err := w.subscribe()
			if err == nil {
				var up bool
				if up, err = w.recover(); err == nil {
					sub, cur, backoff = s, up, 100*time.Millisecond
					pending = changed()
					continue
				}
				s.stop()
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// updatesOf returns the subscription's channel, or nil (blocks) if none.
func updatesOf(s *linkSub) <-chan netlink.LinkUpdate {
	if s == nil {
		return nil
	}
	return s.updates
}

// retryAfter fires after d if there is no subscription.
func retryAfter(s *linkSub, d time.Duration) <-chan time.Time {
	if s != nil {
		return nil
	}
	return time.After(d)
}

// apply interprets an update. relevant is false for other interfaces.
func (w *carrierWatch) apply(u netlink.LinkUpdate) (up, relevant bool) {
	attrs := u.Link.Attrs()
	mine := attrs.Index == w.index && w.index != 0
	named := attrs.Name == w.ifname
	switch {
	case u.Header.Type == unix.RTM_DELLINK && mine:
		w.index = 0
		return false, true
	case u.Header.Type != unix.RTM_NEWLINK:
		return false, false
	case named:
		w.index = attrs.Index
		return hasCarrier(attrs), true
	case mine: // renamed away
		w.index = 0
		return false, true
	}
	return false, false
}

func hasCarrier(a *netlink.LinkAttrs) bool {
	const want = unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP
	return a.RawFlags&want == want
}
