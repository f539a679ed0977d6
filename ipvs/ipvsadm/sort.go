package ipvsadm

import "encoding/binary"

// ipvsadm sorts with qsort and comparators that subtract unsigned 32-bit
// values and keep the wrapped difference as a signed int, so 10.0.0.1
// sorts after 200.0.0.1 and the order is not even transitive. To print
// the same order we use the same comparisons and the same algorithm:
// glibc's qsort is a top-down merge sort (msort.c) that halves with n/2
// and takes from the left run while cmp <= 0.

func sortedServices(svcs []Service, noSort bool) []*Service {
	out := make([]*Service, len(svcs))
	for i := range svcs {
		out[i] = &svcs[i]
	}
	if !noSort {
		mergeSort(out, compareServices)
	}
	return out
}

func sortedDests(ds []Destination, noSort bool) []*Destination {
	out := make([]*Destination, len(ds))
	for i := range ds {
		out[i] = &ds[i]
	}
	if !noSort {
		mergeSort(out, compareDests)
	}
	return out
}

// compareServices is libipvs's ipvs_cmp_services.
func compareServices(a, b *Service) int {
	if r := int32(a.FWMark - b.FWMark); r != 0 {
		return int(r)
	}
	if r := int(a.Family) - int(b.Family); r != 0 {
		return r
	}
	if r := int(a.Protocol) - int(b.Protocol); r != 0 {
		return r
	}
	// Fwmark services carry no address in the kernel's reply.
	var aa, ba [16]byte
	if a.FWMark == 0 {
		aa = rawAddr(a.Address)
	}
	if b.FWMark == 0 {
		ba = rawAddr(b.Address)
	}
	if r := compareAddrs(a.Family, aa, ba); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// compareDests is libipvs's ipvs_cmp_dests; the first entry's family
// decides how many address bytes take part.
func compareDests(a, b *Destination) int {
	if r := compareAddrs(a.Family, rawAddr(a.Address), rawAddr(b.Address)); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

func compareAddrs(fam Family, a, b [16]byte) int {
	words := 1
	if fam == INet6 {
		words = 4
	}
	for i := 0; i < words; i++ {
		x := binary.BigEndian.Uint32(a[4*i:])
		y := binary.BigEndian.Uint32(b[4*i:])
		if r := int32(x - y); r != 0 {
			return int(r)
		}
	}
	return 0
}

// mergeSort sorts s in place exactly as glibc's msort_with_tmp orders it.
func mergeSort[T any](s []T, cmp func(a, b T) int) {
	if len(s) < 2 {
		return
	}
	tmp := make([]T, len(s))
	msort(s, tmp, cmp)
}

func msort[T any](s, tmp []T, cmp func(a, b T) int) {
	n := len(s)
	if n <= 1 {
		return
	}
	n1 := n / 2
	left, right := s[:n1], s[n1:]
	msort(left, tmp, cmp)
	msort(right, tmp, cmp)
	k := 0
	i, j := 0, 0
	for i < len(left) && j < len(right) {
		if cmp(left[i], right[j]) <= 0 {
			tmp[k] = left[i]
			i++
		} else {
			tmp[k] = right[j]
			j++
		}
		k++
	}
	// What is left of the right run is already in place.
	k += copy(tmp[k:], left[i:])
	copy(s, tmp[:k])
}
