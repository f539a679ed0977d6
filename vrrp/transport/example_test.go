package transport_test

import (
	"errors"
	"fmt"
	"net"

	"github.com/director-lb/director/vrrp/transport"
)

// A VRRPv3 speaker on eth0: send one advertisement to the group, then read
// until the Conn is closed, keeping only packets that kept TTL 255.
func Example() {
	c, err := transport.Listen(transport.Options{Interface: "eth0", Family: 4, Multicast: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	advert := []byte{0x31, 1, 100, 1, 0, 100, 0, 0, 192, 0, 2, 10} // built by package vrrp, checksummed over c.Source()
	if err := c.WriteTo(advert, transport.MulticastGroup(4)); err != nil {
		fmt.Println(err)
		return
	}

	buf := make([]byte, 1500)
	for {
		f, err := c.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		if f.TTL != 255 {
			continue // not from the local link (RFC 5798 5.1.1.3)
		}
		fmt.Printf("%d bytes from %s\n", len(f.Payload), f.Src)
	}
}
