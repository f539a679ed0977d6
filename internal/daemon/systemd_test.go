package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/vip"
	"github.com/director-lb/director/vrrp"
)

type nullSender struct{}

func (nullSender) WriteTo([]byte, netip.Addr) error { return nil }
func (nullSender) Source() netip.Addr               { return netip.MustParseAddr("10.0.0.11") }

// testInstance is a VRRP instance on a sender that goes nowhere and a fake
// mover, alone on its "segment", so it becomes master by itself.
func testInstance(log *slog.Logger, prio uint8, interval time.Duration) *vrrp.Instance {
	return vrrp.NewInstance(vrrp.InstanceConfig{
		Name: "web", VRID: 51, Logger: log,
		Machine:   vrrp.MachineConfig{Version: vrrp.V3, Priority: prio, Interval: interval},
		Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")},
		Group:     netip.MustParseAddr("224.0.0.18"),
	}, nullSender{}, &vip.Fake{})
}

// runInstance runs in until the test ends.
func runInstance(t *testing.T, in *vrrp.Instance) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, true) }()
	t.Cleanup(func() { cancel(); <-done })
}

// The watchdog pings systemd only while the VRRP loop answers.
func TestWatchdogPingsOnlyWhileAlive(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := testInstance(log, 100, time.Second)
	d := &Daemon{log: log, running: []*runningInstance{{in: in}}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.watchdog(ctx)

	read := func(wait time.Duration) string {
		ln.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 256)
		n, _, err := ln.ReadFromUnix(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	// The instance is not running: no ping.
	if got := read(300 * time.Millisecond); got != "" {
		t.Fatalf("pinged while the VRRP loop was not running: %q", got)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx, true) }()
	if got := read(2 * time.Second); !strings.Contains(got, "WATCHDOG=1") {
		t.Fatalf("no watchdog ping while alive, got %q", got)
	}
	stop()
	<-done
}
