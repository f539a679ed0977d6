package ipvsadm

import (
	"net/netip"
	"strconv"
)

// rawAddr is the address as the kernel's 16-byte union nf_inet_addr holds
// it: an IPv4 address fills the first four bytes. ipvsadm prints and
// compares these bytes according to the entry's family, whatever they hold.
func rawAddr(a netip.Addr) [16]byte {
	var r [16]byte
	switch {
	case a.Is4():
		v4 := a.As4()
		copy(r[:], v4[:])
	case a.IsValid():
		r = a.As16()
	}
	return r
}

// familyAddr is the part of rawAddr(a) that the kernel compares for an
// entry of family fam: the first four bytes for IPv4.
func familyAddr(fam Family, a netip.Addr) [16]byte {
	r := rawAddr(a)
	if fam == INet {
		clear(r[4:])
	}
	return r
}

// appendAddrPort appends addr:port as ipvsadm -n does: brackets around
// anything that is not IPv4.
func appendAddrPort(b []byte, fam Family, a netip.Addr, port uint16) []byte {
	raw := rawAddr(a)
	if fam == INet {
		b = appendIPv4(b, raw[:4])
	} else {
		b = append(b, '[')
		b = appendIPv6(b, raw)
		b = append(b, ']')
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(port), 10)
}

// appendIP appends a bare address in inet_ntop form.
func appendIP(b []byte, a netip.Addr) []byte {
	raw := rawAddr(a)
	if a.Is4() {
		return appendIPv4(b, raw[:4])
	}
	return appendIPv6(b, raw)
}

func appendIPv4(b []byte, a []byte) []byte {
	for i, o := range a[:4] {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(o), 10)
	}
	return b
}

// appendIPv6 follows glibc's inet_ntop: the first longest run of two or
// more zero groups becomes "::", and an address whose first 96 bits are
// zero (IPv4-compatible) or ::ffff:0:0/96 (IPv4-mapped) ends in dotted
// quad. Go's netip differs for the IPv4-compatible form, hence our own.
func appendIPv6(b []byte, a [16]byte) []byte {
	var words [8]uint16
	for i := range words {
		words[i] = uint16(a[2*i])<<8 | uint16(a[2*i+1])
	}
	bestBase, bestLen := -1, 0
	curBase, curLen := -1, 0
	for i, w := range words {
		if w == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				b = append(b, ':')
			}
			continue
		}
		if i != 0 {
			b = append(b, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			return appendIPv4(b, a[12:16])
		}
		b = strconv.AppendUint(b, uint64(words[i]), 16)
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		b = append(b, ':')
	}
	return b
}
