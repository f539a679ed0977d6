package vip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestWatchCarrier(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan bool
	err := l.inDut(func() error {
		var err error
		ch, err = WatchCarrier(ctx, dutIf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(step string, want bool) {
		t.Helper()
		select {
		case got, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", step)
			}
			if got != want {
				t.Fatalf("%s: carrier %v, want %v", step, got, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no carrier report", step)
		}
	}
	expect("initial", true)
	// The peer's end going down takes our carrier away; our end stays up.
	l.ip("-n", l.peerName, "link", "set", peerIf, "down")
	expect("peer down", false)
	l.ip("-n", l.peerName, "link", "set", peerIf, "up")
	expect("peer up", true)
	l.ip("-n", l.dutName, "link", "set", dutIf, "down")
	expect("own end down", false)
	l.ip("-n", l.dutName, "link", "set", dutIf, "up")
	expect("own end up", true)
	// Renamed away, then back.
	l.ip("-n", l.dutName, "link", "set", dutIf, "name", "seg5")
	expect("renamed away", false)
	l.ip("-n", l.dutName, "link", "set", "seg5", "name", dutIf)
	l.ip("-n", l.dutName, "link", "set", dutIf, "up")
	expect("renamed back", true)
	// Deleted, then created again under the same name.
	l.ip("-n", l.dutName, "link", "del", dutIf)
	expect("deleted", false)
	l.ip("-n", l.dutName, "link", "add", dutIf, "type", "veth", "peer", "name", "seg9")
	l.ip("-n", l.dutName, "link", "set", "seg9", "up")
	l.ip("-n", l.dutName, "link", "set", dutIf, "up")
	expect("recreated", true)

	// Nothing more to report: no duplicate values.
	select {
	case v := <-ch:
		t.Fatalf("unexpected report %v", v)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("value after cancel")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchCarrierInitialDown(t *testing.T) {
	l := newLab(t, labOptions{})
	l.ip("-n", l.peerName, "link", "set", peerIf, "down")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan bool
	if err := l.inDut(func() error {
		var err error
		ch, err = WatchCarrier(ctx, dutIf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got {
			t.Fatal("initial carrier true with the peer down")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no initial report")
	}
}

func TestWatchCarrierMissingInterface(t *testing.T) {
	l := newLab(t, labOptions{})
	err := l.inDut(func() error {
		_, err := WatchCarrier(context.Background(), "nosuch0")
		return err
	})
	if err == nil {
		t.Fatal("WatchCarrier on a missing interface succeeded")
	}
}

// A lost subscription is replaced, and the state is read again so that a
// change missed in between is reported.
func TestWatchCarrierResubscribes(t *testing.T) {
	l := newLab(t, labOptions{})
	ns, err := netns.GetFromName(l.dutName)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	w := &carrierWatch{ifname: dutIf, ns: ns, h: h}
	up, err := w.current()
	if err != nil || !up {
		t.Fatalf("current: %v, %v", up, err)
	}
	lost := &linkSub{updates: make(chan netlink.LinkUpdate), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan bool)
	stopped := make(chan struct{})
	go func() {
		w.run(ctx, lost, up, out)
		close(stopped)
	}()
	if v := <-out; !v {
		t.Fatal("initial value false")
	}
	// Carrier goes away while no subscription is there to see it.
	close(lost.updates)
	l.ip("-n", l.peerName, "link", "set", peerIf, "down")
	select {
	case v := <-out:
		if v {
			t.Fatal("got true, want false")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("missed change not reported after resubscribing")
	}
	// The new subscription delivers changes.
	l.ip("-n", l.peerName, "link", "set", peerIf, "up")
	select {
	case v := <-out:
		if !v {
			t.Fatal("got false, want true")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no report from the new subscription")
	}
	cancel()
	<-stopped
}

// Under its systemd unit the daemon has no CAP_SYS_ADMIN, which setns(2)
// needs even to enter the namespace it is already in: a watch in the
// caller's own namespace must not switch namespaces.
func TestWatchCarrierWithoutSysAdmin(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan bool
	err := l.inDut(func() error {
		// Capabilities are per thread; inDut's thread is discarded after.
		if err := dropEffectiveCap(unix.CAP_SYS_ADMIN); err != nil {
			return err
		}
		var err error
		ch, err = WatchCarrier(ctx, dutIf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []bool{true, false} {
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("carrier %v, want %v", got, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no carrier report (want %v)", want)
		}
		if want {
			l.ip("-n", l.peerName, "link", "set", peerIf, "down")
		}
	}
}

// dropEffectiveCap removes c from the calling thread's effective set.
func dropEffectiveCap(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
