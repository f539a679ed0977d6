// Package rxstamp reads when the kernel received a socket's data
// (SO_TIMESTAMPNS), so that a busy process can tell when a packet arrived
// from when it got round to reading it.
package rxstamp

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// OOBSize is room enough for the receive-time control message.
var OOBSize = unix.CmsgSpace(16)

// Enable asks the kernel to hand fd's receive times to recvmsg.
func Enable(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	return nil
}

// Time is the receive time among recvmsg's control messages oob, or the
// zero Time when there is none.
func Time(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			if sec == 0 && nsec == 0 {
				return time.Time{}
			}
			return time.Unix(sec, nsec)
		}
	}
	return time.Time{}
}

// Hold keeps the kernel stamping every packet it receives until the
// returned Closer is closed. The kernel takes receive times only while
// some socket asks for them, so a socket that turns stamping on late
// (after its data arrived) finds a time only while one is held.
func Hold() (io.Closer, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		// An IPv6-only host, or a namespace without IPv4.
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("receive-time holder: socket: %w", err)
		}
	}
	if err := Enable(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("receive-time holder: %w", err)
	}
	return holder(fd), nil
}

type holder int

func (h holder) Close() error { return unix.Close(int(h)) }
