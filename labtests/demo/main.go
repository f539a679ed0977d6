// Command demo boots the lab with director on both load balancers and
// prints a running commentary: the election, the client's requests
// balanced over two real servers with direct server return, the IPVS
// table, a failover and the old master's return. Run it as root from the
// module:
//
//	go run ./labtests/demo            # director on both nodes
//	go run ./labtests/demo -impl keepalived
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/director-lb/director/labtests"
	lp "github.com/director-lb/director/labtests/labplan"
)

func main() {
	impl := flag.String("impl", string(lp.Director), "VRRP implementation on both nodes: director or keepalived")
	all := flag.Bool("console", false, "show the whole guest console, not just the commentary")
	flag.Parse()
	if err := run(lp.Impl(*impl), *all); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(impl lp.Impl, all bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	lab, err := labtests.NewLab(ctx, logf)
	if err != nil {
		return err
	}
	console := labtests.NarrativeConsole(os.Stdout)
	if all {
		console = func(line string) { fmt.Println(line) }
	}
	fmt.Println("booting the lab (User-Mode Linux, about 3 s)...")
	res, err := lab.Boot(ctx, labtests.DemoPlan(labtests.DemoParams(impl)), labtests.Options{Console: console})
	if res != nil {
		fmt.Printf("\nsummary\n%s", labtests.DemoSummary(res))
		fmt.Printf("logs: %s\n", res.Dir)
	}
	if err != nil {
		return err
	}
	if failed := res.Failed(); len(failed) > 0 {
		return fmt.Errorf("step %d (%s) failed: %s", failed[0].Index, failed[0].Step, failed[0].Err)
	}
	return nil
}
