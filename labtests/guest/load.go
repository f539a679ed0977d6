package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/director-lb/director/labtests/labplan"
)

// loadTimeout is one load request's limit.
const loadTimeout = time.Second

// stepLoad runs s.Count clients in the client's namespace, each making
// requests to VIP:80 back to back for s.Duration (each on a new
// connection), and reports the answered requests a second.
func stepLoad(ctx context.Context, _ *runner, s labplan.Step, sr *labplan.StepResult) error {
	addr := net.JoinHostPort(labplan.VIP4Addr, strconv.Itoa(labplan.HTTPPort))
	res := labplan.LoadResult{Responders: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, s.Count)
	start := time.Now()
	end := start.Add(s.Duration.D())
	for range s.Count {
		wg.Go(func() {
			// Each client's thread stays in the client's namespace;
			// it is discarded when the goroutine ends locked.
			runtime.LockOSThread()
			h, err := netns.GetFromName(labplan.Client)
			if err == nil {
				err = netns.Set(h)
				h.Close()
			}
			if err != nil {
				errc <- err
				return
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				smp := getOnce(addr, loadTimeout)
				mu.Lock()
				if smp.OK {
					res.Requests++
					res.Responders[smp.From]++
				} else {
					res.Failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("load client: %w", err)
	}
	res.Took = time.Since(start)
	res.Rate = float64(res.Requests) / res.Took.Seconds()
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	sr.Exec = &labplan.ExecOutput{Stdout: string(b)}
	return nil
}
