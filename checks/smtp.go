package checks

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// SMTPSpec configures an SMTP check (keepalived's SMTP_CHECK): connect,
// read the 220 greeting, HELO with HeloName and expect 250, then QUIT.
// With StartTLS the exchange is EHLO (250 and the STARTTLS extension),
// STARTTLS (220), the TLS handshake and EHLO again (250) before the QUIT.
// The reply to QUIT is read but not judged: the server has answered.
type SMTPSpec struct {
	// HeloName is the name given in HELO/EHLO (keepalived's helo_name);
	// "localhost" by default.
	HeloName string `json:"helo_name,omitempty"`
	StartTLS bool   `json:"starttls,omitempty"`
	// SNI, Verify and CAFile are as for an https check, with STARTTLS.
	SNI    string `json:"sni,omitempty"`
	Verify bool   `json:"verify,omitempty"`
	CAFile string `json:"ca_file,omitempty"`
}

// DefaultHeloName is the name an SMTP check gives by default.
const DefaultHeloName = "localhost"

// SMTP reply limits: RFC 5321 caps a reply line at 512 bytes; some servers
// write longer ones, so allow 2 KiB, and at most 64 lines in one reply.
const (
	maxSMTPLine  = 2 << 10
	maxSMTPLines = 64
	smtpQuitWait = 200 * time.Millisecond
)

type smtpProber struct {
	helo string
	tls  *tls.Config // nil without STARTTLS
}

func newSMTPProber(s SMTPSpec) (*smtpProber, error) {
	p := &smtpProber{helo: s.HeloName}
	if p.helo == "" {
		p.helo = DefaultHeloName
	}
	if strings.ContainsAny(p.helo, " \t\r\n") || strings.ContainsFunc(p.helo, func(r rune) bool { return r < ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("helo_name %q: want a host name, without spaces", s.HeloName)
	}
	if !s.StartTLS {
		if s.SNI != "" || s.Verify || s.CAFile != "" {
			return nil, errors.New("sni, verify and ca_file need starttls")
		}
		return p, nil
	}
	cfg, err := tlsConfig(s.SNI, "", s.Verify, s.CAFile)
	if err != nil {
		return nil, err
	}
	p.tls = cfg
	return p, nil
}

// smtpReply is one SMTP reply: its code and the text of its lines.
type smtpReply struct {
	code  int
	lines []string
}

func (r smtpReply) String() string {
	text := ""
	if len(r.lines) > 0 {
		text = " " + r.lines[0]
	}
	return strconv.Itoa(r.code) + text
}

// hasExtension reports whether an EHLO reply lists the extension (every
// line after the first names one, with its parameters).
func (r smtpReply) hasExtension(name string) bool {
	for _, l := range r.lines[min(1, len(r.lines)):] {
		kw, _, _ := strings.Cut(l, " ")
		if strings.EqualFold(kw, name) {
			return true
		}
	}
	return false
}

var (
	errSMTPSyntax   = errors.New("malformed SMTP reply")
	errSMTPTooLong  = fmt.Errorf("SMTP reply line longer than %d bytes", maxSMTPLine)
	errSMTPTooMany  = fmt.Errorf("SMTP reply of more than %d lines", maxSMTPLines)
	errSMTPMismatch = errors.New("SMTP reply lines with different codes")
)

// readSMTPReply reads one reply: lines "250-text" continued until one
// "250 text" (or a bare "250"). Lines may end in LF or CRLF.
func readSMTPReply(br *bufio.Reader) (smtpReply, error) {
	var r smtpReply
	for {
		line, err := readSMTPLine(br)
		if err != nil {
			return r, err
		}
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return r, fmt.Errorf("%w: %s", errSMTPSyntax, quoteHead([]byte(line)))
		}
		code := 0
		for _, c := range []byte(line[:3]) {
			if c < '0' || c > '9' {
				return r, fmt.Errorf("%w: %s", errSMTPSyntax, quoteHead([]byte(line)))
			}
			code = code*10 + int(c-'0')
		}
		if code < 200 || code > 599 {
			return r, fmt.Errorf("%w: code %d", errSMTPSyntax, code)
		}
		if r.code != 0 && code != r.code {
			return r, errSMTPMismatch
		}
		r.code = code
		if len(r.lines) == maxSMTPLines {
			return r, errSMTPTooMany
		}
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		r.lines = append(r.lines, text)
		if len(line) == 3 || line[3] == ' ' {
			return r, nil
		}
	}
}

// readSMTPLine reads one line without its line ending, refusing one longer
// than maxSMTPLine.
func readSMTPLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(b)+len(frag) > maxSMTPLine+2 {
			return "", errSMTPTooLong
		}
		b = append(b, frag...)
		switch {
		case err == nil:
			b = b[:len(b)-1]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return string(b), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(b) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

func (p *smtpProber) Probe(ctx context.Context, t Target) Result {
	c, err := dial(ctx, "tcp", t)
	if err != nil {
		return ioFailure("connect", err)
	}
	defer c.Close()
	var conn net.Conn = c
	br := bufio.NewReaderSize(conn, 512)
	// step sends cmd (none for the greeting) and reads the reply, which
	// must have code want.
	step := func(stage, cmd string, want int) (smtpReply, Result, bool) {
		if cmd != "" {
			if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
				return smtpReply{}, ioFailure("send "+stage, err), false
			}
		}
		r, err := readSMTPReply(br)
		if err != nil {
			return r, ioFailure("read "+stage+" reply", err), false
		}
		if r.code != want {
			return r, failure("%s: %s, want %d", stage, clip(r.String()), want), false
		}
		return r, Result{}, true
	}
	if _, res, ok := step("greeting", "", 220); !ok {
		return res
	}
	if p.tls == nil {
		if _, res, ok := step("HELO", "HELO "+p.helo, 250); !ok {
			return res
		}
	} else {
		r, res, ok := step("EHLO", "EHLO "+p.helo, 250)
		if !ok {
			return res
		}
		if !r.hasExtension("STARTTLS") {
			return failure("EHLO: the server does not offer STARTTLS")
		}
		if _, res, ok := step("STARTTLS", "STARTTLS", 220); !ok {
			return res
		}
		if br.Buffered() > 0 {
			// Plain text after the 220 would be taken as TLS data: an
			// injection attempt or a broken server (CVE-2011-0411).
			return failure("STARTTLS: data after the 220 reply")
		}
		tc, err := tlsHandshake(ctx, c, p.tls, t)
		if err != nil {
			return ioFailure("TLS handshake", err)
		}
		conn = tc
		br.Reset(conn)
		if _, res, ok := step("EHLO after STARTTLS", "EHLO "+p.helo, 250); !ok {
			return res
		}
	}
	// QUIT is a courtesy: its reply, or its absence, changes nothing, so
	// a server that does not answer it is given only a moment.
	if _, err := io.WriteString(conn, "QUIT\r\n"); err == nil {
		dl := time.Now().Add(smtpQuitWait)
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		_ = conn.SetReadDeadline(dl)
		_, _ = readSMTPReply(br)
	}
	if p.tls != nil {
		return success("SMTP STARTTLS ok")
	}
	return success("SMTP HELO ok")
}
