package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"
)

// TCPSpec configures a TCP check (keepalived's TCP_CHECK). The zero value
// only connects. With Send, those bytes are written after connecting; with
// Expect or ExpectRegex, the reply must contain the string, or match the
// expression, within the first MaxBytes and before the timeout. Expect
// without Send checks a banner (an SMTP server's "220", say).
type TCPSpec struct {
	Send        string `json:"send,omitempty"`
	Expect      string `json:"expect,omitempty"`
	ExpectRegex string `json:"expect_regex,omitempty"`
	// MaxBytes caps the reply bytes read; DefaultMaxBytes by default.
	MaxBytes int `json:"max_bytes,omitempty"`
}

type tcpProber struct {
	send   []byte
	expect []byte
	re     *regexp.Regexp
	max    int
}

func newTCPProber(s TCPSpec) (*tcpProber, error) {
	p := &tcpProber{send: []byte(s.Send), max: s.MaxBytes}
	if p.max <= 0 {
		p.max = DefaultMaxBytes
	}
	switch {
	case s.Expect != "" && s.ExpectRegex != "":
		return nil, errors.New("expect and expect_regex are exclusive")
	case s.Expect != "":
		p.expect = []byte(s.Expect)
		if len(p.expect) > p.max {
			return nil, fmt.Errorf("expect is longer than max_bytes %d", p.max)
		}
	case s.ExpectRegex != "":
		re, err := regexp.Compile(s.ExpectRegex)
		if err != nil {
			return nil, fmt.Errorf("expect_regex: %w", err)
		}
		p.re = re
	}
	return p, nil
}

func (p *tcpProber) Probe(ctx context.Context, t Target) Result {
	c, err := dial(ctx, "tcp", t)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	if len(p.send) > 0 {
		if _, err := c.Write(p.send); err != nil {
			return ioFailure("send", err)
		}
	}
	if p.expect == nil && p.re == nil {
		return success("connected")
	}
	return p.await(c)
}

// ProbeUntil is Probe with one deadline on one socket (see fastConn).
func (p *tcpProber) ProbeUntil(ctx context.Context, t Target, deadline time.Time) Result {
	c, err := dialFast(ctx, t, deadline)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	if len(p.send) > 0 {
		// The first write waits for the connect: its failure is the
		// connect's.
		if _, err := c.Write(p.send); err != nil {
			if c.pending {
				return ioFailure("connect", err)
			}
			return ioFailure("send", err)
		}
	} else if err := c.waitConnected(); err != nil {
		return ioFailure("connect", err)
	}
	if p.expect == nil && p.re == nil {
		return success("connected")
	}
	r := p.await(c)
	r.ReadLate = c.lateReads > 0
	return r
}

// await reads until the reply matches, the cap is reached, the server
// closes, or the deadline passes. Whatever arrived before an error is still
// judged: a server that answers and then resets is up.
func (p *tcpProber) await(r io.Reader) Result {
	judge := p.judge()
	buf := make([]byte, 0, min(p.max, 4<<10))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), p.max)])
		prev := len(buf)
		buf = buf[:prev+n]
		if res, done := judge(buf, prev, err); done {
			return res
		}
	}
}

// judge returns a judge of one attempt's reply (see loopPlan.judge).
func (p *tcpProber) judge() func(buf []byte, prev int, err error) (Result, bool) {
	checked := 0 // length at the last regexp evaluation
	return func(buf []byte, prev int, err error) (Result, bool) {
		done := err != nil || len(buf) >= p.max
		if (len(buf) > prev || done) && p.matchNew(buf, prev, &checked, done) {
			return success("reply matches after %d bytes", len(buf)), true
		}
		if !done {
			return Result{}, false
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return ioFailure("wait for reply", err), true
		}
		return failure("reply (%d bytes) %s", len(buf), p.want()), true
	}
}

// loopPlan runs every TCP check in the Manager's loop.
func (p *tcpProber) loopPlan(Target) (loopPlan, bool) {
	lp := loopPlan{send: p.send, sendStage: "send", max: p.max}
	if p.expect != nil || p.re != nil {
		lp.judge = p.judge()
	}
	return lp, true
}

// matchNew looks for the expectation in buf, whose bytes from prev on are
// new. A substring is only searched for where it could newly appear. A
// regexp is re-run on every read while the reply is under 1 KiB, then only
// when it has grown by an eighth, and at the end (close, cap, timeout): a
// trickle of one-byte reads must not cost quadratic time. So a match deep
// in a large reply from a server that then holds the connection open is
// only seen at the timeout (and still counts as up).
func (p *tcpProber) matchNew(buf []byte, prev int, checked *int, final bool) bool {
	if p.expect != nil {
		from := max(0, prev-len(p.expect)+1)
		return bytes.Contains(buf[from:], p.expect)
	}
	if len(buf) == *checked || (!final && len(buf) > 1<<10 && len(buf) < *checked+*checked/8) {
		return false
	}
	*checked = len(buf)
	return p.re.Match(buf)
}

func (p *tcpProber) want() string {
	if p.expect != nil {
		return "does not contain " + strconv.Quote(string(p.expect))
	}
	return "does not match /" + p.re.String() + "/"
}
