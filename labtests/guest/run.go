package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// runner executes one plan inside the guest.
type runner struct {
	log   *slog.Logger
	plan  labplan.Plan
	procs *procs
	vips  *vipWatch
	probe *prober // the running prober, if any
	// fine is the fine UDP probe running beside it, if any.
	fine *fineProber
	// neigh follows the client's neighbour entries for the VIPs.
	neigh *neighWatch
	// adverts records the VRRP adverts the client hears (WatchAdverts).
	adverts *advertWatch
	// conns are the client's open long-lived connections, if any.
	conns *connSet
	// web are the hosts' HTTP servers (serve steps change them).
	web *httpServers
	// servers are the real servers' echo and DNS servers (server steps
	// close and open them).
	servers *hostServers
	// configs maps a node to the configuration file its next start uses
	// when a use_config step changed it.
	configs map[string]string
	res     labplan.Results
}

func runMain(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	planPath := fs.String("plan", "", "plan JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*planPath)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	var plan labplan.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("decode plan: %w", err)
	}
	r := &runner{log: log, plan: plan, procs: newProcs(), vips: newVIPWatch(log), configs: map[string]string{}}
	r.res.Plan, r.res.Started = plan.Name, time.Now()
	runErr := r.execute(ctx)
	if runErr != nil {
		r.res.Error = runErr.Error()
		log.Error("plan failed", "err", runErr)
	}
	return errors.Join(runErr, r.writeResults())
}

func (r *runner) execute(ctx context.Context) error {
	// Deferred in reverse: daemons stop first (their VIP changes still
	// recorded), then the prober, servers and the watcher.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	defer func() {
		if r.probe != nil {
			r.probe.stop()
		}
		if r.fine != nil {
			r.fine.stop()
		}
		if r.conns != nil {
			r.conns.close()
		}
	}()

	r.log.Info("guest up", "plan", r.plan.Name, "params", r.plan.Params.Describe())
	// The init script has loaded the plan's modules (uml.InitScript).
	if err := buildTopology(r.plan.Params, r.plan.Sysctls); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	web, err := startHTTPServers(r.plan.Params)
	if err != nil {
		return err
	}
	defer web.stop()
	r.web = web
	servers, err := startHostServers()
	if err != nil {
		return err
	}
	defer servers.stop()
	r.servers = servers
	stopFine, err := startFineResponders(r.plan.Params)
	if err != nil {
		return err
	}
	defer stopFine()
	for _, n := range r.plan.Params.LBs() {
		if err := r.vips.start(watchCtx, n); err != nil {
			return err
		}
	}
	nw, err := startNeighWatch(watchCtx, r.log, labplan.Client)
	if err != nil {
		return err
	}
	r.neigh = nw
	if r.plan.Params.WatchAdverts {
		aw, err := startAdvertWatch(labplan.Client)
		if err != nil {
			return err
		}
		r.adverts = aw
	}
	defer r.procs.stopAll(3 * time.Second)
	for _, h := range r.plan.Params.FRRHosts() {
		if err := r.startFRR(ctx, h); err != nil {
			return err
		}
	}
	if r.plan.Params.EC2 {
		if err := r.startEC2(ctx); err != nil {
			return err
		}
	}
	r.res.Ready = time.Now()
	r.log.Info("topology ready", "took", r.res.Ready.Sub(r.res.Started).Round(time.Millisecond))

	stepsCtx, cancel := context.WithTimeout(ctx, r.plan.Timeout.D())
	defer cancel()
	r.runSteps(stepsCtx)
	r.res.Finished = time.Now()
	if stepsCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("plan timeout %v reached", r.plan.Timeout)
	}
	return nil
}

func (r *runner) runSteps(ctx context.Context) {
	failed := false
	for i, s := range r.plan.Steps {
		sr := labplan.StepResult{Index: i, Step: s, Probe: -1, Conns: -1}
		if failed {
			sr.Skipped = true
			r.res.Steps = append(r.res.Steps, sr)
			continue
		}
		h, ok := handlers[s.Kind]
		sr.Start = time.Now()
		var err error
		if !ok {
			err = fmt.Errorf("no handler for step kind %q", s.Kind)
		} else if ctx.Err() != nil {
			err = ctx.Err()
		} else {
			err = h(ctx, r, s, &sr)
		}
		sr.End = time.Now()
		sr.OK = err == nil
		took := sr.Took().Round(time.Millisecond)
		switch {
		case err != nil:
			sr.Err = err.Error()
			r.log.Warn(fmt.Sprintf("step %d failed: %s", i, s), "took", took, "err", err)
			failed = !s.MayFail
		case s.Kind != labplan.KindSay:
			r.log.Info(fmt.Sprintf("step %d: %s", i, s), "took", took)
		}
		r.res.Steps = append(r.res.Steps, sr)
	}
}

func (r *runner) writeResults() error {
	r.res.VIP = r.vips.timeline()
	r.res.Neigh = r.neigh.timeline()
	r.res.Adverts, r.res.AdvertsDropped = r.adverts.stop()
	if r.res.Finished.IsZero() {
		r.res.Finished = time.Now()
	}
	b, err := json.MarshalIndent(r.res, "", " ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.plan.Paths.Out, "results.json"), b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
