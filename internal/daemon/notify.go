package daemon

import (
	"context"
	"log/slog"
	"os/exec"
	"strconv"

	"github.com/director-lb/director/vrrp"
)

// notifyState uses keepalived's words, so existing notify scripts work unchanged.
func notifyState(s vrrp.State) string {
	if s == vrrp.StateStopped {
		return "STOP"
	}
	return s.String()
}

// notifier runs path as `path INSTANCE <name> <STATE> <priority>`, the
// argument order keepalived uses. It runs without a shell, so nothing in the
// configuration is interpreted.
func notifier(path, name string, log *slog.Logger) func(context.Context, vrrp.State, uint8) {
	return func(ctx context.Context, s vrrp.State, prio uint8) {
		cmd := exec.CommandContext(ctx, path, "INSTANCE", name, notifyState(s), strconv.Itoa(int(prio)))
		out, err := cmd.CombinedOutput()
		if err != nil {
			log.Warn("notify command failed", "cmd", path, "state", notifyState(s), "err", err, "output", string(out))
			return
		}
		log.Debug("notify command ran", "cmd", path, "state", notifyState(s))
	}
}
