package checks

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// inNetns runs f on an OS thread of its own in a new network namespace
// whose loopback is up, after writing the given sysctls (paths under
// /proc/sys/net, which belong to the namespace of the thread that opens
// them). Sockets that f opens live in that namespace; f's probes must run
// on its own goroutine, which holds the thread. The thread ends with f, so
// the namespace goes away with its last socket. Tests run as root.
func inNetns(t *testing.T, sysctls map[string]string, f func()) {
	t.Helper()
	done := make(chan struct{})
	var setupErr error
	go func() {
		defer close(done)
		// Never unlocked: the thread, in its own namespace, exits with
		// the goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		if setupErr = unix.Unshare(unix.CLONE_NEWNET); setupErr != nil {
			return
		}
		if setupErr = loopbackUp(); setupErr != nil {
			return
		}
		for path, v := range sysctls {
			if setupErr = os.WriteFile("/proc/sys/net/"+path, []byte(v), 0); setupErr != nil {
				return
			}
		}
		f()
	}()
	<-done
	if setupErr != nil {
		t.Fatalf("network namespace: %v", setupErr)
	}
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
