// Package privdir checks the directories director keeps its state and its
// control socket in. Whoever can write such a directory can replace the
// IPVS ownership file or the runtime decisions, or put a socket of their own
// where `director` commands look for the daemon's; so it must belong to the
// daemon's user (root) and be writable by nobody else.
package privdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Ensure creates dir (mode 0700, with any missing parents) if it does not
// exist, then checks it as Check does. what names the directory's use in
// errors, e.g. "control socket directory".
func Ensure(what, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%s %s: %w", what, dir, err)
		}
	}
	return Check(what, dir)
}

// Check returns an error naming dir unless it is a directory owned by the
// daemon's user that neither its group nor others may write.
func Check(what, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: not a directory", what, dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s %s: cannot read its owner", what, dir)
	}
	if want := uint32(os.Geteuid()); st.Uid != want {
		return fmt.Errorf("%s %s: owned by uid %d, not by %s: chown %s %s", what, dir, st.Uid, user(want), user(want), dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s %s: mode %04o lets its group or others write it: chmod go-w %s (0700 is usual)", what, dir, perm|sticky(fi), dir)
	}
	return nil
}

func user(uid uint32) string {
	if uid == 0 {
		return "root"
	}
	return fmt.Sprintf("uid %d", uid)
}

// sticky adds the sticky bit's 01000 to the mode shown, as ls would.
func sticky(fi fs.FileInfo) fs.FileMode {
	if fi.Mode()&fs.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}
