package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/vrrp"
)

func testRunner(steps ...labplan.Step) *runner {
	return &runner{
		log:  slog.New(newConsoleHandler(io.Discard, time.Now())),
		plan: labplan.Plan{Steps: steps},
	}
}

func TestRunStepsStopsAtFirstFailure(t *testing.T) {
	r := testRunner(labplan.Say("a"), labplan.Step{Kind: "bogus"}, labplan.Say("b"))
	r.runSteps(context.Background())
	got := r.res.Steps
	if len(got) != 3 {
		t.Fatalf("%d step results, want 3", len(got))
	}
	if !got[0].OK || got[1].OK || got[1].Err == "" || !got[2].Skipped || got[2].OK {
		t.Errorf("results = %+v, want ok, failed, skipped", got)
	}
	if got[2].Probe != -1 {
		t.Errorf("Probe of a non-probe step = %d, want -1", got[2].Probe)
	}
}

func TestRunStepsMayFailContinues(t *testing.T) {
	r := testRunner(labplan.Step{Kind: "bogus"}.Tolerant(), labplan.Sleep(time.Millisecond))
	r.runSteps(context.Background())
	if got := r.res.Steps; got[0].OK || !got[1].OK || got[1].Skipped {
		t.Errorf("results = %+v, want failed then ok", got)
	}
}

func TestRunStepsTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r := testRunner(labplan.Sleep(time.Second), labplan.Say("never"))
	start := time.Now()
	r.runSteps(ctx)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("sleep ran %v past the plan's deadline", took)
	}
	if got := r.res.Steps; got[0].OK || !got[1].Skipped {
		t.Errorf("results = %+v, want the sleep cut short and the rest skipped", got)
	}
}

func TestEveryKindHasAHandler(t *testing.T) {
	kinds := []labplan.StepKind{
		labplan.KindStart, labplan.KindRestart, labplan.KindSignal, labplan.KindWaitExit,
		labplan.KindWaitVIP, labplan.KindWaitNoVIP, labplan.KindWaitSole, labplan.KindSleep, labplan.KindProbeStart,
		labplan.KindProbeStop, labplan.KindCut, labplan.KindHeal, labplan.KindPartition,
		labplan.KindHealPartition, labplan.KindExec, labplan.KindSay, labplan.KindUseConfig,
		labplan.KindWaitExec, labplan.KindStatus, labplan.KindConnsOpen, labplan.KindConnsCheck,
		labplan.KindConnsClose, labplan.KindServe, labplan.KindDNSQuery, labplan.KindSampleProc, labplan.KindFlood,
		labplan.KindServer, labplan.KindWaitIPVS, labplan.KindLoad, labplan.KindHoldPlant,
	}
	for _, k := range kinds {
		if handlers[k] == nil {
			t.Errorf("no handler for %q", k)
		}
	}
	if len(handlers) != len(kinds) {
		t.Errorf("%d handlers for %d kinds: update this list", len(handlers), len(kinds))
	}
}

func TestPartitionRulesOnlyVRRPBetweenLBs(t *testing.T) {
	r := partitionRules()
	for _, want := range []string{
		"table bridge lab_partition", "hook forward",
		`iifname "vlb1" oifname "vlb2" ip protocol 112 drop`,
		`iifname "vlb2" oifname "vlb1" ip protocol 112 drop`,
		`iifname "vlb1" oifname "vlb2" ip6 nexthdr 112 drop`,
	} {
		if !strings.Contains(r, want) {
			t.Errorf("rules lack %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "vclient") || strings.Count(r, "drop") != 4 {
		t.Errorf("rules drop more than VRRP between lb1 and lb2:\n%s", r)
	}
}

func TestVIPWatchWait(t *testing.T) {
	w := newVIPWatch(slog.New(newConsoleHandler(io.Discard, time.Now())))
	w.held[labplan.LB1] = map[string]bool{}
	go func() {
		time.Sleep(10 * time.Millisecond)
		w.set(labplan.LB1, labplan.VIP4Addr, true)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w.wait(ctx, labplan.LB1, true); err != nil {
		t.Fatalf("wait for VIP: %v", err)
	}
	w.set(labplan.LB1, "10.9.9.9", true) // not a VIP: ignored
	w.set(labplan.LB1, labplan.VIP4Addr, true)
	if ev := w.timeline(); len(ev) != 1 || !ev[0].Held || ev[0].Node != labplan.LB1 {
		t.Errorf("timeline = %+v, want one event (duplicates and other addresses ignored)", ev)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := w.wait(short, labplan.LB1, false); err == nil {
		t.Errorf("wait for release succeeded while the VIP is held")
	}
}

// waitSole returns only once lb1 alone has held the VIP for the quiet
// time: not while lb2 holds it too, and not sooner than quiet after lb2
// let go.
func TestVIPWatchWaitSole(t *testing.T) {
	w := newVIPWatch(slog.New(newConsoleHandler(io.Discard, time.Now())))
	w.held[labplan.LB1] = map[string]bool{}
	w.held[labplan.LB2] = map[string]bool{}
	w.set(labplan.LB1, labplan.VIP4Addr, true)
	w.set(labplan.LB2, labplan.VIP4Addr, true)
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := w.waitSole(short, labplan.LB1, time.Millisecond); err == nil {
		t.Fatalf("waitSole succeeded while lb1 and lb2 both hold the VIP")
	}
	const quiet = 50 * time.Millisecond
	released := time.Now()
	w.set(labplan.LB2, labplan.VIP4Addr, false)
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := w.waitSole(ctx, labplan.LB1, quiet); err != nil {
		t.Fatalf("waitSole once lb2 let go: %v", err)
	}
	if took := time.Since(released); took < quiet {
		t.Errorf("waitSole returned %v after lb2 let go, before the quiet time %v", took, quiet)
	}
	short2, cancel3 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel3()
	if err := w.waitSole(short2, labplan.LB2, time.Millisecond); err == nil {
		t.Errorf("waitSole for lb2 succeeded while lb1 holds the VIP")
	}
}

// The forged flood packet is a VRRPv3 advert director's own parser reads
// as such up to the checksum, which is wrong: only the checksum makes it
// junk.
func TestFloodForgedChecksum(t *testing.T) {
	src := [4]byte{10, 0, 0, 30}
	b := floodPacket(labplan.FloodForged, src)
	_, err := vrrp.Parse(b, netip.AddrFrom4(src), netip.AddrFrom4([4]byte{224, 0, 0, 18}))
	var pe *vrrp.ParseError
	if !errors.As(err, &pe) || pe.Reason != vrrp.DropChecksum {
		t.Fatalf("forged packet: %v, want a checksum error", err)
	}
	good := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(good[6:], binary.BigEndian.Uint16(good[6:])-1)
	if _, err := vrrp.Parse(good, netip.AddrFrom4(src), netip.AddrFrom4([4]byte{224, 0, 0, 18})); err != nil {
		t.Fatalf("with the checksum put right it still fails: %v", err)
	}
}
