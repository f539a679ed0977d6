package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/director-lb/director/vrrp"
)

// The notify command gets keepalived's arguments, in keepalived's words.
func TestNotifier(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := notifier(script, "web", slog.New(slog.NewTextHandler(io.Discard, nil)))
	n(context.Background(), vrrp.StateMaster, 150)
	n(context.Background(), vrrp.StateStopped, 150)
	n(context.Background(), vrrp.StateFault, 150)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "INSTANCE web MASTER 150\nINSTANCE web STOP 150\nINSTANCE web FAULT 150\n"
	if string(got) != want {
		t.Errorf("notify calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestNotifierFailureIsLogged(t *testing.T) {
	var buf strings.Builder
	n := notifier("/nonexistent/notify", "web", slog.New(slog.NewTextHandler(&buf, nil)))
	n(context.Background(), vrrp.StateBackup, 100)
	if !strings.Contains(buf.String(), "notify command failed") || !strings.Contains(buf.String(), "state=BACKUP") {
		t.Errorf("log = %q", buf.String())
	}
}
