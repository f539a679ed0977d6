// Package daemon wires a validated configuration to the real world: VRRP
// sockets, VIP movers, carrier watchers and notify hooks. cmd/director stays
// a thin main around it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/director-lb/director/config"
	"github.com/director-lb/director/control"
	"github.com/director-lb/director/ipvs"
	"github.com/director-lb/director/ipvs/syncd"
	"github.com/director-lb/director/vip"
	"github.com/director-lb/director/vrrp"
	"github.com/director-lb/director/vrrp/transport"
)

// Daemon is one running director.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	started time.Time

	dp          *dataplane // nil without services
	instances   []*vrrp.Instance
	byIface     map[string][]*vrrp.Instance
	dispatchers []*vrrp.Dispatcher
	conns       []*transport.Conn
	closers     []func() error
}

// connKey identifies one socket: instances that share an interface, family
// and mode share a socket, and the dispatcher demultiplexes by VRID.
type connKey struct {
	iface  string
	family int
	source netip.Addr // invalid for multicast
}

// New opens the sockets and prepares the instances; Run starts them.
func New(cfg *config.Config, version string, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, version: version, started: time.Now(), byIface: map[string][]*vrrp.Instance{}}
	if len(cfg.Services) > 0 {
		if err := d.openDataplane(); err != nil {
			d.Close()
			return nil, err
		}
	}
	conns := map[connKey]*transport.Conn{}
	members := map[connKey][]*vrrp.Instance{}
	for i := range cfg.Instances {
		ic := &cfg.Instances[i]
		k := connKey{iface: ic.Interface, family: ic.Family()}
		if ic.Unicast != nil {
			k.source = ic.Unicast.SourceAddr
		}
		conn, ok := conns[k]
		if !ok {
			c, err := transport.Listen(transport.Options{
				Interface: k.iface, Family: k.family, Multicast: !k.source.IsValid(), Source: k.source,
			})
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("instance %s: open VRRP socket on %s: %w", ic.Name, ic.Interface, err)
			}
			conn = c
			conns[k] = c
			d.conns = append(d.conns, c)
		}
		mover, err := vip.NewLocal(vip.Config{
			Interface: ic.Interface,
			Addresses: ic.Addresses,
			Count:     ic.GARP.Count,
			Spacing:   ic.GARP.Interval.D(),
			Refresh:   ic.GARP.Refresh.D(),
			Logger:    log.With("instance", ic.Name),
		})
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
		}
		d.closers = append(d.closers, mover.Close)
		icfg := instanceConfig(ic, conn, log)
		if d.dp != nil {
			name := ic.Name
			icfg.OnState = func(s vrrp.State) { d.dp.onState(name, s) }
		}
		in := vrrp.NewInstance(icfg, conn, mover)
		d.instances = append(d.instances, in)
		d.byIface[ic.Interface] = append(d.byIface[ic.Interface], in)
		members[k] = append(members[k], in)
	}
	for k, c := range conns {
		group := netip.Addr{}
		if !k.source.IsValid() {
			group = transport.MulticastGroup(k.family)
		}
		d.dispatchers = append(d.dispatchers, vrrp.NewDispatcher(c, k.iface, group, members[k], log.With("iface", k.iface, "socket", socketName(k))))
	}
	return d, nil
}

// openDataplane connects to the kernel's IPVS; with services configured, a
// kernel without IPVS is a start-up error rather than a silent no-op.
func (d *Daemon) openDataplane() error {
	k, err := ipvs.NewNetlink()
	if err != nil {
		return fmt.Errorf("open IPVS (is the ip_vs module loaded?): %w", err)
	}
	d.closers = append(d.closers, k.Close)
	var sc *syncd.Client
	if d.cfg.IPVS.Sync != nil {
		if sc, err = syncd.Dial(); err != nil {
			return err
		}
		d.closers = append(d.closers, sc.Close)
	}
	dp, err := newDataplane(d.cfg, k, sc, d.log.With("part", "ipvs"))
	if err != nil {
		return err
	}
	d.dp = dp
	return nil
}

func socketName(k connKey) string {
	if k.source.IsValid() {
		return "unicast " + k.source.String()
	}
	return fmt.Sprintf("multicast IPv%d", k.family)
}

func instanceConfig(ic *config.Instance, conn *transport.Conn, log *slog.Logger) vrrp.InstanceConfig {
	c := vrrp.InstanceConfig{
		Name: ic.Name,
		VRID: uint8(ic.VRID),
		Machine: vrrp.MachineConfig{
			Version:      vrrp.Version(ic.Version),
			Priority:     uint8(ic.Priority),
			Interval:     ic.AdvertInterval.D(),
			Preempt:      ic.PreemptEnabled(),
			PreemptDelay: ic.PreemptDelay.D(),
			Addr:         conn.Source(),
		},
		Group:  transport.MulticastGroup(ic.Family()),
		Logger: log,
	}
	for _, p := range ic.Addresses {
		c.Addresses = append(c.Addresses, p.Addr())
	}
	if ic.Unicast != nil {
		c.Peers = ic.Unicast.PeerAddrs
	}
	if ic.AuthPass != "" {
		c.AuthType = 1
		copy(c.AuthData[:], ic.AuthPass)
	}
	if ic.Notify != "" {
		c.Notify = notifier(ic.Notify, ic.Name, log.With("instance", ic.Name))
	}
	return c
}

// Instances returns the running instances (for state reporting).
func (d *Daemon) Instances() []*vrrp.Instance { return d.instances }

// Run runs every instance until ctx ends, then stops them gracefully and
// waits for each to hand over its VIPs.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	recvCtx, stopRecv := context.WithCancel(context.Background())
	defer stopRecv()
	var recvWG sync.WaitGroup
	for _, disp := range d.dispatchers {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			if err := disp.Run(recvCtx); err != nil {
				d.log.Error("VRRP receive stopped", "err", err)
			}
		}()
	}
	ctl, err := control.Listen(d.cfg.ControlSocket, d, d.log)
	if err != nil {
		return err
	}
	go func() {
		if err := ctl.Serve(); err != nil {
			d.log.Error("control socket stopped", "err", err)
		}
	}()
	defer ctl.Close()

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	initial := map[string]bool{}
	for iface, ins := range d.byIface {
		ch, err := vip.WatchCarrier(watchCtx, iface)
		if err != nil {
			return fmt.Errorf("watch carrier of %s: %w", iface, err)
		}
		select {
		case up := <-ch:
			initial[iface] = up
		case <-time.After(5 * time.Second):
			return fmt.Errorf("watch carrier of %s: no initial state", iface)
		}
		go func() {
			for up := range ch {
				d.log.Info("carrier changed", "iface", iface, "up", up)
				for _, in := range ins {
					in.SetLink(up)
				}
			}
		}()
	}

	// The dataplane outlives the instances: a stopping master keeps
	// forwarding until its successor has taken over.
	dpCtx, stopDP := context.WithCancel(context.Background())
	dpDone := make(chan struct{})
	if d.dp != nil {
		go func() { defer close(dpDone); d.dp.run(dpCtx) }()
	} else {
		close(dpDone)
	}
	defer func() { stopDP(); <-dpDone }()

	errs := make(chan error, len(d.instances))
	for iface, ins := range d.byIface {
		for _, in := range ins {
			go func() { errs <- in.Run(ctx, initial[iface]) }()
		}
	}
	d.log.Info("director running", "instances", len(d.instances), "services", len(d.cfg.Services))
	d.notify(sd.SdNotifyReady)
	go d.watchdog(watchCtx)
	go func() {
		<-ctx.Done()
		d.notify(sd.SdNotifyStopping)
	}()
	if len(d.instances) == 0 {
		<-ctx.Done() // IPVS only: nothing to hand over
	}
	var all []error
	for range d.instances {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	stopRecv()
	for _, c := range d.conns {
		c.Close()
	}
	recvWG.Wait()
	d.log.Info("director stopped")
	return errors.Join(all...)
}

// Close releases sockets and mover resources; it does not remove VIPs (Run does).
func (d *Daemon) Close() {
	for _, c := range d.conns {
		c.Close()
	}
	for _, f := range d.closers {
		f()
	}
}
