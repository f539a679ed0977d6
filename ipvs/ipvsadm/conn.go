package ipvsadm

import (
	"errors"
	"io"
	"net/netip"
	"strconv"
)

// ConnFile is where the kernel lists IPVS connections.
const ConnFile = "/proc/net/ip_vs_conn"

// ipvsadm reads the connection file with fgets into a 256-byte buffer, so
// it sees at most 255 bytes at a time: the rest of a longer line is parsed
// as a line of its own.
const fgetsMax = 255

// errConnInput is returned where ipvsadm exits with status 1 and no
// message: a blank piece of input, on which its sscanf hits end of input.
var errConnInput = errors.New("ipvsadm: blank line in connection table")

// ErrConnEmpty means the connection file did not even have a header line.
var ErrConnEmpty = errors.New("unexpected input from " + ConnFile)

// connLine is one fgets-sized piece of the file and what ipvsadm's sscanf
// takes out of it.
type connLine struct {
	n        int // number of fields converted, as sscanf counts
	protocol string
	caddr    string
	cport    uint16
	vaddr    string
	vport    uint16
	daddr    string
	dport    uint16
	state    string
	expires  uint32
	peName   string
	peData   string
}

// WriteConns prints the connection table text like `ipvsadm -L -n -c`,
// with the pe name and data columns when persistent is set
// (--persistent-conn). Output already written stays written on error, as
// ipvsadm's does.
func WriteConns(w io.Writer, table []byte, persistent bool) error {
	pieces := fgetsSplit(table)
	if len(pieces) == 0 {
		return ErrConnEmpty
	}
	var b []byte
	b = append(b, "IPVS connection entries\n"...)
	if persistent {
		b = append(b, "pro expire state       source             virtual            destination        pe name          pe_data\n"...)
	} else {
		b = append(b, "pro expire state       source             virtual            destination\n"...)
	}
	for _, p := range pieces[1:] {
		l, err := ParseConnLine(p)
		if err != nil {
			_, _ = w.Write(b)
			return err
		}
		b = appendConn(b, &l, persistent)
	}
	_, err := w.Write(b)
	return err
}

func appendConn(b []byte, l *connLine, persistent bool) []byte {
	cname, vname, dname := l.names()
	var exp [24]byte
	e := appendTwoDigits(exp[:0], int32(l.expires/60))
	e = append(e, ':')
	e = appendTwoDigits(e, int32(l.expires%60))

	b = appendPadRight(b, l.protocol, 3)
	b = append(b, ' ')
	b = appendPadRight(b, e, 6)
	b = append(b, ' ')
	b = appendPadRight(b, l.state, 11)
	b = append(b, ' ')
	b = appendPadRight(b, cname, 18)
	b = append(b, ' ')
	b = appendPadRight(b, vname, 18)
	b = append(b, ' ')
	if persistent && l.n == 11 {
		b = appendPadRight(b, dname, 16)
		b = append(b, ' ')
		b = appendPadRight(b, l.peName, 18)
		b = append(b, ' ')
		b = append(b, l.peData...)
	} else {
		b = append(b, dname...)
	}
	return append(b, '\n')
}

// appendTwoDigits is printf's %02d.
func appendTwoDigits(b []byte, v int32) []byte {
	if v >= 0 && v < 10 {
		b = append(b, '0')
	} else if v < 0 && v > -10 {
		return append(b, '-', byte('0'-v))
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// names renders the three endpoints: the client's form decides the family
// of the virtual address, the destination's form its own family. A plain
// hex word is an IPv4 address, as the kernel writes them.
func (l *connLine) names() (c, v, d []byte) {
	cfam := INet
	var ca, va [16]byte
	if a, ok := parseIPv6(l.caddr); ok {
		cfam, ca = INet6, a
		va, _ = parseIPv6(l.vaddr)
	} else if a, ok := parseIPv4(l.caddr); ok {
		ca = a
		va, _ = parseIPv4(l.vaddr)
	} else {
		ca, va = hexIPv4(l.caddr), hexIPv4(l.vaddr)
	}
	dfam := INet
	da, ok := parseIPv6(l.daddr)
	if ok {
		dfam = INet6
	} else if da, ok = parseIPv4(l.daddr); !ok {
		da = hexIPv4(l.daddr)
	}
	return appendRawAddrPort(nil, cfam, ca, l.cport),
		appendRawAddrPort(nil, cfam, va, l.vport),
		appendRawAddrPort(nil, dfam, da, l.dport)
}

func appendRawAddrPort(b []byte, fam Family, a [16]byte, port uint16) []byte {
	if fam == INet {
		b = appendIPv4(b, a[:4])
	} else {
		b = append(b, '[')
		b = appendIPv6(b, a)
		b = append(b, ']')
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(port), 10)
}

// parseIPv6 accepts what inet_pton(AF_INET6) accepts, which includes the
// kernel's uncompressed %pI6 form; zones are not part of it.
func parseIPv6(s string) ([16]byte, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			return [16]byte{}, false
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return [16]byte{}, false
	}
	return a.As16(), true
}

// parseIPv4 accepts inet_pton(AF_INET)'s strict dotted quad: four decimal
// parts, no leading zeros beyond a lone 0.
func parseIPv4(s string) ([16]byte, bool) {
	var r [16]byte
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return r, false
	}
	v4 := a.As4()
	copy(r[:], v4[:])
	return r, true
}

// hexIPv4 is htonl(strtoul(s, NULL, 16)) truncated to 32 bits.
func hexIPv4(s string) [16]byte {
	v, _, _ := strtoul(s, 16)
	var r [16]byte
	r[0], r[1], r[2], r[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return r
}

// Conns parses a connection table into entries, skipping pieces that
// ipvsadm could not have printed sensibly (fewer than nine fields).
func Conns(table []byte) []Conn {
	pieces := fgetsSplit(table)
	if len(pieces) == 0 {
		return nil
	}
	var out []Conn
	for _, p := range pieces[1:] {
		l, err := ParseConnLine(p)
		if err != nil || l.n < 9 {
			continue
		}
		c := Conn{
			Protocol: l.protocol, State: l.state, Expires: l.expires,
			PEName: l.peName, PEData: l.peData,
		}
		cn, vn, dn := l.names()
		c.Client, _ = netip.ParseAddrPort(string(cn))
		c.Virtual, _ = netip.ParseAddrPort(string(vn))
		c.Destination, _ = netip.ParseAddrPort(string(dn))
		out = append(out, c)
	}
	return out
}

// fgetsSplit cuts text into the pieces successive fgets calls with a
// 256-byte buffer return.
func fgetsSplit(text []byte) [][]byte {
	var out [][]byte
	for len(text) > 0 {
		n := 0
		for n < len(text) && n < fgetsMax {
			n++
			if text[n-1] == '\n' {
				break
			}
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// ParseConnLine reads one piece of the connection table the way ipvsadm's
// sscanf("%s %s %hX %s %hX %s %hX %s %d %s %s") does. Fields sscanf does
// not reach stay zero (ipvsadm leaves them uninitialised).
func ParseConnLine(piece []byte) (connLine, error) {
	// sscanf sees a C string: it ends at the first NUL.
	for i, c := range piece {
		if c == 0 {
			piece = piece[:i]
			break
		}
	}
	sc := scanner{s: piece}
	var l connLine
	str := func(dst *string) bool {
		v, ok := sc.word()
		if ok {
			*dst = v
			l.n++
		}
		return ok
	}
	hex16 := func(dst *uint16) bool {
		v, ok := sc.number(16)
		if ok {
			*dst = uint16(v)
			l.n++
		}
		return ok
	}
	if sc.atEnd() {
		return l, errConnInput
	}
	_ = str(&l.protocol) && str(&l.caddr) && hex16(&l.cport) &&
		str(&l.vaddr) && hex16(&l.vport) && str(&l.daddr) && hex16(&l.dport) &&
		str(&l.state) && sc.decimal(&l.expires, &l.n) && str(&l.peName) && str(&l.peData)
	return l, nil
}

// scanner implements the few scanf conversions ipvsadm uses.
type scanner struct {
	s []byte
	i int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.s) && isSpace(sc.s[sc.i]) {
		sc.i++
	}
}

// atEnd reports whether only white space is left, where sscanf returns EOF.
func (sc *scanner) atEnd() bool {
	sc.skipSpace()
	return sc.i >= len(sc.s)
}

// word is %s.
func (sc *scanner) word() (string, bool) {
	sc.skipSpace()
	start := sc.i
	for sc.i < len(sc.s) && !isSpace(sc.s[sc.i]) {
		sc.i++
	}
	return string(sc.s[start:sc.i]), sc.i > start
}

// number is %X (base 16) or %d (base 10): an optional sign, for base 16
// an optional 0x, then digits; negative values wrap as strtoul's do.
func (sc *scanner) number(base uint64) (uint64, bool) {
	sc.skipSpace()
	v, n, ok := strtoul(string(sc.s[sc.i:]), base)
	sc.i += n
	return v, ok
}

// decimal is %d stored into an unsigned int.
func (sc *scanner) decimal(dst *uint32, count *int) bool {
	sc.skipSpace()
	mag, neg, overflow, n := parseDigits(string(sc.s[sc.i:]), 10)
	if n == 0 {
		return false
	}
	sc.i += n
	// %d converts with strtol (saturating at the long range) and then
	// casts to int.
	var v int64
	switch {
	case neg && (overflow || mag > 1<<63):
		v = -1 << 63
	case neg:
		v = -int64(mag)
	case overflow || mag > 1<<63-1:
		v = 1<<63 - 1
	default:
		v = int64(mag)
	}
	*dst = uint32(int32(v))
	*count++
	return true
}

// strtoul parses like C's strtoul with base 10 or 16: the value, the bytes
// consumed and whether any digit was read. Overflow saturates; a leading
// '-' negates modulo 2^64.
func strtoul(s string, base uint64) (uint64, int, bool) {
	mag, neg, overflow, n := parseDigits(s, base)
	switch {
	case n == 0:
		return 0, 0, false
	case overflow:
		return ^uint64(0), n, true
	case neg:
		return -mag, n, true
	}
	return mag, n, true
}

// parseDigits reads optional white space and sign, for base 16 an optional
// 0x prefix, then digits. n is 0 when there were no digits.
func parseDigits(s string, base uint64) (mag uint64, neg, overflow bool, n int) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 16 && i+2 < len(s) && s[i] == '0' && s[i+1]|0x20 == 'x' && hexDigit(s[i+2]) >= 0 {
		i += 2
	}
	start := i
	for i < len(s) {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if mag > (^uint64(0)-uint64(d))/base {
			overflow = true
		}
		mag = mag*base + uint64(d)
		i++
	}
	if i == start {
		return 0, false, false, 0
	}
	return mag, neg, overflow, i
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
