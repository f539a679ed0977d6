package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/director-lb/director/labtests/labplan"
)

// hostServers are the real servers' echo and DNS servers, which server
// steps close and open again (to fail a TCP or UDP health check).
type hostServers struct {
	mu sync.Mutex
	// stops holds the stop function of every open server.
	stops map[serverKey]func()
}

type serverKey struct{ host, server string }

// serverStarts open one kind of server in a real server.
var serverStarts = map[string]func(labplan.Host) (func(), error){
	labplan.ServerEcho: startEcho,
	labplan.ServerDNS:  startDNS,
}

// startHostServers opens every real server's echo and DNS servers.
func startHostServers() (*hostServers, error) {
	hs := &hostServers{stops: map[serverKey]func(){}}
	for _, h := range labplan.Hosts() {
		if !h.RealServer {
			continue
		}
		for _, server := range []string{labplan.ServerDNS, labplan.ServerEcho} {
			if err := hs.set(h.Name, server, true); err != nil {
				hs.stop()
				return nil, err
			}
		}
	}
	return hs, nil
}

// set opens (up) or closes host's server; either is a no-op when the
// server is already so.
func (hs *hostServers) set(host, server string, up bool) error {
	h, ok := labplan.HostByName(host)
	if !ok || !h.RealServer {
		return fmt.Errorf("%q is not a real server", host)
	}
	start, ok := serverStarts[server]
	if !ok {
		return fmt.Errorf("no server %q", server)
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	k := serverKey{host, server}
	stop, open := hs.stops[k]
	switch {
	case up && !open:
		stop, err := start(h)
		if err != nil {
			return fmt.Errorf("%s server of %s: %w", server, host, err)
		}
		hs.stops[k] = stop
	case !up && open:
		stop()
		delete(hs.stops, k)
	}
	return nil
}

func (hs *hostServers) stop() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for k, stop := range hs.stops {
		stop()
		delete(hs.stops, k)
	}
}

func stepServer(_ context.Context, r *runner, s labplan.Step, _ *labplan.StepResult) error {
	return r.servers.set(s.Node, s.Server, s.Mode == labplan.ServeUp)
}
