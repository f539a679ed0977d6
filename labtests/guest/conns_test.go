package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/director-lb/director/labtests/labplan"
)

// loopbackEcho serves the lab's echo protocol on 127.0.0.1 as host name.
func loopbackEcho(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveEcho(ln, name)
	return ln.Addr().String()
}

func TestConnsStreamAndClose(t *testing.T) {
	addr := loopbackEcho(t, "rs9")
	raw, err := dialIn("", addr, 3)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := openConns(raw, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := cs.check(); err != nil {
		t.Errorf("check with every connection alive: %v", err)
	}
	set := cs.close()
	st := set.Stats()
	if st.Total != 3 || st.Died != 0 || st.Servers["rs9"] != 3 {
		t.Errorf("stats = %s, want 3 live connections to rs9", st)
	}
	for _, c := range set.Conns {
		if c.Echoed < 3 || c.Local == "" || !c.Alive() {
			t.Errorf("connection %+v: want several echoes, a local address, alive", c)
		}
	}
}

// TestConnsDeathIsRecorded: a server that resets its connections kills
// them, with the time of the failing message and the reason recorded; an
// idle connection learns it only at conns_check.
func TestConnsDeathIsRecorded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var server []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			server = append(server, c)
			mu.Unlock()
			io.WriteString(c, "rs8\n")
		}
	}()
	raw, err := dialIn("", ln.Addr().String(), 2)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := openConns(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, c := range server {
		c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	}
	mu.Unlock()
	before := time.Now()
	err = cs.check()
	if err == nil || !strings.Contains(err.Error(), "died") {
		t.Errorf("check after the server reset every connection: %v, want deaths", err)
	}
	set := cs.close()
	if st := set.Stats(); st.Died != 2 {
		t.Errorf("stats = %s, want 2 dead", st)
	}
	for _, c := range set.Conns {
		if c.Alive() || c.Died.Before(before) || c.Err == "" {
			t.Errorf("connection %+v: want dead after the reset with a reason", c)
		}
	}
	if st := set.StatsBetween(time.Now(), time.Time{}); st.Died != 0 {
		t.Errorf("deaths after the close = %d, want 0", st.Died)
	}
}

func TestConnStepsWithoutOpen(t *testing.T) {
	r := &runner{log: slog.New(newConsoleHandler(io.Discard, time.Now()))}
	for _, h := range []handler{stepConnsCheck, stepConnsClose} {
		sr := labplan.StepResult{Conns: -1}
		if err := h(context.Background(), r, labplan.Step{}, &sr); err == nil {
			t.Errorf("conns step without open connections: no error")
		}
	}
}

func TestShortErr(t *testing.T) {
	err := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	if got := shortErr(err); got != "read: connection reset by peer" {
		t.Errorf("shortErr = %q", got)
	}
}
