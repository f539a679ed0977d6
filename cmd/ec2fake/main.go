// Command ec2fake serves the fake EC2 Query API and per-instance IMDSv2
// endpoints, so that the lab can run director's EC2 mover against it (for
// example inside the User-Mode Linux guest).
//
//	ec2fake -seed region.json -listen 127.0.0.1:8080 \
//	    -imds i-0aaa=127.0.0.1:8081 -imds i-0bbb=127.0.0.1:8082 \
//	    -min-latency 50ms -max-latency 200ms -lag 300ms
//
// The EC2 endpoint answers POST / (point the mover's endpoint at
// http://LISTEN/); the admin API (see ec2fake.Fake.Admin) is under /_fake/.
// See cloud/ec2fake/testdata/pair.json for a seed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/director-lb/director/cloud/ec2fake"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "ec2fake:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if set, is called with the EC2 address
// and the metadata addresses by instance once all are listening.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(ec2 string, imds map[string]string)) error {
	fs := flag.NewFlagSet("ec2fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var imdsFlags, keys listFlag
	listen := fs.String("listen", "127.0.0.1:8080", "address of the EC2 endpoint and the /_fake/ admin API")
	seedPath := fs.String("seed", "", "JSON file with the starting state (required; see ec2fake.Seed)")
	lag := fs.Duration("lag", 0, "how long Describe calls and IMDS show the state from before a change")
	minLat := fs.Duration("min-latency", 0, "minimum delay per EC2 request")
	maxLat := fs.Duration("max-latency", 0, "maximum delay per EC2 request")
	fs.Var(&imdsFlags, "imds", "INSTANCE-ID=ADDR: serve that instance's metadata service on ADDR (repeatable)")
	fs.Var(&keys, "access-key", "accept only this access key ID (repeatable; default: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seedPath == "" {
		return errors.New("-seed is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	file, err := os.Open(*seedPath)
	if err != nil {
		return err
	}
	seed, err := ec2fake.LoadSeed(file)
	file.Close()
	if err != nil {
		return err
	}
	fake, err := ec2fake.FromSeed(ec2fake.Options{Lag: *lag, MinLatency: *minLat, MaxLatency: *maxLat, AccessKeys: keys}, seed)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/_fake/", http.StripPrefix("/_fake", fake.Admin()))
	mux.Handle("/", fake)
	type server struct {
		srv      *http.Server
		instance string
	}
	servers := []server{{srv: &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}}}
	for _, spec := range imdsFlags {
		id, addr, ok := strings.Cut(spec, "=")
		if !ok || id == "" || addr == "" {
			return fmt.Errorf("-imds %q: want INSTANCE-ID=ADDR", spec)
		}
		servers = append(servers, server{srv: &http.Server{Addr: addr, Handler: fake.IMDS(id), ReadHeaderTimeout: 10 * time.Second}, instance: id})
	}

	errc := make(chan error, len(servers))
	var ec2Addr string
	imdsAddrs := map[string]string{}
	for i, s := range servers {
		ln, err := net.Listen("tcp", s.srv.Addr)
		if err != nil {
			for _, started := range servers[:i] {
				_ = started.srv.Close()
			}
			return err
		}
		addr := ln.Addr().String()
		if s.instance == "" {
			ec2Addr = addr
			log.Info("EC2 endpoint listening", "addr", addr)
		} else {
			imdsAddrs[s.instance] = addr
			log.Info("metadata service listening", "instance", s.instance, "addr", addr)
		}
		go func() {
			if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if ready != nil {
		ready(ec2Addr, imdsAddrs)
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.srv.Shutdown(shutdown)
	}
	return err
}
