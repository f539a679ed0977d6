package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Local is the vrrp.Mover for addresses on a local interface: netlink for the
// addresses, raw ARP and NDP sockets for the announcements.
//
// Calls are serialised. The sockets are opened by Take on the caller's
// goroutine, kept for the next Take, and closed by Close or when the
// interface or the addresses change, so everything Local does happens
// in the network namespace Take was called in.
type Local struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	held   bool
	closed bool
	ann    *announcer // open while held (nil if opening failed)

	burstStop context.CancelFunc // stops the running burst, if any
	burstDone chan struct{}      // closed when that burst goroutine ends

	refreshStop context.CancelFunc // stops the refresh loop, if any
	refreshDone chan struct{}
}

// NewLocal validates cfg and applies defaults. It does not touch the system.
func NewLocal(cfg Config) (*Local, error) {
	if len(cfg.Elsewhere)+len(cfg.Routes)+len(cfg.Rules) > 0 {
		return nil, fmt.Errorf("vip on %s: Local moves one interface's addresses; use NewSet for others, routes and rules", cfg.Interface)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Local{
		cfg: cfg,
		log: cfg.Logger.With("interface", cfg.Interface),
	}, nil
}

// Take adds the addresses to the interface (an address already there is
// fine) and sends the first round of announcements. The rest of the burst
// follows in the background, Spacing apart, until Count rounds are sent or
// Release or Close is called; the caller's ctx does not bound it, since the
// burst must finish even if the caller's request is over.
//
// Take attempts every address. An error names the ones that failed; the ones
// that were added are held and announced, and Release removes them. An
// error from the first announcement round (say, the interface is down) is
// returned too, but the addresses stay held: the caller should log it, not
// treat it as a failure to take over.
func (l *Local) Take(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("take on %s: %w", l.cfg.Interface, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	link, err := netlink.LinkByName(l.cfg.Interface)
	if err != nil {
		return fmt.Errorf("take on %s: %w", l.cfg.Interface, err)
	}
	var errs []error
	var added []netip.Addr
	for _, p := range l.cfg.Addresses {
		if err := l.add(link, p); err != nil {
			errs = append(errs, err)
			continue
		}
		added = append(added, p.Addr())
	}
	l.held = true
	l.log.Info("took virtual addresses", "addresses", added)
	if len(added) == 0 {
		return errors.Join(errs...)
	}
	// Adding can be slow on a loaded host. If the caller gave up
	// meanwhile (this node stepped down while Take ran), announcing now
	// would pull clients to a node that is about to let the addresses
	// go: keep them, unannounced, and let the caller release them.
	if err := ctx.Err(); err != nil {
		l.log.Info("take cancelled before announcing", "addresses", added)
		return errors.Join(append(errs, fmt.Errorf("take on %s: cancelled before announcing: %w", l.cfg.Interface, err))...)
	}

	// The sockets of the last Take stay open across Release: opening
	// them costs a dozen system calls on the takeover's path (more in a
	// guest that traps each one). Reopen them only if the interface was
	// recreated (new index or MAC) or the addresses changed.
	l.stopBurst()
	if a := link.Attrs(); l.ann == nil || !l.ann.fits(a.Index, a.HardwareAddr, added) {
		if l.ann != nil {
			_ = l.ann.close()
			l.ann = nil
		}
		ann, err := openAnnouncer(l.cfg.Interface, added)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		l.ann = ann
	} else if len(l.ann.v6) > 0 {
		// Forwarding may have been switched since: NAs carry it.
		l.ann.router = ipv6Forwarding(l.cfg.Interface)
	}
	if err := l.startBurst(); err != nil {
		errs = append(errs, err)
	}
	l.startRefresh()
	return errors.Join(errs...)
}

func (l *Local) add(link netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is4() {
		a.Label = l.cfg.Label
	} else {
		// Without NODAD the address is tentative for about a second and
		// the kernel would neither use nor answer for it.
		a.Flags = unix.IFA_F_NODAD
	}
	err := netlink.AddrAdd(link, a)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", p, l.cfg.Interface, err)
	}
	return nil
}

// Announce restarts the announcement burst for the held addresses: the first
// round is sent before it returns, the rest in the background as for Take.
func (l *Local) Announce(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("announce on %s: %w", l.cfg.Interface, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case !l.held:
		return ErrNotHeld
	case len(l.cfg.Addresses) == 0:
		return nil // nothing to announce
	case l.ann == nil:
		// Opening failed during Take; try again from this goroutine.
		ann, err := openAnnouncer(l.cfg.Interface, l.heldAddrs())
		if err != nil {
			return err
		}
		l.ann = ann
	}
	l.startRefresh() // stopped by Quiet, if it ran
	return l.startBurst()
}

// Present reports whether every configured address is on the interface
// now, as after a restart that followed a crash. If so, Local counts them
// as held, so that Announce and Release work on them.
func (l *Local) Present(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	link, err := netlink.LinkByName(l.cfg.Interface)
	if err != nil {
		return false, fmt.Errorf("check addresses on %s: %w", l.cfg.Interface, err)
	}
	addrs, err := listAddrs(link)
	if err != nil {
		return false, fmt.Errorf("check addresses on %s: %w", l.cfg.Interface, err)
	}
	for _, p := range l.cfg.Addresses {
		found := false
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.Addr() {
				found = true
				break
			}
		}
		if !found {
			return false, nil
		}
	}
	l.held = true
	return true, nil
}

// SetAddresses changes the addresses Local manages, as when a reload adds
// or removes VIPs. While they are held, new ones are added and announced
// and dropped ones removed; the others stay on the interface throughout,
// so their traffic carries on.
func (l *Local) SetAddresses(ctx context.Context, addrs []netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("set addresses on %s: %w", l.cfg.Interface, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	old := l.cfg.Addresses
	var dropped []netip.Prefix
	for _, p := range old {
		if !slices.Contains(addrs, p) {
			dropped = append(dropped, p)
		}
	}
	l.cfg.Addresses = slices.Clone(addrs)
	if !l.held {
		return nil
	}
	link, err := netlink.LinkByName(l.cfg.Interface)
	if err != nil {
		return fmt.Errorf("set addresses on %s: %w", l.cfg.Interface, err)
	}
	var errs []error
	if len(dropped) > 0 {
		// removeAll works on cfg.Addresses: point it at the dropped ones.
		l.cfg.Addresses = dropped
		errs = append(errs, l.removeAll(link))
		l.cfg.Addresses = slices.Clone(addrs)
	}
	var added []netip.Addr
	for _, p := range addrs {
		if slices.Contains(old, p) {
			continue
		}
		if err := l.add(link, p); err != nil {
			errs = append(errs, err)
			continue
		}
		added = append(added, p.Addr())
	}
	if len(added) > 0 {
		l.log.Info("took virtual addresses", "addresses", added)
	}
	// Announce the new set (the kept addresses again, harmlessly).
	l.stopBurst()
	if l.ann != nil {
		_ = l.ann.close()
		l.ann = nil
	}
	if len(l.cfg.Addresses) == 0 {
		return errors.Join(errs...)
	}
	ann, err := openAnnouncer(l.cfg.Interface, l.heldAddrs())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	l.ann = ann
	errs = append(errs, l.startBurst())
	l.startRefresh()
	return errors.Join(errs...)
}

// heldAddrs returns the configured addresses without prefix lengths.
func (l *Local) heldAddrs() []netip.Addr {
	out := make([]netip.Addr, len(l.cfg.Addresses))
	for i, p := range l.cfg.Addresses {
		out[i] = p.Addr()
	}
	return out
}

// startBurst stops any running burst, sends one round now and the remaining
// Count-1 rounds from a goroutine. l.mu must be held and l.ann set.
func (l *Local) startBurst() error {
	l.stopBurst()
	err := l.ann.round()
	if l.cfg.Count <= 1 {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.burstStop, l.burstDone = cancel, done
	// The goroutine gets the announcer, not l: it never takes l.mu, so
	// stopBurst may wait for it while holding l.mu.
	go func(ann *announcer, n int, spacing time.Duration) {
		defer close(done)
		t := time.NewTimer(spacing)
		defer t.Stop()
		for range n {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := ann.round(); err != nil {
				l.log.Warn("announcement failed", "err", err)
			}
			t.Reset(spacing)
		}
	}(l.ann, l.cfg.Count-1, l.cfg.Spacing)
	return err
}

// stopBurst stops the running burst and waits until it can send no more.
// l.mu must be held.
func (l *Local) stopBurst() {
	if l.burstStop == nil {
		return
	}
	l.burstStop()
	<-l.burstDone
	l.burstStop, l.burstDone = nil, nil
}

// startRefresh starts the periodic re-announcement if configured and not
// running. l.mu must be held.
func (l *Local) startRefresh() {
	if l.cfg.Refresh <= 0 || l.refreshStop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.refreshStop, l.refreshDone = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(l.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l.refresh(ctx)
		}
	}()
}

// refresh sends one round, like keepalived's garp_master_refresh_repeat 1.
func (l *Local) refresh(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Checked under l.mu: Release cancels ctx under l.mu before it removes
	// anything, so a refresh never announces an address being removed.
	if ctx.Err() != nil || !l.held {
		return
	}
	if l.ann == nil {
		l.log.Debug("no announcement sockets; skipping refresh")
		return
	}
	if err := l.ann.round(); err != nil {
		l.log.Warn("refresh announcement failed", "err", err)
	}
}

// stopRefresh stops the refresh loop without waiting for it (it may be
// waiting for l.mu) and returns a channel closed when it has ended.
// l.mu must be held.
func (l *Local) stopRefresh() <-chan struct{} {
	if l.refreshStop == nil {
		return nil
	}
	l.refreshStop()
	done := l.refreshDone
	l.refreshStop, l.refreshDone = nil, nil
	return done
}

// Quiet stops announcing (the burst and the refresh) but keeps the
// addresses: a master that stepped down holds them until its successor
// has surely taken them (make-before-break), and must not pull clients
// back meanwhile. Announce or Take starts announcing again.
func (l *Local) Quiet() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopBurst()
	// The refresh loop may be waiting for l.mu; it checks its context
	// under l.mu, so it sends nothing more.
	l.stopRefresh()
}

// Release stops announcing and removes the addresses. Only our addresses
// are removed: others on the interface stay, including secondaries of a
// VIP that is the primary address of its subnet (see keepSecondaries).
// A missing interface or address counts as removed.
func (l *Local) Release(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("release on %s: %w", l.cfg.Interface, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Stop announcing before removing, so that no announcement for an
	// address goes out after it is gone. The sockets stay open for the
	// next Take (nothing is sent while not held); Close closes them.
	l.stopBurst()
	l.stopRefresh()
	l.held = false

	link, err := netlink.LinkByName(l.cfg.Interface)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		l.log.Warn("interface gone; nothing to release")
		return nil
	}
	if err != nil {
		return fmt.Errorf("release on %s: %w", l.cfg.Interface, err)
	}
	return l.removeAll(link)
}

// removeAll deletes our addresses, IPv4 secondaries first: deleting a
// primary IPv4 address makes the kernel delete its secondaries too, unless
// promote_secondaries is set.
func (l *Local) removeAll(link netlink.Link) error {
	present, err := listAddrs(link)
	if err != nil {
		return fmt.Errorf("release on %s: %w", l.cfg.Interface, err)
	}
	var ours []netlink.Addr
	for _, a := range present {
		if l.isOurs(a) {
			ours = append(ours, a)
		}
	}
	slices.SortStableFunc(ours, func(a, b netlink.Addr) int {
		return secondRank(a) - secondRank(b)
	})
	var errs []error
	var removed []netip.Prefix
	for _, a := range ours {
		p := ipNetToPrefix(a.IPNet)
		if a.IP.To4() != nil && a.Flags&unix.IFA_F_SECONDARY == 0 {
			if err := l.keepSecondaries(link, p); err != nil {
				errs = append(errs, err)
			}
		}
		// Only address and prefix length: the kernel matches a label if
		// one is given, and the listed one is whatever the kernel reports.
		del := &netlink.Addr{IPNet: prefixToIPNet(p)}
		err := netlink.AddrDel(link, del)
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", p, l.cfg.Interface, err))
			continue
		}
		removed = append(removed, p)
	}
	l.log.Info("released virtual addresses", "addresses", removed)
	return errors.Join(errs...)
}

// secondRank orders IPv4 secondaries before everything else.
func secondRank(a netlink.Addr) int {
	if a.IP.To4() != nil && a.Flags&unix.IFA_F_SECONDARY != 0 {
		return 0
	}
	return 1
}

// isOurs reports whether a is one of the configured addresses. IPv4
// addresses are keyed by address and prefix length, like the kernel does;
// IPv6 by address alone, since the kernel allows one prefix length per
// address and Take accepts whatever is already there.
func (l *Local) isOurs(a netlink.Addr) bool {
	if a.IPNet == nil || a.Peer != nil {
		return false
	}
	p := ipNetToPrefix(a.IPNet)
	for _, c := range l.cfg.Addresses {
		if c.Addr() != p.Addr() {
			continue
		}
		if c.Addr().Is6() || c.Bits() == p.Bits() {
			return true
		}
	}
	return false
}

// keepSecondaries makes sure deleting our primary IPv4 address p does not
// take someone else's secondary addresses with it: if any are present, it
// turns on promote_secondaries for the interface (as systemd does by
// default), so the kernel promotes one of them instead.
func (l *Local) keepSecondaries(link netlink.Link, p netip.Prefix) error {
	present, err := listAddrs(link)
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", p, l.cfg.Interface, err)
	}
	subnet := p.Masked()
	foreign := false
	for _, a := range present {
		if a.IP.To4() == nil || a.Flags&unix.IFA_F_SECONDARY == 0 || l.isOurs(a) {
			continue
		}
		q := ipNetToPrefix(a.IPNet)
		if q.Bits() == p.Bits() && subnet.Contains(q.Addr()) {
			foreign = true
			break
		}
	}
	if !foreign {
		return nil
	}
	path := "/proc/sys/net/ipv4/conf/" + l.cfg.Interface + "/promote_secondaries"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("remove %s from %s: keep other addresses of its subnet: %w", p, l.cfg.Interface, err)
	}
	l.log.Warn("enabled promote_secondaries so removing a primary VIP keeps other addresses", "address", p)
	return nil
}

// listAddrs lists the addresses of link, retrying a dump that was
// interrupted by a concurrent change.
func listAddrs(link netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range 5 {
		var addrs []netlink.Addr
		addrs, err = netlink.AddrList(link, netlink.FAMILY_ALL)
		if err == nil {
			return addrs, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list addresses: %w", err)
}

// Close stops the background announcements and closes the sockets. It does
// not remove the addresses; call Release for that. After Close, Take and
// Announce return ErrClosed; Release still works.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	l.stopBurst()
	refreshDone := l.stopRefresh()
	var err error
	if l.ann != nil {
		err = l.ann.close()
		l.ann = nil
	}
	l.mu.Unlock()
	if refreshDone != nil {
		<-refreshDone
	}
	if err != nil {
		return fmt.Errorf("close announcer on %s: %w", l.cfg.Interface, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func ipNetToPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	a = a.Unmap()
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}
