// Command guest is the lab's program inside the User-Mode Linux guest. The
// init script runs it as "guest run -plan FILE": it loads modules, builds the
// topology, runs the plan's steps and writes results.json next to the plan.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guest run -plan FILE")
		os.Exit(2)
	}
	log := slog.New(newConsoleHandler(os.Stderr, time.Now()))
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = runMain(context.Background(), log, args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
