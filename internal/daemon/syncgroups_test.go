package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/testwait"
	"github.com/director-lb/director/vrrp"
)

// natYAML is a NAT pair: the outside VIP on eth0 and the inside one on
// eth1 in one sync group, and an unrelated instance on eth2. %s is the
// control socket; %s after it is the sync_groups block.
const natInstances = `
control_socket: %s
instances:
  - {name: outside, interface: eth0, vrid: 51, advert_interval: 20ms, vips: [10.0.0.100/24]}
  - {name: inside, interface: eth1, vrid: 52, advert_interval: 20ms, vips: [10.1.0.1/24]}
  - {name: dmz, interface: eth2, vrid: 53, advert_interval: 20ms, vips: [10.2.0.1/24]}
`

const natGroup = natInstances + `sync_groups:
  - {name: nat, instances: [outside, inside]}
`

func (h *harness) group(name string) *control.SyncGroupState {
	for _, g := range h.d.State().SyncGroups {
		if g.Name == name {
			return &g
		}
	}
	return nil
}

func (h *harness) waitGroup(name, state string) {
	h.t.Helper()
	testwait.Eventually(h.t, patience, "sync group "+name+" "+state, func() bool {
		g := h.group(name)
		return g != nil && g.State == state
	})
}

func (h *harness) transitions() map[string]uint64 {
	out := map[string]uint64{}
	for _, in := range h.d.instances() {
		out[in.Name()] = in.Stats().Transitions
	}
	return out
}

// One member loses its carrier: it goes FAULT and the other member leaves
// MASTER too, so both release their VIPs; the unrelated instance stays
// master. When the carrier returns, both become master again.
func TestSyncGroupFaultMovesTheWholeGroup(t *testing.T) {
	h := start(t, natGroup)
	h.waitGroup("nat", "MASTER")
	out, in := localOf(t, h.mustRunning("outside")), localOf(t, h.mustRunning("inside"))
	testwait.Eventually(t, patience, "both members holding their VIPs", func() bool { return out.Held() && in.Held() })
	h.e.mu.Lock()
	w := h.e.carriers["eth1"]
	h.e.mu.Unlock()

	w.ch <- false
	h.waitState("inside", vrrp.StateFault)
	h.waitState("outside", vrrp.StateBackup)
	h.waitGroup("nat", "FAULT")
	testwait.Eventually(t, patience, "both members releasing their VIPs", func() bool { return !out.Held() && !in.Held() })
	if s := h.mustRunning("outside").in.Stats(); !strings.Contains(s.LastReason, "sync group") {
		t.Errorf("outside left MASTER because %q, want the sync group", s.LastReason)
	}
	if s := h.mustRunning("dmz").in.Stats().State; s != vrrp.StateMaster {
		t.Errorf("dmz is %s, want MASTER: it is in no group", s)
	}
	// Held in BACKUP, outside never claims alone, however long it waits.
	if s := h.mustRunning("outside").in.Stats(); s.State != vrrp.StateBackup || s.Gate != vrrp.GateHold {
		t.Errorf("outside while inside is in FAULT: %s, gate %s", s.State, s.Gate)
	}

	w.ch <- true
	h.waitGroup("nat", "MASTER")
	testwait.Eventually(t, patience, "both members holding their VIPs again", func() bool { return out.Held() && in.Held() })
	if !strings.Contains(h.logs.String(), "sync group state change") {
		t.Error("the group's state changes were not logged")
	}
}

// A peer with a higher priority wins one member: the other steps down to
// BACKUP too and stays there while the peer advertises; when the peer
// goes quiet both become master together.
func TestSyncGroupStrongerPeerTakesTheWholeGroup(t *testing.T) {
	h := start(t, natGroup)
	h.waitGroup("nat", "MASTER")
	in := localOf(t, h.mustRunning("inside"))
	eth0 := h.e.conn(t, "eth0")

	// The peer is master of outside only (as after a partition heals);
	// it advertises every interval, as a live master does.
	frame := advertFrame(t, 51, 200)
	ctx, stopPeer := context.WithCancel(context.Background())
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case eth0.in <- frame:
			case <-ctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { stopPeer(); <-peerDone }()

	h.waitState("outside", vrrp.StateBackup)
	h.waitState("inside", vrrp.StateBackup)
	h.waitGroup("nat", "BACKUP")
	testwait.Eventually(t, patience, "inside releasing its VIPs", func() bool { return !in.Held() })
	if g := h.group("nat"); g.Gate != "hold" {
		t.Errorf("gate %s while the peer is master of outside", g.Gate)
	}

	stopPeer()
	<-peerDone
	h.waitGroup("nat", "MASTER")
	testwait.Eventually(t, patience, "inside holding its VIPs again", in.Held)
}

// Reloads that add a group around members already in one state, change
// its membership, or remove it, cause no transition.
func TestSyncGroupReloadDoesNotFlap(t *testing.T) {
	h := start(t, natInstances)
	before := h.transitions()
	steps := []struct{ name, yaml string }{
		{"add a group of masters", natGroup},
		{"add a member", natInstances + "sync_groups:\n  - {name: nat, instances: [outside, inside, dmz]}\n"},
		{"remove a member", natGroup},
		{"remove the group", natInstances},
	}
	for _, s := range steps {
		if _, err := h.apply(s.yaml); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.yaml != natInstances {
			h.waitGroup("nat", "MASTER")
			// Synchronous proof that no member was told to step down.
			if g := h.group("nat"); g.Gate != "open" {
				t.Fatalf("%s: gate %s", s.name, g.Gate)
			}
		} else if g := h.group("nat"); g != nil {
			t.Fatalf("%s: group still shown: %+v", s.name, g)
		}
		for _, n := range []string{"outside", "inside", "dmz"} {
			r := h.mustRunning(n)
			if st := r.in.Stats(); st.State != vrrp.StateMaster || st.Transitions != before[n] {
				t.Fatalf("%s: %s is %s after %d transitions, want MASTER after %d", s.name, n, st.State, st.Transitions, before[n])
			}
		}
	}
	// Freed again, the members follow their own timers.
	testwait.Eventually(t, patience, "outside's gate free", func() bool {
		return h.mustRunning("outside").in.Stats().Gate == vrrp.GateFree
	})
}

// `director state` lists the group, its members and its state.
func TestSyncGroupState(t *testing.T) {
	h := start(t, natGroup)
	h.waitGroup("nat", "MASTER")
	g := h.group("nat")
	if len(g.Members) != 2 || g.Members[0].Name != "outside" || g.Members[1].Name != "inside" || g.Gate != "open" {
		t.Fatalf("state of nat: %+v", g)
	}
	for _, m := range g.Members {
		if m.State != "MASTER" {
			t.Errorf("member %s shown as %s", m.Name, m.State)
		}
	}
}
