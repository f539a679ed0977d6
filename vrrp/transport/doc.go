// Package transport moves VRRP messages (IP protocol 112) between this host
// and its peers over raw IP sockets. It knows nothing of the VRRP format: it
// sends the bytes it is given and hands back the bytes it receives, together
// with what the IP layer said about them (source, destination, TTL or hop
// limit, interface).
//
// One Conn serves one interface and one address family, in multicast mode
// (224.0.0.18 / ff02::12) or unicast mode. Its methods are safe for
// concurrent use, so several VRRP instances (different VRIDs) can share it:
// typically one goroutine reads and demultiplexes by VRID while every
// instance writes.
//
// Every send leaves with TTL / hop limit 255 and exactly Source() as the IP
// source, as RFC 5798 requires; multicast loopback is off, so a Conn never
// reads back its own advertisements. Received frames report the TTL as it
// arrived so the caller can drop anything that is not 255.
//
// Sockets belong to the network namespace of the OS thread that creates them.
// To use a namespace, call Listen from a goroutine that has called
// runtime.LockOSThread and switched its thread into that namespace; the Conn
// keeps working from any goroutine afterwards.
//
// Example (a multicast IPv4 instance on eth0):
//
//	c, err := transport.Listen(transport.Options{Interface: "eth0", Family: 4, Multicast: true})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	// c.Source() goes into the VRRPv3 checksum pseudo-header.
//	if err := c.WriteTo(advert, transport.MulticastGroup(4)); err != nil {
//		return err
//	}
//	buf := make([]byte, 1500)
//	for {
//		f, err := c.Read(buf)
//		if errors.Is(err, net.ErrClosed) {
//			return nil
//		}
//		if err != nil {
//			return err
//		}
//		if f.TTL != 255 {
//			continue // RFC 5798 5.1.1.3: must have come from the local link
//		}
//		handle(f.Src, f.Payload)
//	}
package transport
