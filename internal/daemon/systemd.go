package daemon

import (
	"context"
	"fmt"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd about the daemon's state (Type=notify). Outside
// systemd NOTIFY_SOCKET is unset and this does nothing.
func (d *Daemon) notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		d.log.Warn("systemd notify failed", "state", state, "err", err)
	}
}

// watchdog pings systemd at half the WatchdogSec interval, but only after
// every VRRP instance and the IPVS loop have answered and every VRRP socket
// has its reader: a daemon whose loops are stuck, or that cannot reopen a
// failed socket, is restarted by systemd rather than kept alive by a timer.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.alive(ctx, interval/2); err != nil {
			d.log.Error("watchdog: not pinging systemd", "err", err)
			continue
		}
		d.notify(sd.SdNotifyWatchdog)
	}
}

// alive checks that every VRRP socket has its reader and every loop
// answers within timeout.
func (d *Daemon) alive(ctx context.Context, timeout time.Duration) error {
	if err := d.readersAlive(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, in := range d.instances() {
		if err := in.Ping(ctx); err != nil {
			return err
		}
	}
	if c := d.vrrpClient(); c != nil {
		if err := c.Ping(ctx); err != nil {
			return fmt.Errorf("vrrp process: %w", err)
		}
	}
	if d.dp != nil {
		return d.dp.Ping(ctx)
	}
	return nil
}
