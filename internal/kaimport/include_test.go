package kaimport

import (
	"fmt"
	"strings"
	"testing"
)

func TestIncludeNestedGlobAndBraces(t *testing.T) {
	opts := testOptions
	opts.Checks = false
	data, rep, err := ConvertWith("testdata/include/keepalived.conf", opts)
	if err != nil {
		t.Fatalf("%v: %v", err, rep.Findings)
	}
	cfg := mustParse(t, data)
	// conf.d/*.conf in lexical order; each instance's peers come from an
	// include inside its unicast_peer block, relative to conf.d.
	if len(cfg.Instances) != 2 || cfg.Instances[0].Name != "VI_WEB" || cfg.Instances[1].Name != "VI_MAIL" {
		t.Fatalf("instances = %+v", cfg.Instances)
	}
	for _, in := range cfg.Instances {
		if strings.Join(in.Unicast.Peers, ",") != "198.51.100.12,198.51.100.13" {
			t.Errorf("%s peers = %v", in.Name, in.Unicast.Peers)
		}
	}
	// services/{web,mail}.conf in brace order; the web real servers come from
	// a glob included inside the virtual_server block.
	if len(cfg.Services) != 2 || cfg.Services[0].Port != 80 || cfg.Services[1].Port != 25 {
		t.Fatalf("services = %+v", cfg.Services)
	}
	if rs := cfg.Services[0].RealServers; len(rs) != 2 || rs[0].Address != "198.51.100.21" || rs[1].Address != "198.51.100.22" {
		t.Errorf("web real servers = %+v", rs)
	}
	// Findings name the included file and its own line.
	if f := find(t, rep, "router_id"); f.Pos != (Pos{File: "testdata/include/global.conf", Line: 2}) {
		t.Errorf("router_id finding at %v", f.Pos)
	}
}

func TestIncludeCycle(t *testing.T) {
	_, rep, err := ConvertWith("testdata/cycle/keepalived.conf", testOptions)
	if err == nil {
		t.Fatal("a cycle converted")
	}
	f := find(t, rep, "include")
	want := "testdata/cycle/a.conf -> testdata/cycle/b.conf -> testdata/cycle/a.conf"
	if f.Level != Error || f.Pos != (Pos{File: "testdata/cycle/b.conf", Line: 1}) || !strings.Contains(f.Msg, want) {
		t.Errorf("finding = %v, want the cycle %s at b.conf:1", f, want)
	}
	// A file including itself directly is a cycle too.
	_, rep, err = convertFS(memFS{"/k/a.conf": "include a.conf\n"}, "/k/a.conf", testOptions)
	if err == nil || !strings.Contains(find(t, rep, "include").Msg, "cycle") {
		t.Errorf("self include: err=%v findings=%v", err, rep.Findings)
	}
}

func TestIncludeSameFileTwiceIsNotACycle(t *testing.T) {
	fs := memFS{
		"/k/keepalived.conf": "include a.conf\ninclude b.conf\n",
		"/k/a.conf":          "include common.conf\n",
		"/k/b.conf":          "include common.conf\n",
		"/k/common.conf":     "global_defs {\n router_id x\n}\n" + instance,
	}
	_, rep, err := convertFS(fs, "/k/keepalived.conf", testOptions)
	// The instance arrives twice, which director refuses as a duplicate;
	// what matters here is that no include error is reported.
	for _, f := range rep.Findings {
		if f.Keyword == "include" {
			t.Errorf("include finding for a diamond: %v", f)
		}
	}
	if err == nil {
		t.Error("a doubled instance converted")
	}
}

func TestIncludeMissing(t *testing.T) {
	for _, c := range []struct {
		line  string
		level Level
	}{
		{"include nothing.conf", Warning},
		{"include conf.d/*.conf", Warning},
		{"includea nothing.conf", Error},
	} {
		_, rep, _ := convertFS(memFS{"/k/keepalived.conf": c.line + "\n" + instance}, "/k/keepalived.conf", testOptions)
		kw, _, _ := strings.Cut(c.line, " ")
		if f := find(t, rep, kw); f.Level != c.level || f.Pos.Line != 1 || !strings.Contains(f.Msg, "no such file") {
			t.Errorf("%s: finding = %v, want a %v at line 1", c.line, f, c.level)
		}
	}
}

// TestIncludeFanOutIsBounded: each file includes the next level four times,
// which would be 4^8 files; the importer stops at maxFiles.
func TestIncludeFanOutIsBounded(t *testing.T) {
	fs := memFS{}
	for i := 0; i < 8; i++ {
		fs[fmt.Sprintf("/k/%d.conf", i)] = strings.Repeat(fmt.Sprintf("include %d.conf\n", i+1), 4)
	}
	fs["/k/8.conf"] = "global_defs {\n}\n"
	rep := &Report{}
	lx := &lexer{fsys: fs, rep: rep, order: map[Pos]int{}}
	lx.lexFile("/k/0.conf", Pos{})
	if lx.files > maxFiles || !strings.Contains(rep.Findings[len(rep.Findings)-1].Msg, "more than") {
		t.Errorf("read %d files; findings %v", lx.files, rep.Findings)
	}
}

func TestIncludeDepthIsBounded(t *testing.T) {
	fs := memFS{}
	for i := 0; i < 40; i++ {
		fs[fmt.Sprintf("/k/%d.conf", i)] = fmt.Sprintf("include %d.conf\n", i+1)
	}
	rep := &Report{}
	lx := &lexer{fsys: fs, rep: rep, order: map[Pos]int{}}
	lx.lexFile("/k/0.conf", Pos{})
	if rep.Count(Error) != 1 || !strings.Contains(rep.Findings[0].Msg, "nested more than") {
		t.Errorf("findings = %v, want one depth error", rep.Findings)
	}
}
