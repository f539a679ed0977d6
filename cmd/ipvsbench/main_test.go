package main

import (
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/dataplane"
)

func TestRulesForIpvsadm(t *testing.T) {
	got := rules(table(2, 2, 3))
	want := `-A -t 10.1.0.0:80 -s wrr
-a -t 10.1.0.0:80 -r 10.2.0.1:80 -g -w 3
-a -t 10.1.0.0:80 -r 10.2.0.2:80 -g -w 3
-A -t 10.1.0.1:80 -s wrr
-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 3
-a -t 10.1.0.1:80 -r 10.2.0.2:80 -g -w 3
`
	if got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}
}

func TestVerify(t *testing.T) {
	want := table(3, 4, 1)
	if got := verify(table(3, 4, 1), want); got != "ok" {
		t.Errorf("same table: %s", got)
	}
	other := table(3, 4, 1)
	other[1].Destinations[2].Weight = 2
	if got := verify(other, want); !strings.Contains(got, "10.2.0.3:80/Route/2") {
		t.Errorf("weight difference: %s", got)
	}
	if got := verify(table(2, 4, 1), want); got != "2 services in the kernel, want 3" {
		t.Errorf("missing service: %s", got)
	}
}

func TestStats(t *testing.T) {
	s := statsOf([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if s.N != 3 || s.Min != 1 || s.Median != 2 || s.Max != 3 {
		t.Errorf("%+v", s)
	}
}

// The dataplane measurement programs the same table as the others.
func TestBenchConfigIsTheTable(t *testing.T) {
	cfg, err := config.Parse("bench.yaml", []byte(benchConfig(3, 4, "/run/x/owned.json")))
	if err != nil {
		t.Fatal(err)
	}
	got := dataplane.Services(cfg)
	if v := verify(got, table(3, 4, 1)); v != "ok" {
		t.Errorf("benchConfig's services differ from table: %s", v)
	}
}
