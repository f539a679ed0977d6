package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/director-lb/director/labtests/labplan"
	"github.com/director-lb/director/vrrp"
)

// floodBatch is how many packets one sendmmsg carries: in the guest every
// system call is dear, so the rate comes from batching.
const floodBatch = 64

// stepFlood sends protocol-112 packets from a stranger's namespace to the
// VRRP group, paced to s.Count a second, until s.Duration has passed.
func stepFlood(ctx context.Context, r *runner, s labplan.Step, sr *labplan.StepResult) error {
	var res labplan.FloodResult
	err := inNetns(s.Node, func() error {
		// The guest has one CPU, which the stranger would otherwise take
		// from the daemons whole: a real attacker is another machine.
		// Nice 19 on this (locked, discarded afterwards) thread leaves
		// it every cycle the daemons do not want; the packets' kernel
		// path is the receivers' either way.
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19); err != nil {
			return fmt.Errorf("nice the flooder: %w", err)
		}
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer c.Close()
		pc := ipv4.NewPacketConn(c)
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if err := pc.SetMulticastInterface(eth0); err != nil {
			return err
		}
		if err := pc.SetMulticastTTL(255); err != nil {
			return err
		}
		dst := &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}
		msgs := make([]ipv4.Message, floodBatch)
		h, _ := labplan.HostByName(s.Node)
		for i := range msgs {
			msgs[i] = ipv4.Message{Buffers: [][]byte{floodPacket(s.Mode, h.IPv4.Addr().As4())}, Addr: dst}
		}
		res.Mode = s.Mode
		start := time.Now()
		per := time.Second * floodBatch / time.Duration(s.Count)
		next := start
		for time.Since(start) < s.Duration.D() && ctx.Err() == nil {
			n, err := pc.WriteBatch(msgs, 0)
			res.Sent += n
			if err != nil {
				res.SendErrs++
			}
			next = next.Add(per)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		res.Took = time.Since(start)
		res.Rate = float64(res.Sent) / res.Took.Seconds()
		return nil
	})
	if err != nil {
		return err
	}
	out, _ := json.Marshal(res)
	sr.Exec = &labplan.ExecOutput{Stdout: string(out)}
	r.log.Info(fmt.Sprintf("flood from %s: %d %s packets in %v (%.0f/s)", s.Node, res.Sent, res.Mode, res.Took.Round(time.Millisecond), res.Rate))
	return nil
}

// floodPacket is one payload of mode: random bytes, or a VRRPv3 advert
// for the lab's VRID at priority 254 from src whose checksum is off by one
// (so never right: a right one would be a real, winning advert).
func floodPacket(mode string, src [4]byte) []byte {
	if mode != labplan.FloodForged {
		b := make([]byte, 20)
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		return b
	}
	p := vrrp.Packet{Version: vrrp.V3, VRID: labplan.VRID, Priority: 254, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{labplan.VIP4.Addr()}}
	b, err := p.Marshal(netip.AddrFrom4(src), netip.AddrFrom4([4]byte{224, 0, 0, 18}))
	if err != nil {
		panic(err) // a fixed, valid packet
	}
	binary.BigEndian.PutUint16(b[6:], binary.BigEndian.Uint16(b[6:])+1)
	return b
}
