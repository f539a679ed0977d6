package transport

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"
)

// Filter is what the kernel lets through to a VRRP socket: a classic BPF
// program attached to it, so that a flood of junk protocol-112 packets is
// dropped before it takes room in the receive buffer, ahead of the
// adverts that keep mastership where it is. What passes is checked again
// in user space; the filter only has to never refuse a good advert.
type Filter struct {
	// VRIDs are the virtual routers this socket serves; empty drops all.
	VRIDs []uint8
	// Sources, if any, are the only IPv4 source addresses accepted (the
	// unicast peers). An IPv6 raw socket sees no IP header, so the
	// program cannot check IPv6 addresses: user space does.
	Sources []netip.Addr
	// Dest, if valid, is the only IPv4 destination accepted (a unicast
	// socket's own address).
	Dest netip.Addr
	// TTL255 accepts IPv4 packets with TTL 255 only (RFC 5798 5.1.1.3).
	TTL255 bool
}

// Version-and-type bytes of a VRRP advertisement (type 1): version 3 and
// version 2.
const (
	verTypeV3 = 0x31
	verTypeV2 = 0x21
)

// acceptLen is what an accepted packet keeps: all of it.
const acceptLen = 1 << 18

// asm assembles a program whose jumps go forward to named labels.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups map[int]string // index of a bpf.Jump -> its target label
}

func (a *asm) emit(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) jump(label string) {
	a.fixups[len(a.ins)] = label
	a.emit(bpf.Jump{})
}

func (a *asm) label(name string) { a.labels[name] = len(a.ins) }

// oneOf continues at label next when the accumulator is one of vals, and
// jumps to "drop" otherwise. Each test is a short conditional over an
// unconditional jump, so no jump depends on how many values there are.
func (a *asm) oneOf(vals []uint32, next string) {
	for _, v := range vals {
		a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: 0, SkipFalse: 1})
		a.jump(next)
	}
	a.jump("drop")
	a.label(next)
}

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for at, l := range a.fixups {
		to, ok := a.labels[l]
		if !ok || to <= at {
			return nil, fmt.Errorf("transport: filter: bad jump to %q", l)
		}
		a.ins[at] = bpf.Jump{Skip: uint32(to - at - 1)}
	}
	return bpf.Assemble(a.ins)
}

func addr4(a netip.Addr) (uint32, error) {
	if !a.Unmap().Is4() {
		return 0, fmt.Errorf("transport: filter: %v is not IPv4", a)
	}
	b := a.Unmap().As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// compileFilter builds f's program for a socket of family 4 (packets start
// at the IPv4 header) or 6 (packets start at the VRRP header).
func compileFilter(family int, f Filter) ([]bpf.RawInstruction, error) {
	a := &asm{labels: map[string]int{}, fixups: map[int]string{}}
	if len(f.VRIDs) == 0 {
		return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	}
	vrrpAt := func(off uint32) bpf.Instruction {
		if family == 4 {
			return bpf.LoadIndirect{Off: off, Size: 1} // X: the IPv4 header length
		}
		return bpf.LoadAbsolute{Off: off, Size: 1}
	}
	switch family {
	case 4:
		if f.TTL255 {
			a.emit(bpf.LoadAbsolute{Off: 8, Size: 1})
			a.oneOf([]uint32{255}, "ttl")
		}
		if len(f.Sources) > 0 {
			var srcs []uint32
			for _, s := range f.Sources {
				v, err := addr4(s)
				if err != nil {
					return nil, err
				}
				srcs = append(srcs, v)
			}
			a.emit(bpf.LoadAbsolute{Off: 12, Size: 4})
			a.oneOf(srcs, "src")
		}
		if f.Dest.IsValid() {
			v, err := addr4(f.Dest)
			if err != nil {
				return nil, err
			}
			a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
			a.oneOf([]uint32{v}, "dst")
		}
		a.emit(bpf.LoadMemShift{Off: 0}) // X = 4 * IHL
	case 6:
		// Sources, Dest and TTL255 are left to user space (see Filter).
	default:
		return nil, errors.New("transport: filter: family must be 4 or 6")
	}
	a.emit(vrrpAt(0))
	a.oneOf([]uint32{verTypeV3, verTypeV2}, "vertype")
	a.emit(vrrpAt(1))
	vrids := slices.Clone(f.VRIDs)
	slices.Sort(vrids)
	vrids = slices.Compact(vrids)
	vals := make([]uint32, len(vrids))
	for i, v := range vrids {
		vals[i] = uint32(v)
	}
	a.oneOf(vals, "accept")
	a.emit(bpf.RetConstant{Val: acceptLen})
	a.label("drop")
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// SetFilter attaches f to the socket, replacing any filter before it.
func (c *Conn) SetFilter(f Filter) error {
	prog, err := compileFilter(c.family, f)
	if err != nil {
		return err
	}
	if c.family == 4 {
		err = c.v4.SetBPF(prog)
	} else {
		err = c.v6.SetBPF(prog)
	}
	if err != nil {
		return fmt.Errorf("transport: attach filter: %w", err)
	}
	return nil
}
