package vip

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestSetRoutesAndRules(t *testing.T) {
	l := newLab(t, labOptions{})
	routes := []Route{
		{To: netip.MustParsePrefix("192.168.50.0/24"), Via: netip.MustParseAddr("10.0.0.2")},
		{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.0.2"), Table: 100},
		// src is the VIP: only possible once the address is there.
		{To: netip.MustParsePrefix("192.168.60.0/24"), Dev: dutIf, Src: vip4.Addr(), Metric: 50},
		{To: netip.MustParsePrefix("2001:db8:50::/48"), Via: netip.MustParseAddr("2001:db8::2")},
	}
	rules := []Rule{
		{From: netip.MustParsePrefix("10.0.0.100/32"), Table: 100, Priority: 1000},
		{To: netip.MustParsePrefix("192.168.70.0/24"), Table: 100, Priority: 1001},
		{From: netip.MustParsePrefix("2001:db8::100/128"), Table: 100, Priority: 1002},
	}
	s, err := NewSet(Config{Interface: dutIf, Addresses: []netip.Prefix{vip4, vip6}, Routes: routes, Rules: rules, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	present := func() bool {
		t.Helper()
		var ok bool
		if err := l.inDut(func() (err error) { ok, err = s.Present(ctx); return }); err != nil {
			t.Fatalf("Present: %v", err)
		}
		return ok
	}
	if present() {
		t.Fatal("Present before Take")
	}
	for i := range 2 { // the second Take finds everything there already
		if err := l.inDut(func() error { return s.Take(ctx) }); err != nil {
			t.Fatalf("Take #%d: %v", i+1, err)
		}
	}
	want := []string{
		"192.168.50.0/24 via 10.0.0.2 dev " + dutIf,
		"default via 10.0.0.2 dev " + dutIf,
		"192.168.60.0/24 dev " + dutIf + " scope link src 10.0.0.100 metric 50",
		"2001:db8:50::/48 via 2001:db8::2 dev " + dutIf,
	}
	got := l.ip("-n", l.dutName, "route", "show", "table", "all") + l.ip("-n", l.dutName, "-6", "route", "show", "table", "all")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("route %q missing after Take:\n%s", w, got)
		}
	}
	if !strings.Contains(l.ip("-n", l.dutName, "route", "show", "table", "100"), "default via 10.0.0.2") {
		t.Error("default route not in table 100")
	}
	gotRules := l.ip("-n", l.dutName, "rule", "show") + l.ip("-n", l.dutName, "-6", "rule", "show")
	for _, w := range []string{"1000:\tfrom 10.0.0.100 lookup 100", "1001:\tfrom all to 192.168.70.0/24 lookup 100", "1002:\tfrom 2001:db8::100 lookup 100"} {
		if !strings.Contains(gotRules, w) {
			t.Errorf("rule %q missing after Take:\n%s", w, gotRules)
		}
	}
	if !present() {
		t.Error("not Present after Take")
	}

	// Someone deletes a route: no longer Present, and Take puts it back.
	l.ip("-n", l.dutName, "route", "del", "192.168.50.0/24")
	if present() {
		t.Error("Present with a route missing")
	}
	if err := l.inDut(func() error { return s.Take(ctx) }); err != nil {
		t.Fatal(err)
	}
	if !present() {
		t.Error("not Present after the repairing Take")
	}

	for i := range 2 { // the second Release finds nothing to remove
		if err := l.inDut(func() error { return s.Release(ctx) }); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
	}
	got = l.ip("-n", l.dutName, "route", "show", "table", "all") + l.ip("-n", l.dutName, "-6", "route", "show", "table", "all")
	for _, w := range []string{"192.168.50.0/24", "192.168.60.0/24", "2001:db8:50::/48", "table 100"} {
		if strings.Contains(got, w) {
			t.Errorf("route %q left after Release:\n%s", w, got)
		}
	}
	gotRules = l.ip("-n", l.dutName, "rule", "show") + l.ip("-n", l.dutName, "-6", "rule", "show")
	if strings.Contains(gotRules, "lookup 100") {
		t.Errorf("rules left after Release:\n%s", gotRules)
	}
	if present() {
		t.Error("Present after Release")
	}
}

func TestNewSetChecksRouting(t *testing.T) {
	to := netip.MustParsePrefix("192.168.50.0/24")
	for name, cfg := range map[string]Config{
		"no destination":   {Routes: []Route{{Dev: dutIf}}},
		"neither via, dev": {Routes: []Route{{To: to}}},
		"mixed via":        {Routes: []Route{{To: to, Via: netip.MustParseAddr("2001:db8::1")}}},
		"mixed src":        {Routes: []Route{{To: to, Dev: dutIf, Src: netip.MustParseAddr("2001:db8::1")}}},
		"bad dev":          {Routes: []Route{{To: to, Dev: "a/b"}}},
		"rule no table":    {Rules: []Rule{{From: to}}},
		"rule mixed":       {Rules: []Rule{{From: to, To: netip.MustParsePrefix("2001:db8::/64"), Table: 1}}},
	} {
		cfg.Interface = dutIf
		if _, err := NewSet(cfg); err == nil {
			t.Errorf("%s: NewSet accepted %+v", name, cfg)
		}
	}
	if _, err := NewLocal(Config{Interface: dutIf, Routes: []Route{{To: to, Dev: dutIf}}}); err == nil {
		t.Error("NewLocal accepted routes")
	}
}
