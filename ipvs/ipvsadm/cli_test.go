package ipvsadm

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func goldenSnapshot(t *testing.T, name string) *Snapshot {
	t.Helper()
	return loadCaseSnapshot(t, filepath.Join("testdata/golden", name))
}

func runArgs(t *testing.T, src Source, args ...string) (rc int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	rc = run(args, src, &out, &errOut)
	return rc, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	src := SnapshotSource{&Snapshot{}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "--timeout"}, "The option 'timeout' conflicts with the 'connection' option in the 'list' command"},
		{[]string{"-Ln", "-t", "1.2.3.4:80", "--daemon"}, "The option 'daemon' conflicts with the 'service-address' option"},
		{[]string{"-L", "-c", "--stats"}, "options conflicts in the list command"},
		{[]string{"--daemon", "--persistent-conn"}, "options conflicts in the list command"},
		{[]string{"-n", "-Ln"}, "multiple 'numeric' options specified"},
		{[]string{"-S", "--stats"}, "Illegal 'stats' option with the 'save' command"},
		{[]string{"-S", "--json"}, "Illegal 'json' option with the 'save' command"},
		{[]string{"-L", "-S"}, "multiple commands specified"},
		{[]string{"-A", "-t", "1.2.3.4:80"}, "-A changes IPVS"},
		{[]string{"--zero"}, "--zero changes IPVS"},
		{[]string{"-Lt"}, "-t: missing argument"},
		{[]string{"-t", "123"}, "illegal virtual server address[:port] specified"},
		{[]string{"-t", "[::1]"}, "illegal virtual server address[:port] specified"},
		{[]string{"-u", "1.2.3.4:65536"}, "illegal virtual server address[:port] specified"},
		{[]string{"-f", "0"}, "invalid fwmark value `0' specified"},
		{[]string{"-f", "4294967296"}, "invalid fwmark value `4294967296' specified"},
		{[]string{"-6", "-f", "1"}, "-6 used before -f"},
		{[]string{"--bogus"}, "--bogus: unknown option"},
		{[]string{"-Lq"}, "-q: unknown option"},
		{[]string{"-L", "stray"}, "unexpected argument stray"},
		{[]string{"--stats=1"}, "does not take an argument"},
		{[]string{"--snapshot", "--stats"}, "--snapshot takes no options but -n and -c"},
	} {
		rc, stdout, stderr := runArgs(t, src, tc.args...)
		if rc != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: rc %d, stdout %q, stderr %q; want rc 2 and %q", tc.args, rc, stdout, stderr, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	rc, stdout, _ := runArgs(t, SnapshotSource{&Snapshot{}}, "--help")
	if rc != 0 || !strings.Contains(stdout, "director status") || !strings.Contains(stdout, "--persistent-conn") {
		t.Errorf("rc %d, help %q", rc, stdout)
	}
}

func TestParseService(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fam  Family
		addr string
		port uint16
	}{
		{"10.0.0.1:80", INet, "10.0.0.1", 80},
		{"10.0.0.1", INet, "10.0.0.1", 0},
		{"[2001:db8::1]:443", INet6, "2001:db8::1", 443},
		{"2001:db8::1", INet6, "2001:db8::1", 0},
		{"[::ffff:1.2.3.4]:1", INet6, "::ffff:1.2.3.4", 1},
		// ipvsadm takes the port after the last ':' inside the brackets
		// for IPv4, so this is port 0.
		{"[1.2.3.4]:80", INet, "1.2.3.4", 0},
		// inet_aton forms.
		{"10.1:8080", INet, "10.0.0.1", 8080},
		{"0x0a000001:1", INet, "10.0.0.1", 1},
		{"012.1.1.1:1", INet, "10.1.1.1", 1},
		{"1.2.3.4:https", INet, "1.2.3.4", 443},
	} {
		sel, ok := parseService(tc.in, TCP)
		if !ok {
			t.Errorf("%s: rejected", tc.in)
			continue
		}
		if sel.fam != tc.fam || sel.addr != netip.MustParseAddr(tc.addr) || sel.port != tc.port {
			t.Errorf("%s: got %v %v %d", tc.in, sel.fam, sel.addr, sel.port)
		}
	}
	for _, bad := range []string{"", "80", "[::1]", "[::1]80", "1.2.3.4:", "1.2.3.4:-1", "256.1.1.1:1", "1.2.3.4.5:1", "fe80::1%eth0"} {
		if _, ok := parseService(bad, TCP); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSelectService(t *testing.T) {
	src := SnapshotSource{goldenSnapshot(t, "table")}
	for _, tc := range []struct {
		args  []string
		first string
	}{
		{[]string{"-Ln", "-t", "10.7.0.1:443"}, "TCP  10.7.0.1:443 wlc persistent 300 mask 255.255.255.0\n"},
		{[]string{"-l", "--udp-service=10.7.0.1:5060"}, "UDP  10.7.0.1:5060 rr persistent 60 pe sip\n"},
		{[]string{"-Lnf", "42", "-6"}, "FWM  42 IPv6 sed persistent 60 mask 64\n"},
		{[]string{"-Ln", "--fwmark-service", "3000000000"}, "FWM  -1294967296 wlc\n"},
		{[]string{"-t", "[2001:db8:7:0:1234:5678:9abc:def0]:65535"}, "TCP  [2001:db8:7:0:1234:5678:9abc:def0]:65535 dh\n"},
	} {
		rc, stdout, stderr := runArgs(t, src, tc.args...)
		lines := strings.SplitAfter(stdout, "\n")
		if rc != 0 || len(lines) < 3 || lines[2] != tc.first {
			t.Errorf("%q: rc %d stderr %q output\n%s", tc.args, rc, stderr, stdout)
		}
	}
	rc, stdout, stderr := runArgs(t, src, "-Ln", "-f", "42") // the IPv4 mark 42 does not exist
	if rc != 1 || stdout != "" || stderr != "No such service\n" {
		t.Errorf("missing service: rc %d stdout %q stderr %q", rc, stdout, stderr)
	}
}

func TestJSON(t *testing.T) {
	src := SnapshotSource{goldenSnapshot(t, "table")}

	rc, stdout, stderr := runArgs(t, src, "-Ln", "--json")
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, stderr)
	}
	var list struct {
		Version  string
		Services []Service
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	if list.Version != "1.2.1" || len(list.Services) != len(src.Snapshot.Services) {
		t.Fatalf("version %q, %d services", list.Version, len(list.Services))
	}
	// Same order as the table: the first service line of -Ln is the
	// negative fwmark.
	if first := list.Services[0]; first.FWMark != 3_000_000_000 || first.Family != INet {
		t.Errorf("first service %+v", first)
	}

	rc, stdout, _ = runArgs(t, src, "--json", "-t", "10.7.0.1:80", "--nosort")
	var one struct{ Services []map[string]any }
	if err := json.Unmarshal([]byte(stdout), &one); rc != 0 || err != nil || len(one.Services) != 1 {
		t.Fatalf("rc %d err %v: %s", rc, err, stdout)
	}
	s := one.Services[0]
	if s["protocol"] != "tcp" || s["family"] != "inet" || s["address"] != "10.7.0.1" || s["scheduler"] != "rr" {
		t.Errorf("service JSON %v", s)
	}
	var d0 map[string]any
	for _, d := range s["destinations"].([]any) {
		if d := d.(map[string]any); d["address"] == "10.8.0.2" {
			d0 = d
		}
	}
	if d0 == nil || d0["forward"] != "masq" || d0["port"].(float64) != 8080 {
		t.Fatalf("destination JSON %v", s["destinations"])
	}
	stats := d0["stats"].(map[string]any)
	if stats["in_bytes"].(float64) < 1e9 {
		t.Errorf("exact byte counter expected, got %v", stats["in_bytes"])
	}

	for args, key := range map[string]string{"--timeout --json": "timeouts", "--daemon --json": "daemons", "-c --json": "connections"} {
		rc, stdout, stderr := runArgs(t, SnapshotSource{goldenSnapshot(t, "daemons")}, strings.Fields(args)...)
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stdout), &m); rc != 0 || err != nil || m[key] == nil {
			t.Errorf("%s: rc %d err %v stderr %q: %s", args, rc, err, stderr, stdout)
		}
	}
}

// Every golden snapshot survives a JSON round trip unchanged: the enum
// names decode to the numbers they came from.
func TestSnapshotJSONRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*/snapshot.json")
	if len(files) == 0 {
		t.Fatal("no snapshots")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var out bytes.Buffer
		if err := writeJSON(&out, &s); err != nil {
			t.Fatal(err)
		}
		if out.String() != string(b) {
			t.Errorf("%s: round trip changed the document", f)
		}
	}
	var f Family
	if err := f.UnmarshalText([]byte("7")); err != nil || f != 7 {
		t.Errorf("numeric family: %v %v", f, err)
	}
	if err := f.UnmarshalText([]byte("inet9")); err == nil {
		t.Error("unknown family name accepted")
	}
}

func TestSnapshotOption(t *testing.T) {
	snap := goldenSnapshot(t, "conns-mixed")
	snap.Services = goldenSnapshot(t, "table").Services
	rc, stdout, _ := runArgs(t, SnapshotSource{snap}, "--snapshot", "-c")
	var got Snapshot
	if err := json.Unmarshal([]byte(stdout), &got); rc != 0 || err != nil {
		t.Fatalf("rc %d err %v", rc, err)
	}
	if got.ConnTable != snap.ConnTable || len(got.Services) != len(snap.Services) {
		t.Error("snapshot lost data")
	}
	_, stdout, _ = runArgs(t, SnapshotSource{snap}, "--snapshot")
	if strings.Contains(stdout, "conn_table") {
		t.Error("connection table included without -c")
	}
}

// KernelSource reads connections from a file and nothing else for -c, so
// this runs without IPVS in the kernel.
func TestKernelSourceConnFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "ip_vs_conn")
	table := readFile(t, "testdata/golden/conns-mixed/conn_table.txt")
	if err := os.WriteFile(name, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, stdout, stderr := runArgs(t, KernelSource{ConnFile: name}, "-Lnc", "--persistent-conn")
	want := readFile(t, "testdata/golden/conns-mixed/02.out")
	if rc != 0 || stdout != want {
		t.Errorf("rc %d stderr %q\n%s", rc, stderr, stdout)
	}
	rc, _, stderr = runArgs(t, KernelSource{ConnFile: filepath.Join(dir, "missing")}, "-c")
	if rc != 1 || !strings.Contains(stderr, "missing") {
		t.Errorf("missing file: rc %d stderr %q", rc, stderr)
	}
}
