package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/internal/routing"
)

// cmdNode is drain-node and undrain-node: routed mode's maintenance.
func cmdNode(cmd string, args []string, stdout, stderr io.Writer) int {
	what := map[string]string{
		"drain-node":   "Drain-node withdraws this node's routes (or, with routing.drain: deprefer, announces\nthem less preferred), so that the router sends its flows to the other directors,\nthen reports until no packet reaches its VIP services any more or its IPVS\nactive connections are zero, or routing.drain_timeout passes. The drain is kept\nacross restarts until undrain-node. Exit status 0: drained; 1: timed out or failed.",
		"undrain-node": "Undrain-node announces this node's routes again (as far as it is fit).",
	}[cmd]
	fs := newFlags(cmd, cmd+" [-socket path] [-no-wait]\n\n"+what, stderr)
	sock := socketFlag(fs)
	noWait := fs.Bool("no-wait", false, "withdraw and return at once, without waiting for the traffic to leave")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "director %s: takes no arguments\n", cmd)
		return 2
	}
	c := control.NewClient(*sock)
	ctx := context.Background()
	if cmd == "undrain-node" {
		if err := c.UndrainNode(ctx); err != nil {
			fmt.Fprintf(stderr, "director %s: %v\n", cmd, err)
			return 1
		}
		fmt.Fprintln(stdout, "undrained: the routes are announced again")
		return 0
	}
	p, err := c.DrainNode(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "director %s: %v\n", cmd, err)
		return 1
	}
	fmt.Fprintf(stdout, "routes %s; waiting for the traffic to leave\n", p.Mode)
	if *noWait {
		return 0
	}
	return followDrain(ctx, c, stdout, stderr, time.Second)
}

// followDrain prints the drain's progress every step until it is over.
func followDrain(ctx context.Context, c *control.Client, stdout, stderr io.Writer, step time.Duration) int {
	last := ""
	for {
		st, err := c.State(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "director drain-node: %v\n", err)
			return 1
		}
		var p *routing.DrainProgress
		if st.Routing != nil {
			p = st.Routing.DrainProgress
		}
		if p == nil {
			fmt.Fprintln(stderr, "director drain-node: the drain was cancelled (undrain-node or a reload)")
			return 1
		}
		line := fmt.Sprintf("%s: %d active connections, no packets for %s", p.Elapsed.Round(time.Second), p.ActiveConns, p.QuietFor.Round(100*time.Millisecond))
		if line != last && p.State == "draining" {
			fmt.Fprintln(stdout, line)
			last = line
		}
		switch p.State {
		case "drained":
			fmt.Fprintln(stdout, p.Result)
			return 0
		case "timed_out":
			fmt.Fprintf(stdout, "timed out: %s\n", p.Result)
			return 1
		}
		time.Sleep(step)
	}
}

// printRouting shows routed mode in state: the VIPs, the sessions, the drain.
func printRouting(w io.Writer, r *control.RoutingState) {
	fmt.Fprintf(w, "\nrouted mode %s, node %s", r.Mode, r.Drain)
	if p := r.DrainProgress; p != nil {
		fmt.Fprintf(w, " (drain %s after %s: %s)", p.State, p.Elapsed.Round(time.Second), orDash(p.Result))
	}
	fmt.Fprintln(w)
	if r.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", r.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tANNOUNCED\tROUTE\tREASON")
	for _, v := range r.VIPs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Addr, map[bool]string{true: "yes", false: "no"}[v.Announced], orDash(v.Route), v.Reason)
	}
	tw.Flush()
	if len(r.Sessions) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BGP PEER\tASN\tSTATE\tUPTIME\tPREFIXES SENT\tFLAPS\tBFD\tLAST ERROR")
	for _, s := range r.Sessions {
		up := "-"
		if !s.Since.IsZero() {
			up = time.Since(s.Since).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Peer, s.ASN, strings.ToUpper(s.State), up, s.PrefixesSent, s.Flaps, orDash(s.BFD), orDash(s.LastError))
	}
	tw.Flush()
}
