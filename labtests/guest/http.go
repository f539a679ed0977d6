package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/director-lb/director/labtests/labplan"
)

// httpServers are the hosts' HTTP servers on :80, each answering with its
// host's name, so the prober can tell which host answered for the VIP.
// They run inside this process (each listener opened in its host's
// namespace) so that serve steps can stop, slow or flap them.
type httpServers struct {
	mu      sync.Mutex
	servers map[string]*httpServer
}

// httpServer is one host's server. delay and flapStop are guarded by
// httpServers.mu.
type httpServer struct {
	host     string
	srv      *http.Server // nil while down
	delay    time.Duration
	flapStop chan struct{}
}

func startHTTPServers(p labplan.Params) (*httpServers, error) {
	hs := &httpServers{servers: map[string]*httpServer{}}
	for _, h := range labplan.Hosts() {
		if !h.HTTP || !h.Built(p) {
			continue
		}
		s := &httpServer{host: h.Name}
		hs.servers[h.Name] = s
		if err := hs.up(s); err != nil {
			hs.stop()
			return nil, err
		}
	}
	return hs, nil
}

// up starts s listening unless it already is; callers hold mu or own hs.
func (hs *httpServers) up(s *httpServer) error {
	if s.srv != nil {
		return nil
	}
	ln, err := listenIn(s.host, ":80")
	if err != nil {
		return err
	}
	body := s.host + "\n"
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hs.mu.Lock()
			d := s.delay
			hs.mu.Unlock()
			time.Sleep(d)
			w.Header().Set("Connection", "close")
			io.WriteString(w, body)
		}),
		ReadHeaderTimeout: 2 * time.Second,
	}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// down closes s's listener and connections: new connections are refused,
// as when a web server is killed.
func (hs *httpServers) down(s *httpServer) {
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// set puts host's server in mode (labplan.Serve*); d is the slow delay or
// the flap half period.
func (hs *httpServers) set(host, mode string, d time.Duration) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	s, ok := hs.servers[host]
	if !ok {
		return fmt.Errorf("%s runs no HTTP server", host)
	}
	if s.flapStop != nil {
		close(s.flapStop)
		s.flapStop = nil
	}
	s.delay = 0
	switch mode {
	case labplan.ServeUp:
		return hs.up(s)
	case labplan.ServeDown:
		hs.down(s)
		return nil
	case labplan.ServeSlow:
		s.delay = d
		return hs.up(s)
	case labplan.ServeFlap:
		stop := make(chan struct{})
		s.flapStop = stop
		go hs.flap(s, d, stop)
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// flap takes s down and up again every d until stop is closed, leaving it
// in whatever state the next serve step sets.
func (hs *httpServers) flap(s *httpServer, d time.Duration, stop chan struct{}) {
	t := time.NewTicker(d)
	defer t.Stop()
	for on := false; ; on = !on {
		hs.mu.Lock()
		select {
		case <-stop:
			hs.mu.Unlock()
			return
		default:
		}
		if on {
			_ = hs.up(s)
		} else {
			hs.down(s)
		}
		hs.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (hs *httpServers) stop() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, s := range hs.servers {
		if s.flapStop != nil {
			close(s.flapStop)
			s.flapStop = nil
		}
		hs.down(s)
	}
}

// prober requests http://addr/ from inside a namespace every interval,
// each time on a new TCP connection, until stopped. Requests are
// sequential: while the VIP is unreachable a request lasts the full
// timeout, which is therefore the resolution of an outage measurement.
type prober struct {
	cancel context.CancelFunc
	done   chan labplan.ProbeRun
	errc   chan error
}

// httpProbe is the HTTP prober's probe: a GET on a new connection.
func httpProbe(addr string) func() (func(time.Duration) labplan.Sample, func(), error) {
	return func() (func(time.Duration) labplan.Sample, func(), error) {
		return func(timeout time.Duration) labplan.Sample { return getOnce(addr, timeout) }, func() {}, nil
	}
}

// startProber runs a probe every interval from namespace ns. newProbe is
// called on the prober's own thread, inside ns, so that sockets it keeps
// open across probes belong there; the cleanup it returns runs at stop.
func startProber(ns string, newProbe func() (func(time.Duration) labplan.Sample, func(), error), interval, timeout time.Duration) (*prober, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{cancel: cancel, done: make(chan labplan.ProbeRun, 1), errc: make(chan error, 1)}
	go func() {
		// Sockets are created on this thread, so it stays in ns; it is
		// discarded when the goroutine ends locked.
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		var probe func(time.Duration) labplan.Sample
		cleanup := func() {}
		if err == nil {
			probe, cleanup, err = newProbe()
		}
		p.errc <- err
		if err != nil {
			return
		}
		defer cleanup()
		run := labplan.ProbeRun{Start: time.Now()}
		for ctx.Err() == nil {
			at := time.Now()
			s := probe(timeout)
			s.At, s.Took = at, labplan.Duration(time.Since(at))
			run.Samples = append(run.Samples, s)
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(at.Add(interval))):
			}
		}
		run.Stop = time.Now()
		p.done <- run
	}()
	if err := <-p.errc; err != nil {
		cancel()
		return nil, fmt.Errorf("prober in %s: %w", ns, err)
	}
	return p, nil
}

// stop ends the probe after the request in flight and returns the run.
func (p *prober) stop() labplan.ProbeRun {
	p.cancel()
	return <-p.done
}

// getOnce makes one HTTP/1.1 request on a new connection. It talks HTTP by
// hand rather than through http.Client, whose transport dials on other
// goroutines (and so other threads, in other namespaces).
func getOnce(addr string, timeout time.Duration) labplan.Sample {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return labplan.Sample{Err: shortErr(err)}
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return labplan.Sample{Err: shortErr(err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return labplan.Sample{Err: shortErr(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return labplan.Sample{Err: shortErr(err)}
	}
	if resp.StatusCode != http.StatusOK {
		return labplan.Sample{Err: resp.Status}
	}
	return labplan.Sample{OK: true, From: strings.TrimSpace(string(body))}
}

// shortErr keeps the innermost reason ("dial: connection refused",
// "read: i/o timeout") to keep results small.
func shortErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		inner := oe.Err
		// "read: read: connection reset by peer" says it twice.
		var se *os.SyscallError
		if errors.As(inner, &se) && se.Err != nil {
			inner = se.Err
		}
		return oe.Op + ": " + inner.Error()
	}
	return err.Error()
}
