package rxstamp

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestTimeOfAUDPDatagram reads a loopback datagram's receive time: it lies
// between the send and the read.
func TestTimeOfAUDPDatagram(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = Enable(int(fd)) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	before := time.Now()
	s, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 8), make([]byte, OOBSize)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	at := Time(oob[:oobn])
	if at.IsZero() || at.Before(before.Add(-time.Millisecond)) || at.After(after) {
		t.Fatalf("receive time %v, want within [%v, %v]", at, before, after)
	}
}

func TestTimeWithoutStamp(t *testing.T) {
	if got := Time(nil); !got.IsZero() {
		t.Fatalf("Time(nil) = %v, want zero", got)
	}
	// Another control message (a credential) is not a time.
	if got := Time(unix.UnixCredentials(&unix.Ucred{Pid: 1})); !got.IsZero() {
		t.Fatalf("Time(credentials) = %v, want zero", got)
	}
}

func TestHold(t *testing.T) {
	h, err := Hold()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTimeParses builds the control message by hand, as the kernel lays
// it out.
func TestTimeParses(t *testing.T) {
	want := time.Unix(1767225600, 123456789)
	oob := make([]byte, OOBSize)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SO_TIMESTAMPNS
	h.SetLen(unix.CmsgLen(16))
	data := oob[unix.CmsgLen(0):]
	binary.NativeEndian.PutUint64(data[0:8], uint64(want.Unix()))
	binary.NativeEndian.PutUint64(data[8:16], uint64(want.Nanosecond()))
	if got := Time(oob); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	// A zero stamp (a packet received while nobody asked for stamps) is
	// no time.
	clear(data[:16])
	if got := Time(oob); !got.IsZero() {
		t.Errorf("Time(zero stamp) = %v, want zero", got)
	}
}
