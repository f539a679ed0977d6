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
	"time"

	"github.com/vishvananda/netns"

	"github.com/director-lb/director/labtests/labplan"
)

// startHTTPServers runs, in every host that has one, an HTTP server on :80
// answering with the host's name, so the prober can tell which host
// answered for the VIP. They run inside this process: each listener was
// opened in its host's namespace.
func startHTTPServers() (stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for _, h := range labplan.Hosts() {
		if !h.HTTP {
			continue
		}
		ln, err := listenIn(h.Name, ":80")
		if err != nil {
			stop()
			return nil, err
		}
		body := h.Name + "\n"
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, body)
			}),
			ReadHeaderTimeout: 2 * time.Second,
		}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return stop, nil
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

func startProber(ns, addr string, interval, timeout time.Duration) (*prober, error) {
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
		p.errc <- err
		if err != nil {
			return
		}
		run := labplan.ProbeRun{Start: time.Now()}
		for ctx.Err() == nil {
			at := time.Now()
			s := getOnce(addr, timeout)
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
