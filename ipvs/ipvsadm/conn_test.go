package ipvsadm

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const connHeader = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"

func TestFgetsSplit(t *testing.T) {
	long := strings.Repeat("x", 300) + "\n"
	got := fgetsSplit([]byte("a\n\nb" + long + "c"))
	want := []string{"a\n", "\n", "b" + strings.Repeat("x", 254), strings.Repeat("x", 46) + "\n", "c"}
	if len(got) != len(want) {
		t.Fatalf("got %d pieces, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("piece %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestParseConnLine(t *testing.T) {
	l, err := ParseConnLine([]byte("UDP 0A090002 0x13C4 0A070001 -1 fd00:0008:0000:0000:0000:0000:0000:0002 1F90 NONE -5 sip call@id\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.n != 11 || l.protocol != "UDP" || l.cport != 0x13c4 || l.vport != 0xffff || l.dport != 0x1f90 ||
		l.state != "NONE" || l.expires != 1<<32-5 || l.peName != "sip" || l.peData != "call@id" {
		t.Errorf("parsed %+v", l)
	}
	c, v, d := l.names()
	if string(c) != "10.9.0.2:5060" || string(v) != "10.7.0.1:65535" || string(d) != "[fd00:8::2]:8080" {
		t.Errorf("names %s %s %s", c, v, d)
	}

	// sscanf stops at the first field it cannot convert.
	l, err = ParseConnLine([]byte("TCP 0A090002 zz 0A070001\n"))
	if err != nil || l.n != 2 {
		t.Errorf("got n=%d err=%v, want 2 fields", l.n, err)
	}
	// Nothing but white space is where ipvsadm exits 1.
	if _, err := ParseConnLine([]byte(" \t\r\n")); !errors.Is(err, errConnInput) {
		t.Errorf("blank piece: err = %v", err)
	}
	// A NUL ends the C string sscanf sees.
	if _, err := ParseConnLine([]byte("\x00TCP 0A090002\n")); !errors.Is(err, errConnInput) {
		t.Errorf("NUL-led piece: err = %v", err)
	}
}

func TestWriteConnsErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteConns(&buf, nil, false); !errors.Is(err, ErrConnEmpty) || buf.Len() != 0 {
		t.Errorf("empty table: err %v, output %q", err, buf.String())
	}
	buf.Reset()
	table := connHeader + "TCP 0A090002 0001 0A070001 0050 0A080002 1F90 ESTABLISHED 61\n\nTCP 0A090002 0002 0A070001 0050 0A080002 1F90 ESTABLISHED 61\n"
	err := WriteConns(&buf, []byte(table), false)
	if !errors.Is(err, errConnInput) {
		t.Errorf("blank line: err = %v", err)
	}
	// What came before the blank line is printed, as ipvsadm's exit
	// flushes it.
	want := "IPVS connection entries\npro expire state       source             virtual            destination\n" +
		"TCP 01:01  ESTABLISHED 10.9.0.2:1         10.7.0.1:80        10.8.0.2:8080\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

func TestConnsJSONForm(t *testing.T) {
	table := connHeader +
		"TCP 0A090002 0001 0A070001 0050 0A080002 1F90 ESTABLISHED 61\n" +
		"TCP 0A090002\n" +
		"UDP fd00:0009:0000:0000:0000:0000:0000:0002 13C4 fd00:0007:0000:0000:0000:0000:0000:0001 13C4 0A080002 13C4 NONE 30 sip abc\n"
	got := Conns([]byte(table))
	want := []Conn{
		{Protocol: "TCP", Client: netip.MustParseAddrPort("10.9.0.2:1"), Virtual: netip.MustParseAddrPort("10.7.0.1:80"),
			Destination: netip.MustParseAddrPort("10.8.0.2:8080"), State: "ESTABLISHED", Expires: 61},
		{Protocol: "UDP", Client: netip.MustParseAddrPort("[fd00:9::2]:5060"), Virtual: netip.MustParseAddrPort("[fd00:7::1]:5060"),
			Destination: netip.MustParseAddrPort("10.8.0.2:5060"), State: "NONE", Expires: 30, PEName: "sip", PEData: "abc"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d connections, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("conn %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzParseConn feeds arbitrary connection tables (outside input: a proc
// file, or a captured one) through the parser and printer. They must not
// panic, must print one line per piece fgets would return, and must report
// only the errors ipvsadm exits on.
func FuzzParseConn(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/conns-*/conn_table.txt")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(connHeader + "TCP 0x 0x1 - -0 + +1 \x00 -99999999999999999999 a b c d\n"))
	f.Add([]byte(connHeader + "TCP ::ffff:1.2.3.4 1 1.2.3.4 2 fe80::1%eth0 3 S 4294967296\n"))
	f.Fuzz(func(t *testing.T, table []byte) {
		var buf bytes.Buffer
		err := WriteConns(&buf, table, true)
		pieces := fgetsSplit(table)
		switch {
		case len(pieces) == 0:
			if !errors.Is(err, ErrConnEmpty) {
				t.Fatalf("empty table: err = %v", err)
			}
			return
		case err != nil && !errors.Is(err, errConnInput):
			t.Fatalf("unexpected error %v", err)
		}
		lines := strings.Count(buf.String(), "\n")
		if !strings.HasPrefix(buf.String(), "IPVS connection entries\npro expire ") {
			t.Fatalf("no header: %q", buf.String())
		}
		if err == nil && lines != len(pieces)+1 {
			// Header lines (2) plus one per piece after the first,
			// unless a piece itself holds a NUL-free newline-less
			// tail, which still prints one line.
			t.Fatalf("%d lines for %d pieces", lines, len(pieces))
		}
		for _, c := range Conns(table) {
			if !c.Client.IsValid() || !c.Virtual.IsValid() || !c.Destination.IsValid() {
				t.Fatalf("invalid endpoint in %+v", c)
			}
		}
	})
}
