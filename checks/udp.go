package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// UDPSpec configures a UDP check (keepalived's UDP_CHECK). One datagram is
// sent from a connected socket, so an ICMP port unreachable comes back as a
// refused connection and fails the round at once, as a refused TCP connect
// does. Without a required reply the attempt waits its whole timeout for
// such an error and passes if none came (a reply that does come ends it
// early, and is judged like a required one); with RequireReply or an
// expectation, a reply must arrive and match before the timeout.
type UDPSpec struct {
	// Send is the payload; SendHex the same written in hex, in keepalived's
	// free format ("Ab12f 3 456": groups of digits split by spaces, read in
	// pairs, a lone last digit is one byte). Neither sends an empty datagram.
	Send    string `json:"send,omitempty"`
	SendHex string `json:"send_hex,omitempty"`
	// RequireReply makes a reply datagram necessary; any expectation
	// implies it.
	RequireReply bool `json:"require_reply,omitempty"`
	// At most one expectation: the reply must begin with the bytes of
	// ExpectHex (hex as SendHex, where an x stands for any nibble:
	// keepalived's require_reply HEX_STR), contain Expect, or match
	// ExpectRegex (RE2).
	ExpectHex   string `json:"expect_hex,omitempty"`
	Expect      string `json:"expect,omitempty"`
	ExpectRegex string `json:"expect_regex,omitempty"`
	// MinReplyLength and MaxReplyLength bound the reply's length in bytes
	// (0: no bound).
	MinReplyLength int `json:"min_reply_length,omitempty"`
	MaxReplyLength int `json:"max_reply_length,omitempty"`
}

func (s UDPSpec) requiresReply() bool {
	return s.RequireReply || s.ExpectHex != "" || s.Expect != "" || s.ExpectRegex != "" ||
		s.MinReplyLength > 0 || s.MaxReplyLength > 0
}

// maxDatagram is the largest UDP payload (IPv4; IPv6 jumbograms aside).
const maxDatagram = 65507

// udpReadSize is how much of a reply is read when no max_reply_length asks
// for more: a datagram's bytes beyond the buffer are dropped by the kernel.
const udpReadSize = 4 << 10

type udpProber struct {
	payload []byte
	reply   udpMatcher
	require bool
	bufSize int
}

// udpMatcher judges a reply datagram.
type udpMatcher struct {
	// The reply must begin with prefix, compared under mask (a 0 bit in
	// mask matches anything).
	prefix, mask []byte
	contains     []byte
	re           *regexp.Regexp
	min, max     int
}

func newUDPProber(s UDPSpec) (*udpProber, error) {
	p := &udpProber{require: s.requiresReply(), bufSize: udpReadSize}
	switch {
	case s.Send != "" && s.SendHex != "":
		return nil, errors.New("send and send_hex are exclusive")
	case s.SendHex != "":
		b, _, err := parseHex(s.SendHex, false)
		if err != nil {
			return nil, fmt.Errorf("send_hex: %w", err)
		}
		p.payload = b
	default:
		p.payload = []byte(s.Send)
	}
	if len(p.payload) > maxDatagram {
		return nil, fmt.Errorf("payload of %d bytes is longer than a datagram", len(p.payload))
	}
	n := 0
	for _, e := range []string{s.ExpectHex, s.Expect, s.ExpectRegex} {
		if e != "" {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("expect_hex, expect and expect_regex are exclusive")
	}
	m := &p.reply
	switch {
	case s.ExpectHex != "":
		b, mask, err := parseHex(s.ExpectHex, true)
		if err != nil {
			return nil, fmt.Errorf("expect_hex: %w", err)
		}
		m.prefix, m.mask = b, mask
	case s.Expect != "":
		m.contains = []byte(s.Expect)
	case s.ExpectRegex != "":
		re, err := regexp.Compile(s.ExpectRegex)
		if err != nil {
			return nil, fmt.Errorf("expect_regex: %w", err)
		}
		m.re = re
	}
	if s.MinReplyLength < 0 || s.MinReplyLength > maxDatagram || s.MaxReplyLength < 0 || s.MaxReplyLength > maxDatagram {
		return nil, fmt.Errorf("min_reply_length and max_reply_length must be 0-%d", maxDatagram)
	}
	m.min, m.max = s.MinReplyLength, s.MaxReplyLength
	if m.max > 0 && m.min > m.max {
		return nil, fmt.Errorf("min_reply_length %d is above max_reply_length %d", m.min, m.max)
	}
	if m.max > 0 && len(m.prefix) > m.max {
		return nil, fmt.Errorf("expect_hex is longer than max_reply_length %d", m.max)
	}
	// One byte more than the longest acceptable reply shows a longer one.
	p.bufSize = max(p.bufSize, m.max+1, m.min, len(m.prefix))
	return p, nil
}

// parseHex reads keepalived's free hex format: groups of hex digits split
// by spaces; each group is read two digits to a byte, and a lone last digit
// is a byte of its own. With wild, x or X is a nibble that matches anything:
// mask has 0 bits there and 1 bits elsewhere.
func parseHex(s string, wild bool) (data, mask []byte, err error) {
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wild && (c == 'x' || c == 'X'):
			return 0, 0, true
		}
		return 0, 0, false
	}
	for _, group := range strings.Fields(s) {
		for i := 0; i < len(group); i += 2 {
			hi, hm, ok := nibble(group[i])
			if !ok {
				return nil, nil, fmt.Errorf("%q is not a hex digit", group[i])
			}
			if i+1 == len(group) {
				// A lone digit is the byte's low nibble.
				data, mask = append(data, hi), append(mask, 0xf0|hm)
				break
			}
			lo, lm, ok := nibble(group[i+1])
			if !ok {
				return nil, nil, fmt.Errorf("%q is not a hex digit", group[i+1])
			}
			data, mask = append(data, hi<<4|lo), append(mask, hm<<4|lm)
		}
	}
	if len(data) == 0 {
		return nil, nil, errors.New("no hex digits")
	}
	return data, mask, nil
}

func (p *udpProber) Probe(ctx context.Context, t Target) Result {
	c, err := dial(ctx, "udp", t)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	if _, err := c.Write(p.payload); err != nil {
		return ioFailure("send", err)
	}
	buf := make([]byte, p.bufSize)
	n, err := c.Read(buf)
	if err != nil {
		if !p.require && isTimeout(err) && !errors.Is(ctx.Err(), context.Canceled) {
			return success("no reply, no ICMP error")
		}
		return ioFailure("wait for reply", err)
	}
	return p.reply.judge(buf[:n], n == len(buf))
}

// judge decides about one reply datagram; full says it filled the read
// buffer, so it may have been longer.
func (m *udpMatcher) judge(reply []byte, full bool) Result {
	switch {
	case m.max > 0 && len(reply) > m.max:
		return failure("reply of %d+ bytes, want at most %d", m.max+1, m.max)
	case len(reply) < m.min:
		return failure("reply of %d bytes, want at least %d", len(reply), m.min)
	}
	switch {
	case m.prefix != nil:
		if len(reply) < len(m.prefix) {
			return failure("reply of %d bytes is shorter than expect_hex (%d)", len(reply), len(m.prefix))
		}
		for i, b := range m.prefix {
			if (reply[i]^b)&m.mask[i] != 0 {
				return failure("reply differs from expect_hex at byte %d: %s", i, quoteHead(reply))
			}
		}
	case m.contains != nil:
		if !bytes.Contains(reply, m.contains) {
			return failure("reply does not contain %s: %s", strconv.Quote(string(m.contains)), quoteHead(reply))
		}
	case m.re != nil:
		if !m.re.Match(reply) {
			return failure("reply does not match /%s/: %s", m.re, quoteHead(reply))
		}
	}
	if full {
		return success("reply of %d+ bytes", len(reply))
	}
	return success("reply of %d bytes", len(reply))
}

// quoteHead quotes the start of a reply for a reason.
func quoteHead(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}
