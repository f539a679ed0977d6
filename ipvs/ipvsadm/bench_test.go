package ipvsadm

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// bigSnapshot is 1,000 services with 10 destinations each, in a scrambled
// order so that sorting has work to do.
func bigSnapshot() *Snapshot {
	s := &Snapshot{Version: "1.2.1", ConnTableSize: 4096}
	for i := range 1000 {
		k := (i * 7919) % 1000
		svc := Service{
			Family: INet, Protocol: TCP, Port: uint16(80 + k%3), Scheduler: "wlc",
			Address: netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 1}), Netmask: "255.255.255.255",
			Stats: Stats{Conns: uint64(k) * 1e6, InBytes: uint64(k) * 1e9},
		}
		if k%5 == 0 {
			svc.Flags, svc.Timeout = FlagPersistent, 300
		}
		for j := range 10 {
			svc.Destinations = append(svc.Destinations, Destination{
				Family: INet, Address: netip.AddrFrom4([4]byte{192, 168, byte(k), byte(10 - j)}), Port: 8080,
				Forward: Route, Weight: uint32(j), ActiveConns: uint32(j * 3),
				Stats: Stats{Conns: uint64(j) * 1e5, InBytes: uint64(j) * 1e8},
			})
		}
		s.Services = append(s.Services, svc)
	}
	return s
}

func TestBigSnapshotSorted(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteList(&buf, bigSnapshot(), Format{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if len(lines) != 3+1000*11+1 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[3] != "TCP  10.0.0.1:80 wlc persistent 300" || lines[4] != "  -> 192.168.0.1:8080             Route   9      27         0         " {
		t.Errorf("first service:\n%s\n%s", lines[3], lines[4])
	}
}

func BenchmarkWriteList(b *testing.B) {
	s := bigSnapshot()
	for _, f := range []struct {
		name string
		f    Format
	}{{"list", Format{}}, {"stats", Format{Stats: true}}, {"rate-exact", Format{Rate: true, Exact: true}}, {"save", Format{Rule: true}}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteList(io.Discard, s, f.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJSON(b *testing.B) {
	src := SnapshotSource{bigSnapshot()}
	b.ReportAllocs()
	for b.Loop() {
		if rc := run([]string{"-Ln", "--json"}, src, io.Discard, io.Discard); rc != 0 {
			b.Fatal(rc)
		}
	}
}
