package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs f on a fresh OS thread that has joined namespace name.
// Sockets f creates stay in that namespace for life, whichever thread uses
// them later. The thread is never returned to the Go scheduler: the
// goroutine exits still locked, so the runtime discards it instead of
// reusing a thread in the wrong namespace.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// newNamedNetns creates namespace name, visible to "ip netns" as
// /run/netns/name, and returns a handle to it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	rc := make(chan result, 1)
	go func() {
		// NewNamed moves the calling thread into the new namespace;
		// this thread is discarded, as in inNetns.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		rc <- result{h, err}
	}()
	r := <-rc
	if r.err != nil {
		return netns.None(), fmt.Errorf("create netns %s: %w", name, r.err)
	}
	return r.h, nil
}

// writeSysctls sets /proc/sys keys ("net/ipv4/...") inside namespace ns:
// /proc/sys/net shows the namespace of the thread that opens it.
func writeSysctls(ns string, kv map[string]string) error {
	return inNetns(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}
