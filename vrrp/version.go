package vrrp

import "fmt"

// Version is the VRRP protocol version carried in every advertisement.
type Version uint8

const (
	// V2 is RFC 3768: IPv4 only, advertisement interval in whole seconds,
	// its own checksum and an optional authentication field.
	V2 Version = 2
	// V3 is RFC 5798: IPv4 and IPv6, interval in centiseconds, checksum over
	// an IP pseudo-header.
	V3 Version = 3
)

func (v Version) String() string {
	switch v {
	case V2, V3:
		return fmt.Sprintf("v%d", uint8(v))
	}
	return fmt.Sprintf("Version(%d)", uint8(v))
}
