//go:build !linux

package ipvsadm

import "errors"

// KernelSource reads the kernel's IPVS state; IPVS exists only on Linux.
type KernelSource struct {
	ConnFile string
}

// Read always fails off Linux.
func (KernelSource) Read(Part) (*Snapshot, error) {
	return nil, errors.New("IPVS is only available on Linux")
}
