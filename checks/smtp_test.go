package checks

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpServer is a small SMTP server for the tests: a greeting, HELO/EHLO,
// STARTTLS when it has a certificate, QUIT. It records the commands seen.
type smtpServer struct {
	greeting string // written on connect, CRLF-terminated lines
	heloCode string // reply code to HELO/EHLO
	tls      *tls.Config
	// offer lists STARTTLS in the EHLO reply (with a certificate).
	offer   bool
	quitAns bool // answer QUIT

	mu   sync.Mutex
	seen []string
}

func (s *smtpServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *smtpServer) handle(c net.Conn) {
	io.WriteString(c, s.greeting)
	var conn net.Conn = c
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.seen = append(s.seen, cmd)
		s.mu.Unlock()
		verb, _, _ := strings.Cut(cmd, " ")
		switch strings.ToUpper(verb) {
		case "HELO":
			io.WriteString(conn, s.heloCode+" mail.test\r\n")
		case "EHLO":
			ext := ""
			if s.offer && s.tls != nil {
				if _, isTLS := conn.(*tls.Conn); !isTLS {
					ext = s.heloCode + "-STARTTLS\r\n"
				}
			}
			io.WriteString(conn, s.heloCode+"-mail.test greets you\r\n"+s.heloCode+"-PIPELINING\r\n"+ext+s.heloCode+" HELP\r\n")
		case "STARTTLS":
			io.WriteString(conn, "220 2.0.0 ready\r\n")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			conn = tc
			br = bufio.NewReader(conn)
		case "QUIT":
			if s.quitAns {
				io.WriteString(conn, "221 bye\r\n")
			}
			hold(conn)
			return
		default:
			io.WriteString(conn, "502 unknown\r\n")
		}
	}
}

// startSMTP serves s on loopback until the test ends.
func startSMTP(t testing.TB, s *smtpServer) netip.AddrPort {
	t.Helper()
	ln := listen(t)
	t.Cleanup(serveConns(ln, s.handle))
	return addrOf(t, ln.Addr())
}

func TestSMTP(t *testing.T) {
	noLeaks(t)
	srv := &smtpServer{greeting: "220-mail.test ESMTP\r\n220 welcome\r\n", heloCode: "250", quitAns: true}
	addr := startSMTP(t, srv)
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeSMTP}), addr, 5*time.Second))
	if got := strings.Join(srv.commands(), "|"); got != "HELO localhost|QUIT" {
		t.Errorf("server saw %q", got)
	}
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeSMTP, SMTP: SMTPSpec{HeloName: "lb1.example.com"}}), addr, 5*time.Second))
	if cmds := srv.commands(); cmds[len(cmds)-2] != "HELO lb1.example.com" {
		t.Errorf("server saw %q", cmds)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	noLeaks(t)
	cert, caFile := selfSigned(t)
	srv := &smtpServer{greeting: "220 mail.test\r\n", heloCode: "250", offer: true, quitAns: true,
		tls: &tls.Config{Certificates: []tls.Certificate{cert}}}
	addr := startSMTP(t, srv)
	r := probe(t, mustProber(t, Spec{Type: TypeSMTP, SMTP: SMTPSpec{StartTLS: true}}), addr, 5*time.Second)
	wantUp(t, r)
	if r.Reason != "SMTP STARTTLS ok" {
		t.Errorf("reason %q", r.Reason)
	}
	if got := strings.Join(srv.commands(), "|"); got != "EHLO localhost|STARTTLS|EHLO localhost|QUIT" {
		t.Errorf("server saw %q", got)
	}
	// Verification: with the CA and a name the certificate has.
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeSMTP, SMTP: SMTPSpec{StartTLS: true, Verify: true, CAFile: caFile, SNI: "check.test"}}), addr, 5*time.Second))
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeSMTP, SMTP: SMTPSpec{StartTLS: true, Verify: true, SNI: "check.test"}}), addr, 5*time.Second),
		"TLS handshake: tls: failed to verify certificate")

	// A server without STARTTLS fails a check that wants it; a plain one passes.
	plain := startSMTP(t, &smtpServer{greeting: "220 mail.test\r\n", heloCode: "250", quitAns: true})
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeSMTP, SMTP: SMTPSpec{StartTLS: true}}), plain, 5*time.Second),
		"EHLO: the server does not offer STARTTLS")
	wantUp(t, probe(t, mustProber(t, Spec{Type: TypeSMTP}), plain, 5*time.Second))
}

func TestSMTPRefusals(t *testing.T) {
	noLeaks(t)
	busy := startSMTP(t, &smtpServer{greeting: "554 5.3.2 busy, come back later\r\n", heloCode: "250"})
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeSMTP}), busy, 5*time.Second), "greeting: 554 5.3.2 busy, come back later, want 220")
	rejects := startSMTP(t, &smtpServer{greeting: "220 mail.test\r\n", heloCode: "501"})
	wantDown(t, probe(t, mustProber(t, Spec{Type: TypeSMTP}), rejects, 5*time.Second), "HELO: 501 mail.test, want 250")

	// QUIT unanswered: still up, and promptly.
	mute := startSMTP(t, &smtpServer{greeting: "220 mail.test\r\n", heloCode: "250"})
	r := probe(t, mustProber(t, Spec{Type: TypeSMTP}), mute, 5*time.Second)
	wantUp(t, r)
	if r.Latency > 2*time.Second {
		t.Errorf("an unanswered QUIT held the check %v", r.Latency)
	}

	ln := listen(t)
	addr := addrOf(t, ln.Addr())
	ln.Close()
	r = probe(t, mustProber(t, Spec{Type: TypeSMTP}), addr, 5*time.Second)
	wantDown(t, r, "connect: connection refused")
	if !r.Refused {
		t.Error("a refused connection is not marked Refused")
	}
}

func TestReadSMTPReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		code int
		n    int
		err  string
	}{
		{"220 ready\r\n", 220, 1, ""},
		{"250\r\n", 250, 1, ""},
		{"250-a\r\n250-b\n250 c\r\n", 250, 3, ""},
		{"250-a\r\n251 c\r\n", 0, 0, "different codes"},
		{"25\r\n", 0, 0, "malformed"},
		{"2500\r\n", 0, 0, "malformed"},
		{"abc def\r\n", 0, 0, "malformed"},
		{"199 low\r\n", 0, 0, "malformed"},
		{"220 no line end", 0, 0, "unexpected EOF"},
		{"", 0, 0, "EOF"},
		{strings.Repeat("x", 3000) + "\r\n", 0, 0, "longer than"},
		{strings.Repeat("250-x\r\n", 70), 0, 0, "more than 64 lines"},
	} {
		r, err := readSMTPReply(bufio.NewReaderSize(strings.NewReader(c.in), 16))
		switch {
		case c.err == "" && (err != nil || r.code != c.code || len(r.lines) != c.n):
			t.Errorf("%q: %+v, %v", c.in, r, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.in, err, c.err)
		}
	}
	r, _ := readSMTPReply(bufio.NewReader(strings.NewReader("250-mail\r\n250-starttls\r\n250 SIZE 10\r\n")))
	if !r.hasExtension("STARTTLS") || r.hasExtension("mail") || !r.hasExtension("size") {
		t.Errorf("extensions of %+v", r)
	}
}

func TestSMTPSpecErrors(t *testing.T) {
	for _, s := range []SMTPSpec{
		{HeloName: "two words"},
		{HeloName: "crlf\r\nRCPT TO:<x>"},
		{Verify: true},
		{SNI: "x"},
		{StartTLS: true, CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := NewProber(Spec{Type: TypeSMTP, SMTP: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
