package ipvsadm

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// Values at and around each boundary of ipvsadm's print_largenum.
func TestAppendLargeNum(t *testing.T) {
	for _, tc := range []struct {
		v     uint64
		want  string
		exact string
	}{
		{0, "        0", "        0"},
		{12345678, " 12345678", " 12345678"},
		{99_999_999, " 99999999", " 99999999"},
		{100_000_000, "  100000K", " 100000000"},
		{123_456_789, "  123456K", " 123456789"},
		{999_999_999, "  999999K", " 999999999"},
		{1_000_000_000, "    1000M", " 1000000000"},
		{1_101_156_165, "    1101M", " 1101156165"},
		{99_999_999_999, "   99999M", " 99999999999"},
		{100_000_000_000, "     100G", " 100000000000"},
		{99_999_999_999_999, "   99999G", " 99999999999999"},
		{100_000_000_000_000, "     100T", " 100000000000000"},
		{1<<64 - 1, "18446744T", " 18446744073709551615"},
	} {
		if got := string(AppendLargeNum(nil, tc.v, false)); got != tc.want {
			t.Errorf("AppendLargeNum(%d) = %q, want %q", tc.v, got, tc.want)
		}
		if got := string(AppendLargeNum(nil, tc.v, true)); got != tc.exact {
			t.Errorf("AppendLargeNum(%d, exact) = %q, want %q", tc.v, got, tc.exact)
		}
	}
}

func testService() *Service {
	return &Service{
		Family: INet, Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80,
		Scheduler: "wlc", Netmask: "255.255.255.255",
		Stats: Stats{Conns: 1 << 33, InBytes: 5 << 40, InBPS: 150_000_000},
		Destinations: []Destination{{
			Family: INet, Address: netip.MustParseAddr("10.0.1.1"), Port: 80, Forward: Masq, Weight: 1,
			Stats: Stats{
				Conns: 1<<32 + 7, InPkts: 1<<40 + 300_000_000, InBytes: 1<<40 + 1,
				CPS: 1<<32 + 3, InBPS: 1<<32 + 200_000_000,
			},
		}},
	}
}

// ipvsadm parses a destination's 64-bit counters with its 32-bit parser:
// everything but the byte counters wraps at 2^32. Services are read right.
func TestStatsTruncation(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteService(&buf, testService(), Format{Stats: true}); err != nil {
		t.Fatal(err)
	}
	want := "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n" +
		"TCP  10.0.0.1:80                     8589M        0        0    5497G        0\n" +
		"  -> 10.0.1.1:80                         7  300000K        0    1099G        0\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := WriteService(&buf, testService(), Format{Rate: true}); err != nil {
		t.Fatal(err)
	}
	// The first three rate columns of a destination are never scaled.
	want = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n" +
		"  -> RemoteAddress:Port\n" +
		"TCP  10.0.0.1:80                         0        0        0  150000K        0\n" +
		"  -> 10.0.1.1:80                         3        0        0  200000K        0\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

func TestServiceLineQuirks(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  Service
		want string
	}{
		{
			// Scheduler flags the scheduler does not name print as "()".
			"sh with flag-3 only",
			Service{Family: INet, Protocol: TCP, Address: netip.MustParseAddr("1.2.3.4"), Port: 1, Scheduler: "sh", Flags: FlagSched3},
			"TCP  1.2.3.4:1 sh ()\n",
		},
		{
			"fwmark above 2^31 prints negative",
			Service{Family: INet6, FWMark: 1 << 31, Scheduler: "rr"},
			"FWM  -2147483648 IPv6 rr\n",
		},
		{
			"persistent default mask is not printed, pe is",
			Service{Family: INet6, Protocol: UDP, Address: netip.MustParseAddr("::1"), Port: 5060, Scheduler: "rr",
				Flags: FlagPersistent | FlagOnePacket, Timeout: 60, Netmask: "128", PE: "sip"},
			"UDP  [::1]:5060 rr persistent 60 pe sip ops\n",
		},
		{
			"pe without persistence is not listed",
			Service{Family: INet, Protocol: 99, Address: netip.MustParseAddr("1.2.3.4"), Port: 1, Scheduler: "rr", PE: "sip"},
			"?    1.2.3.4:1 rr\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendService(nil, &tc.svc, Format{}))
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuleForm(t *testing.T) {
	svc := Service{
		Family: INet, Protocol: SCTP, Address: netip.MustParseAddr("1.2.3.4"), Port: 9, Scheduler: "mh",
		Flags: FlagPersistent | FlagSched1 | FlagSched2, Timeout: 30, Netmask: "255.255.0.0", PE: "sip",
		Destinations: []Destination{
			{Family: INet, Address: netip.MustParseAddr("5.6.7.8"), Port: 9, Forward: Tunnel, Weight: 2, TunnelType: GUE, TunnelPort: 6080, TunnelFlags: 2},
			{Family: INet, Address: netip.MustParseAddr("5.6.7.9"), Port: 9, Forward: Bypass, Weight: 3},
		},
	}
	want := "-A --sctp-service 1.2.3.4:9 -s mh -p 30 -M 255.255.0.0 --pe sip -b mh-fallback,mh-port\n" +
		"-a --sctp-service 1.2.3.4:9 -r 5.6.7.8:9 -i -w 2 --tun-type gue --tun-port 6080 --tun-remcsum\n" +
		"-a --sctp-service 1.2.3.4:9 -r 5.6.7.9:9 (null) -w 3\n"
	if got := string(appendService(nil, &svc, Format{Rule: true})); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestDestForms(t *testing.T) {
	d := Destination{Family: INet6, Address: netip.MustParseAddr("2001:db8::1"), Port: 443, Forward: Bypass,
		Weight: 1<<32 - 1, UpperThreshold: 10, LowerThreshold: 5, ActiveConns: 3, InactiveConns: 4, PersistConns: 6}
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{Format{}, "  -> [2001:db8::1]:443            (null)  -1     3          4         \n"},
		{Format{Thresholds: true}, "  -> [2001:db8::1]:443            10         5          3          4         \n"},
		{Format{PersistentConn: true}, "  -> [2001:db8::1]:443            4294967295 6           3          4         \n"},
		{Format{TunInfo: true}, "  -> [2001:db8::1]:443            (null)  n/a           -1     3          4         \n"},
	} {
		if got := string(appendDest(nil, "x", &d, tc.f)); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.f, got, tc.want)
		}
	}
}

// glibc's inet_ntop, not Go's: IPv4-compatible addresses end in a dotted
// quad, single zero groups are not compressed, the first longest run is.
func TestAppendIPv6(t *testing.T) {
	for in, want := range map[string]string{
		"::":                      "::",
		"::1":                     "::1",
		"1::":                     "1::",
		"::102:304":               "::1.2.3.4",
		"::ffff:10.9.0.2":         "::ffff:10.9.0.2",
		"::1:0:0:0":               "::1:0:0:0",
		"2001:db8:0:1:0:0:0:1":    "2001:db8:0:1::1",
		"2001:0:0:1:0:0:1:1":      "2001::1:0:0:1:1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2:3:4:5:6",
		"2001:db8::1234:0:0:def0": "2001:db8::1234:0:0:def0",
		"fe80::":                  "fe80::",
		"0:1:0:1:0:1:0:1":         "0:1:0:1:0:1:0:1",
		"::ffff:0:1":              "::ffff:0.0.0.1",
		"::fffe:1.2.3.4":          "::fffe:102:304",
	} {
		got := string(appendIPv6(nil, netip.MustParseAddr(in).As16()))
		if got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestWriteDaemons(t *testing.T) {
	var buf bytes.Buffer
	err := WriteDaemons(&buf, []Daemon{
		{State: 0, Interface: "ignored"},
		{State: Master | Backup, Interface: "eth0", SyncID: 255},
		{State: Backup, Interface: "eth1", SyncID: 1, Group: netip.MustParseAddr("ff02::1:2"), Port: 8848},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=eth0, syncid=255)\n" +
		"backup sync daemon (mcast=eth1, syncid=1, group=ff02::1:2, port=8848)\n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}
}

func TestWriteTimeouts(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTimeouts(&buf, Timeouts{TCP: 900, TCPFin: 120, UDP: 300}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "Timeout (tcp tcpfin udp): 900 120 300\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCompareServicesWraps(t *testing.T) {
	a := &Service{Family: INet, Protocol: TCP, Address: netip.MustParseAddr("200.0.0.1")}
	b := &Service{Family: INet, Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1")}
	if compareServices(a, b) >= 0 {
		t.Error("200.0.0.1 should sort before 10.0.0.1, as ipvsadm's wrapped subtraction has it")
	}
	f1 := &Service{Family: INet, FWMark: 3_000_000_000}
	f2 := &Service{Family: INet, FWMark: 1}
	if compareServices(f1, f2) >= 0 {
		t.Error("fwmark 3000000000 should sort before fwmark 1")
	}
	if compareServices(f2, a) <= 0 {
		t.Error("fwmark services sort after plain ones")
	}
}

func TestMergeSortMatchesMsortSplit(t *testing.T) {
	// A cyclic order (a<b, b<c, c<a) comes out as glibc's msort leaves
	// it: split [a] [b c], sort [b c] -> [b c], merge a with b: a<b -> a,
	// then b, c.
	rank := map[string]int{"a": 0, "b": 1, "c": 2}
	cyc := func(x, y string) int {
		d := (rank[y] - rank[x] + 3) % 3
		if d == 1 {
			return -1
		}
		if d == 2 {
			return 1
		}
		return 0
	}
	s := []string{"c", "a", "b"}
	mergeSort(s, cyc)
	// [c] | [a b] -> [a b]; merge: c vs a: c<a -> c; then a, b.
	if got := strings.Join(s, ""); got != "cab" {
		t.Errorf("got %s, want cab", got)
	}
}
