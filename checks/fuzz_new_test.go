package checks

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// Fuzz targets for what the new checks read from real servers and files.
// Seeds are below and under testdata/fuzz.

// FuzzSMTPReply: any byte stream gives a reply or an error, reads a
// bounded amount, and a reply it returns has a valid code and line count.
func FuzzSMTPReply(f *testing.F) {
	for _, s := range []string{
		"220 mail.test ESMTP\r\n", "250-a\r\n250-STARTTLS\r\n250 HELP\r\n", "250\n", "25", "2500 x\r\n",
		"250-a\r\n251 b\r\n", "\x00\xff\r\n", strings.Repeat("250-x\r\n", 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cr := &countReader{r: bytes.NewReader(in)}
		r, err := readSMTPReply(bufio.NewReaderSize(cr, 512))
		if err != nil {
			return
		}
		if r.code < 200 || r.code > 599 || len(r.lines) == 0 || len(r.lines) > maxSMTPLines {
			t.Fatalf("reply %+v from %q", r, in)
		}
		for _, l := range r.lines {
			if len(l) > maxSMTPLine || strings.ContainsAny(l, "\n") {
				t.Fatalf("line %q", l)
			}
		}
		_ = r.hasExtension("STARTTLS")
		// What was consumed is bounded by the limits (plus one buffer).
		if cr.n > maxSMTPLines*(maxSMTPLine+2)+512 {
			t.Fatalf("read %d bytes", cr.n)
		}
	})
}

type countReader struct {
	r *bytes.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzUDPReply: a reply datagram is judged without panicking, and a pass
// means every expectation holds.
func FuzzUDPReply(f *testing.F) {
	f.Add([]byte("ERR unknown"), "4552 xx", 0, 0)
	f.Add([]byte{0xde, 0xad, 0xbe, 0xef}, "deadxxef", 4, 4)
	f.Add([]byte{}, "0", 0, 10)
	f.Add([]byte("x"), "x1 x", 1, 0)
	f.Fuzz(func(t *testing.T, reply []byte, pattern string, minLen, maxLen int) {
		p, err := newUDPProber(UDPSpec{ExpectHex: pattern, MinReplyLength: minLen, MaxReplyLength: maxLen})
		if err != nil {
			return
		}
		r := p.reply.judge(reply, false)
		if !r.OK {
			return
		}
		m := p.reply
		if len(reply) < m.min || (m.max > 0 && len(reply) > m.max) || len(reply) < len(m.prefix) {
			t.Fatalf("%q passed %+v", reply, m)
		}
		for i := range m.prefix {
			if reply[i]&m.mask[i] != m.prefix[i]&m.mask[i] {
				t.Fatalf("%q passed pattern %q at byte %d", reply, pattern, i)
			}
		}
	})
}

// FuzzParseHex: the free hex format either fails or gives one mask byte
// per data byte, with wildcards only where asked for.
func FuzzParseHex(f *testing.F) {
	for _, s := range []string{"Ab12f 3 456 546443123", "xX 1x", "", "0g", " \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data, mask, err := parseHex(s, true)
		if err != nil {
			return
		}
		if len(data) == 0 || len(data) != len(mask) {
			t.Fatalf("%q: % x / % x", s, data, mask)
		}
		if !strings.ContainsAny(s, "xX") {
			for _, m := range mask {
				if m != 0xff {
					t.Fatalf("%q: wildcard mask % x", s, mask)
				}
			}
		}
		if _, _, err := parseHex(s, false); err == nil && strings.ContainsAny(s, "xX") {
			t.Fatalf("%q: x accepted without wildcards", s)
		}
	})
}

// FuzzICMPReply: whatever arrives on the socket, only the exact echo
// reply is taken for one.
func FuzzICMPReply(f *testing.F) {
	data := []byte("director12345678")
	req := echoRequest(false, 0x1234, 7, data)
	f.Add(echoReply(false, req, nil), false)
	f.Add(unreachable(false, req), false)
	f.Add(unreachable(true, echoRequest(true, 0x1234, 7, data)), true)
	f.Add([]byte{0, 0, 0xff}, true)
	f.Fuzz(func(t *testing.T, msg []byte, v6 bool) {
		for _, checkID := range []bool{false, true} {
			if judgeICMP(msg, v6, checkID, 0x1234, 7, data) != icmpReply {
				continue
			}
			if len(msg) != 8+len(data) || !bytes.Equal(msg[8:], data) || msg[6] != 0 || msg[7] != 7 {
				t.Fatalf("%x taken for the reply", msg)
			}
		}
	})
}

// FuzzFileValue: any file content reads as a 32-bit value, as strtol would
// begin it.
func FuzzFileValue(f *testing.F) {
	for _, s := range []string{"12", "-20\n", "0x10", "017", "maintenance", "99999999999999999999", " +0x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := ParseFileValue(b)
		if v < -1<<31 || v > 1<<31-1 || (!ok && v != 0) {
			t.Fatalf("%q: %d %v", b, v, ok)
		}
		p := &fileProber{weight: 3}
		if r := p.judge(v, ""); r.OK && (r.Adjust < -(1<<31) || r.Adjust > 1<<31-1) {
			t.Fatalf("%q: adjust %d", b, r.Adjust)
		}
	})
}
