package labplan

import (
	"fmt"
	"strings"

	"github.com/director-lb/director/labtests/uml"
)

// Hooks gives director nodes a notify_master command that sleeps 10 s and
// leaves a child that sleeps 60 s (a hook that hangs, and one whose child
// outlives it), a short hooks.timeout, and a notify FIFO.
type Hooks struct {
	Timeout Duration `json:"timeout"`
}

// SlowHookFile is the slow hook's name in the run directory.
const SlowHookFile = "slow-hook.sh"

// SlowHook sleeps past any timeout and forks a child that would outlive
// it; the child's argument (60.5) tells it apart from anything else.
const SlowHook = "#!/bin/sh\nsleep 60.5 &\nsleep 10\n"

// NotifyFIFO is node's notify FIFO (the guest's /run is shared).
func NotifyFIFO(node string) string { return "/run/notify-" + node + ".fifo" }

func directorHookRefs(b *strings.Builder) {
	fmt.Fprintf(b, "    notify_master: [/bin/sh, %s/%s]\n", uml.GuestOut, SlowHookFile)
}

func directorHooks(b *strings.Builder, h *Hooks, node string) {
	fmt.Fprintf(b, "notify_fifo: %s\nhooks:\n  timeout: %s\n", NotifyFIFO(node), h.Timeout.D())
}
