package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"syscall"
)

// FileSpec configures a file check (keepalived's FILE_CHECK and the
// track_file it names): a local file holds an integer that adjusts the
// real server's weight or takes it down. The file is read every Interval
// (1s by default); a missing or unreadable file, or one that does not start
// with a number, reads as 0, as in keepalived.
//
// With Weight 0 the file is a switch: a non-zero value takes the server
// down (with Reverse, a zero value does). Otherwise value × Weight (negated
// with Reverse) is added to the server's weight, which stays within
// 0-MaxWeight; a product of -2147483648 or less takes the server down.
// Several file checks on one server add up.
type FileSpec struct {
	// Path is the file, an absolute path.
	Path    string `json:"path"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// fileReadMax is how much of the file is read, as much as keepalived reads.
const fileReadMax = 127

// maxFileWeight bounds a file check's weight, as keepalived's does.
const maxFileWeight = math.MaxInt32

type fileProber struct {
	path    string
	weight  int64
	reverse bool
}

func newFileProber(s FileSpec) (*fileProber, error) {
	if s.Path == "" || !filepath.IsAbs(s.Path) {
		return nil, fmt.Errorf("path %q: want an absolute path", s.Path)
	}
	if s.Weight < -maxFileWeight || s.Weight > maxFileWeight {
		return nil, fmt.Errorf("weight %d: want -%d to %d", s.Weight, maxFileWeight, maxFileWeight)
	}
	return &fileProber{path: s.Path, weight: int64(s.Weight), reverse: s.Reverse}, nil
}

func (p *fileProber) Probe(_ context.Context, _ Target) Result {
	v, note := p.read()
	return p.judge(v, note)
}

// read returns the file's value and, when it is not simply a number, why
// it counts as 0.
func (p *fileProber) read() (int64, string) {
	// Non-blocking, so that a FIFO at the path cannot hang the check.
	fd, err := syscall.Open(p.path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, "missing, counts as 0"
		}
		return 0, "unreadable, counts as 0: " + describe(err)
	}
	defer syscall.Close(fd)
	var buf [fileReadMax]byte
	n, err := syscall.Read(fd, buf[:])
	if err != nil {
		return 0, "unreadable, counts as 0: " + describe(err)
	}
	v, ok := ParseFileValue(buf[:max(n, 0)])
	if !ok {
		return 0, "not a number, counts as 0"
	}
	return v, ""
}

// ParseFileValue reads the integer b starts with (a FILE_CHECK or
// track_file value), as C's strtol with base
// 0 does: leading white space, a sign, then 0x for hex, 0 for octal or
// decimal digits. ok is false when there is no number. The value is kept
// within the 32-bit range keepalived reads.
func ParseFileValue(b []byte) (v int64, ok bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	digit := func(c byte, base int64) int64 {
		d := int64(-1)
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case c >= 'a' && c <= 'z':
			d = int64(c-'a') + 10
		case c >= 'A' && c <= 'Z':
			d = int64(c-'A') + 10
		}
		if d >= base {
			return -1
		}
		return d
	}
	base := int64(10)
	switch {
	case i+2 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && digit(b[i+2], 16) >= 0:
		base, i = 16, i+2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	const limit = math.MaxInt32 + 1
	for ; i < len(b); i++ {
		d := digit(b[i], base)
		if d < 0 {
			break
		}
		ok = true
		v = min(v*base+d, limit) // saturate: later digits cannot lower it
	}
	if neg {
		v = -v
	}
	return min(max(v, math.MinInt32), math.MaxInt32), ok
}

// judge applies keepalived's rules to a value.
func (p *fileProber) judge(v int64, note string) Result {
	desc := fmt.Sprintf("value %d", v)
	if note != "" {
		desc = note
	}
	if p.weight == 0 {
		if (v != 0) != p.reverse {
			return failure("%s: down", desc)
		}
		return success("%s", desc)
	}
	prod := v * p.weight
	if p.reverse {
		prod = -prod
	}
	if prod <= math.MinInt32 {
		return failure("%s × weight %d: down", desc, p.weight)
	}
	r := success("%s: weight %+d", desc, min(prod, math.MaxInt32))
	r.Adjust = int(min(prod, math.MaxInt32))
	return r
}
