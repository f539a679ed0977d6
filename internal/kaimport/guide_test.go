package kaimport

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGuideKeywords holds README.md's "Every keepalived keyword" tables to
// the importer: every keyword the importer knows is listed in its block,
// every keyword listed in a block the importer reads is one it knows, and
// every row that says carried or differently is converted here (a carried
// one with no finding about it): the guide may not claim more than the
// importer does.
func TestGuideKeywords(t *testing.T) {
	rows := readGuide(t, "../../README.md")
	byTable := map[string]map[string]guideRow{}
	for _, r := range rows {
		if byTable[r.table] == nil {
			byTable[r.table] = map[string]guideRow{}
		}
		if prev, dup := byTable[r.table][r.keyword]; dup {
			t.Errorf("README.md:%d: %s listed again in %q (first on line %d)", r.line, r.keyword, r.table, prev.line)
		}
		byTable[r.table][r.keyword] = r
	}

	// Every table is one the test knows, and lists only keywords the
	// importer reads there.
	for label := range byTable {
		if _, ok := guideTables[label]; !ok {
			t.Errorf("README.md: unknown guide table %q: add it to guideTables", label)
		}
	}
	for label, knows := range guideTables {
		listed, ok := byTable[label]
		if !ok {
			t.Errorf("README.md: no guide table %q", label)
			continue
		}
		if knows == nil {
			continue // a block the importer reports as a whole
		}
		for kw, r := range listed {
			if !slices.Contains(knows(), kw) {
				t.Errorf("README.md:%d: %s is listed %s, where the importer does not know it: it would report it as unknown", r.line, kw, label)
			}
		}
	}

	// Every keyword the importer knows is listed in its block.
	for _, c := range guideCoverage {
		for _, kw := range c.names() {
			found := false
			for _, label := range c.tables {
				if _, ok := byTable[label][kw]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: the importer knows %s, which the guide does not list (under %s)", c.block, kw, strings.Join(c.tables, " or "))
			}
		}
	}

	// Every carried or differently row is proven, and every proof is of
	// such a row.
	for _, r := range rows {
		key := r.table + "/" + r.keyword
		p, ok := guideProofs[key]
		switch {
		case r.status == "not carried" && ok:
			t.Errorf("README.md:%d: %s is not carried, but guideProofs has a conversion of it", r.line, key)
		case r.status != "not carried" && !ok:
			t.Errorf("README.md:%d: %s is %s: add a conversion to guideProofs", r.line, key, r.status)
		case ok:
			t.Run(key, func(t *testing.T) { checkProof(t, r, p) })
		}
	}
	for key := range guideProofs {
		table, kw, _ := strings.Cut(key, "/")
		if _, ok := byTable[table][kw]; !ok {
			t.Errorf("guideProofs has %s, which the guide does not list", key)
		}
	}
}

// guideRow is one row of a guide table.
type guideRow struct {
	table, keyword, status string
	line                   int
}

var (
	guideHeader = regexp.MustCompile("^\\| ([^|]+) \\| status \\| director\\.yaml, or why not \\|$")
	guideRowRE  = regexp.MustCompile("^\\| `([A-Za-z_][A-Za-z0-9_-]*)` \\| (carried|differently|not carried) \\| [^|]+ \\|$")
)

// readGuide reads the rows of the guide's tables, failing on anything in a
// table it cannot read.
func readGuide(t *testing.T, path string) []guideRow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := slices.Index(lines, "### Every keepalived keyword")
	if start < 0 {
		t.Fatalf("%s: no section \"### Every keepalived keyword\"", path)
	}
	var rows []guideRow
	table := ""
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "## ") || strings.HasPrefix(l, "### ") {
			break
		}
		switch {
		case !strings.HasPrefix(l, "|"):
			table = ""
		case guideHeader.MatchString(l):
			table = strings.ReplaceAll(guideHeader.FindStringSubmatch(l)[1], "`", "")
		case l == "|---|---|---|":
		case table == "":
			t.Errorf("%s:%d: a row outside a table, or a table header the test cannot read: %s", path, i+1, l)
		default:
			m := guideRowRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s:%d: want | `keyword` | carried, differently or not carried | text |, got %s", path, i+1, l)
				continue
			}
			rows = append(rows, guideRow{table: table, keyword: m[1], status: m[2], line: i + 1})
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: the guide has no rows", path)
	}
	return rows
}

// The guide's tables, and the keywords the importer reads in each: nil for
// a block it reports as a whole, without reading into it.
const sharedTable = "in virtual_server, real_server or a checker"

var guideTables = map[string]func() []string{
	"anywhere":                func() []string { return slices.Collect(maps.Keys(includeKinds)) },
	"at the top level":        topBlock.names,
	"in global_defs":          globalBlock.names,
	"in vrrp_instance":        instanceBlock.names,
	"in authentication":       func() []string { return authKeywords },
	"in auth_hmac":            nil,
	"in vrrp_sync_group":      syncGroupBlock.names,
	"in vrrp_script":          func() []string { return scriptKeywords },
	"in track_file":           func() []string { return trackFileKeywords },
	"in vrrp_track_process":   func() []string { return trackProcessKeywords },
	"in garp_group":           nil,
	"in track_group":          nil,
	"in virtual_server_group": func() []string { return []string{"fwmark"} }, // groupEntry
	"in virtual_server":       serviceBlock.names,
	"in real_server":          realServerBlock.names,
	sharedTable:               serviceBlock.names,
	"in every checker":        checkerBlock.names,
	"in HTTP_GET and SSL_GET": checkerBlock.names,
	"in url":                  func() []string { return append(slices.Collect(maps.Keys(urlKnown)), urlKeywords...) },
	"in SSL_GET":              checkerBlock.names,
	"in SMTP_CHECK":           checkerBlock.names,
	"in DNS_CHECK":            checkerBlock.names,
	"in MISC_CHECK":           miscCheckBlock.names,
	"in UDP_CHECK":            checkerBlock.names,
	"in FILE_CHECK":           fileCheckBlock.names,
	"in SSL":                  nil,
	"in bfd_instance":         nil,
	"in BFD_CHECK":            nil,
}

// checkerTables are the tables a health checker's keywords may be in.
var checkerTables = []string{"in every checker", sharedTable, "in HTTP_GET and SSL_GET", "in SSL_GET", "in SMTP_CHECK", "in DNS_CHECK", "in UDP_CHECK", "in MISC_CHECK"}

// guideCoverage says where the guide lists the keywords of each of the
// importer's blocks.
var guideCoverage = []struct {
	block  string
	names  func() []string
	tables []string
}{
	{"include", guideTables["anywhere"], []string{"anywhere"}},
	// net_namespace and the like are read at the top level too.
	{"the top level", topBlock.names, []string{"at the top level", "in global_defs"}},
	{"global_defs", globalBlock.names, []string{"in global_defs"}},
	{"vrrp_instance", instanceBlock.names, []string{"in vrrp_instance"}},
	{"authentication", guideTables["in authentication"], []string{"in authentication"}},
	{"vrrp_sync_group", syncGroupBlock.names, []string{"in vrrp_sync_group"}},
	{"vrrp_script", guideTables["in vrrp_script"], []string{"in vrrp_script"}},
	{"track_file", guideTables["in track_file"], []string{"in track_file"}},
	{"vrrp_track_process", guideTables["in vrrp_track_process"], []string{"in vrrp_track_process"}},
	{"virtual_server_group", guideTables["in virtual_server_group"], []string{"in virtual_server_group"}},
	{"virtual_server", serviceBlock.names, []string{"in virtual_server", sharedTable}},
	{"real_server", realServerBlock.names, []string{"in real_server", sharedTable}},
	{"a health checker", checkerBlock.names, checkerTables},
	{"MISC_CHECK", miscCheckBlock.names, checkerTables},
	{"FILE_CHECK", fileCheckBlock.names, []string{"in FILE_CHECK"}},
	{"url", guideTables["in url"], []string{"in url"}},
}

// guideProof converts one keyword: line (in place of @@) in the template
// named in, against base in its place.
type guideProof struct {
	line string
	in   string // a guideTemplates name; default: the table's own
	base string
	// same: the keyword asks for what director does anyway, so the output
	// must not change.
	same bool
}

// guideWorld is the configuration every proof is made in; a template puts
// text at its @@name@@ marks, the rest are left empty.
const guideWorld = `global_defs {
@@global@@
}
vrrp_script chk {
    script /usr/local/bin/chk
}
track_file tf {
    file /run/tf
}
track_file tf2 {
    file /run/tf2
}
vrrp_track_process tp {
    process haproxy
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
@@vi1@@
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        192.0.2.20/24
    }
}
virtual_server 192.0.2.10 80 {
    protocol TCP
@@vs@@
    real_server 192.0.2.21 80 {
        TCP_CHECK {
        }
@@rs@@
    }
}
@@top@@
`

// guideIncluded is the file the include proofs include.
const guideIncluded = "/etc/keepalived/vi3.conf"

const guideSyncGroup = "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n@@\n}"

// guideTemplates put a proof's line (@@) at marks of guideWorld.
var guideTemplates = map[string]map[string]string{
	"top":             {"top": "@@"},
	"global_defs":     {"global": "@@"},
	"global_defs v6":  {"global": "@@", "top": "vrrp_instance V6 {\n    interface eth0\n    virtual_router_id 60\n    virtual_ipaddress {\n        2001:db8::10/64\n    }\n}"},
	"vrrp_instance":   {"vi1": "@@"},
	"vrrp_sync_group": {"top": guideSyncGroup},
	// A member's weighted track, which a sync group keeps or zeroes.
	"sync weights":         {"top": guideSyncGroup, "vi1": "track_script {\n    chk weight 10\n}"},
	"vrrp_script":          {"top": "vrrp_script chk2 {\n    script /usr/local/bin/chk2\n@@\n}"},
	"track_file":           {"top": "track_file tf3 {\n    file /run/tf3\n@@\n}"},
	"vrrp_track_process":   {"top": "vrrp_track_process tp2 {\n    process nginx\n@@\n}"},
	"virtual_server_group": {"top": "virtual_server_group G {\n    192.0.2.40 80\n@@\n}\nvirtual_server group G {\n    protocol TCP\n    real_server 192.0.2.41 80 {\n        TCP_CHECK {\n        }\n    }\n}"},
	"virtual_server":       {"vs": "@@"},
	"virtual_server udp":   {"top": "virtual_server 192.0.2.10 53 {\n    protocol UDP\n@@\n    real_server 192.0.2.21 53 {\n        TCP_CHECK {\n        }\n    }\n}"},
	"virtual_server mark":  {"top": "virtual_server fwmark 5 {\n@@\n    real_server 192.0.2.21 80 {\n        TCP_CHECK {\n        }\n    }\n}"},
	"real_server":          {"rs": "@@"},
	"checker":              {"rs": "TCP_CHECK {\n@@\n}"},
	"HTTP_GET":             {"rs": "HTTP_GET {\n    url {\n        path /\n    }\n@@\n}"},
	"url":                  {"rs": "HTTP_GET {\n    url {\n        path /\n@@\n    }\n}"},
	"SSL_GET":              {"rs": "SSL_GET {\n    url {\n        path /\n    }\n@@\n}"},
	"SMTP_CHECK":           {"rs": "SMTP_CHECK {\n@@\n}"},
	"DNS_CHECK":            {"rs": "DNS_CHECK {\n@@\n}"},
	"MISC_CHECK":           {"rs": "MISC_CHECK {\n    misc_path /usr/local/bin/misc\n@@\n}"},
	"UDP_CHECK":            {"rs": "UDP_CHECK {\n    payload 01\n@@\n}"},
	"FILE_CHECK":           {"rs": "FILE_CHECK {\n    track_file tf\n@@\n}"},
}

// tableTemplate is the template of each table's proofs, unless a proof
// names another.
var tableTemplate = map[string]string{
	"anywhere": "top", "at the top level": "top", "in global_defs": "global_defs",
	"in vrrp_instance": "vrrp_instance", "in authentication": "vrrp_instance",
	"in vrrp_sync_group": "vrrp_sync_group", "in vrrp_script": "vrrp_script",
	"in track_file": "track_file", "in vrrp_track_process": "vrrp_track_process",
	"in virtual_server_group": "virtual_server_group", "in virtual_server": "virtual_server",
	"in real_server": "real_server", sharedTable: "virtual_server", "in every checker": "checker",
	"in HTTP_GET and SSL_GET": "HTTP_GET", "in url": "url", "in SSL_GET": "SSL_GET",
	"in SMTP_CHECK": "SMTP_CHECK", "in DNS_CHECK": "DNS_CHECK", "in MISC_CHECK": "MISC_CHECK",
	"in UDP_CHECK": "UDP_CHECK", "in FILE_CHECK": "FILE_CHECK",
}

// guideConfig is guideWorld with the template's text, and line at its @@.
func guideConfig(t *testing.T, template, line string) string {
	t.Helper()
	tm, ok := guideTemplates[template]
	if !ok {
		t.Fatalf("no template %q", template)
	}
	conf := guideWorld
	for _, mark := range []string{"global", "vi1", "vs", "rs", "top"} {
		conf = strings.Replace(conf, "@@"+mark+"@@", strings.Replace(tm[mark], "@@", line, 1), 1)
	}
	return conf
}

func checkProof(t *testing.T, r guideRow, p guideProof) {
	in := cmp.Or(p.in, tableTemplate[r.table])
	convert := func(line string) ([]byte, Report) {
		t.Helper()
		conf := guideConfig(t, in, line)
		fs := memFS{mainConf: conf, guideIncluded: "vrrp_instance VI_3 {\n    interface eth0\n    virtual_router_id 53\n    virtual_ipaddress {\n        192.0.2.30/24\n    }\n}\n"}
		data, rep, err := convertFS(fs, mainConf, testOptions)
		if err != nil {
			t.Fatalf("%v\n%s\n%v", err, conf, rep.Findings)
		}
		return data, rep
	}
	base, baseRep := convert(p.base)
	got, rep := convert(p.line)
	switch {
	case p.same && !bytes.Equal(got, base):
		t.Errorf("README.md:%d: %s should change nothing, but the output changed:\n%s", r.line, r.keyword, got)
	case !p.same && bytes.Equal(got, base):
		t.Errorf("README.md:%d: %s is %s, but it changes nothing in the output", r.line, r.keyword, r.status)
	}
	if r.status != "carried" {
		return
	}
	// A carried keyword draws no finding beyond those of the base.
	seen := map[string]int{}
	for _, f := range baseRep.Findings {
		seen[findingKey(f)]++
	}
	for _, f := range rep.Findings {
		if seen[findingKey(f)] > 0 {
			seen[findingKey(f)]--
			continue
		}
		if f.Keyword == r.keyword {
			t.Errorf("README.md:%d: %s is carried, but the importer says: %v", r.line, r.keyword, f)
		}
	}
}

func findingKey(f Finding) string { return fmt.Sprintf("%v %s %s", f.Level, f.Keyword, f.Msg) }

// guideProofs convert each keyword the guide says is carried, or carried
// differently, keyed by table and keyword.
var guideProofs = map[string]guideProof{
	"anywhere/include":  {line: "include " + guideIncluded},
	"anywhere/includer": {line: "includer " + guideIncluded},
	"anywhere/includem": {line: "includem " + guideIncluded},
	"anywhere/includew": {line: "includew " + guideIncluded},
	"anywhere/includeb": {line: "includeb " + guideIncluded},
	"anywhere/includea": {line: "includea " + guideIncluded},
	"anywhere/includet": {line: "includet " + guideIncluded},

	"at the top level/global_defs":          {line: "global_defs {\n    vrrp_version 3\n}"},
	"at the top level/vrrp_instance":        {line: "vrrp_instance VI_3 {\n    interface eth0\n    virtual_router_id 53\n    virtual_ipaddress {\n        192.0.2.30/24\n    }\n}"},
	"at the top level/vrrp_sync_group":      {line: strings.Replace(guideSyncGroup, "@@", "", 1)},
	"at the top level/vrrp_script":          {line: "vrrp_script chk2 {\n    script /usr/local/bin/chk2\n}"},
	"at the top level/track_file":           {line: "track_file tf3 {\n    file /run/tf3\n}"},
	"at the top level/vrrp_track_file":      {line: "vrrp_track_file tf3 {\n    file /run/tf3\n}"},
	"at the top level/vrrp_track_process":   {line: "vrrp_track_process tp2 {\n    process nginx\n}"},
	"at the top level/virtual_server_group": {line: "virtual_server_group G {\n    192.0.2.40 80\n}\nvirtual_server group G {\n    protocol TCP\n    real_server 192.0.2.41 80 {\n        TCP_CHECK {\n        }\n    }\n}"},
	"at the top level/virtual_server":       {line: "virtual_server 192.0.2.10 443 {\n    protocol TCP\n    real_server 192.0.2.21 443 {\n        TCP_CHECK {\n        }\n    }\n}"},

	"in global_defs/notify_fifo":              {line: "notify_fifo /run/director/ka.fifo"},
	"in global_defs/lvs_sync_daemon":          {line: "lvs_sync_daemon eth1 VI_1"},
	"in global_defs/vrrp_garp_master_repeat":  {line: "vrrp_garp_master_repeat 3"},
	"in global_defs/vrrp_garp_master_refresh": {line: "vrrp_garp_master_refresh 60"},
	"in global_defs/vrrp_garp_interval":       {line: "vrrp_garp_interval 0.02"},
	"in global_defs/vrrp_gna_interval":        {line: "vrrp_gna_interval 0.02", in: "global_defs v6"},
	"in global_defs/vrrp_min_garp":            {line: "vrrp_min_garp"},
	"in global_defs/vrrp_version":             {line: "vrrp_version 3"},
	"in global_defs/vrrp_check_unicast_src":   {line: "vrrp_check_unicast_src", same: true},
	"in global_defs/reload_check_config":      {line: "reload_check_config", same: true},

	"in vrrp_instance/interface":                  {line: "interface eth1"},
	"in vrrp_instance/use_vmac":                   {line: "use_vmac"},
	"in vrrp_instance/vmac_xmit_base":             {line: "use_vmac\nvmac_xmit_base", base: "use_vmac"},
	"in vrrp_instance/track_interface":            {line: "track_interface {\n    eth1\n}"},
	"in vrrp_instance/track_script":               {line: "track_script {\n    chk\n}"},
	"in vrrp_instance/track_file":                 {line: "track_file {\n    tf\n}"},
	"in vrrp_instance/track_process":              {line: "track_process {\n    tp\n}"},
	"in vrrp_instance/mcast_src_ip":               {line: "unicast_peer {\n    192.0.2.2\n}\nmcast_src_ip 192.0.2.1", base: "unicast_peer {\n    192.0.2.2\n}"},
	"in vrrp_instance/unicast_src_ip":             {line: "unicast_peer {\n    192.0.2.2\n}\nunicast_src_ip 192.0.2.1", base: "unicast_peer {\n    192.0.2.2\n}"},
	"in vrrp_instance/version":                    {line: "version 3"},
	"in vrrp_instance/check_unicast_src":          {line: "check_unicast_src", same: true},
	"in vrrp_instance/unicast_peer":               {line: "unicast_peer {\n    192.0.2.2\n}"},
	"in vrrp_instance/unicast_ttl":                {line: "unicast_peer {\n    192.0.2.2\n}\nunicast_ttl 64", base: "unicast_peer {\n    192.0.2.2\n}"},
	"in vrrp_instance/garp_master_repeat":         {line: "garp_master_repeat 3"},
	"in vrrp_instance/garp_master_refresh":        {line: "garp_master_refresh 60"},
	"in vrrp_instance/virtual_router_id":          {line: "virtual_router_id 60"},
	"in vrrp_instance/priority":                   {line: "priority 150"},
	"in vrrp_instance/advert_int":                 {line: "advert_int 2"},
	"in vrrp_instance/authentication":             {line: "authentication {\n    auth_type PASS\n    auth_pass secret\n}"},
	"in vrrp_instance/virtual_ipaddress":          {line: "virtual_ipaddress {\n    192.0.2.11/24\n}"},
	"in vrrp_instance/virtual_ipaddress_excluded": {line: "virtual_ipaddress_excluded {\n    192.0.2.12/24\n}"},
	"in vrrp_instance/no_virtual_ipaddress":       {line: "no_virtual_ipaddress", same: true},
	"in vrrp_instance/virtual_routes":             {line: "virtual_routes {\n    198.51.100.0/24 via 192.0.2.1\n}"},
	"in vrrp_instance/virtual_rules":              {line: "virtual_rules {\n    from 192.0.2.10 table 100 priority 1000\n}"},
	"in vrrp_instance/accept":                     {line: "accept", same: true},
	"in vrrp_instance/nopreempt":                  {line: "nopreempt"},
	"in vrrp_instance/preempt":                    {line: "nopreempt\npreempt", base: "nopreempt"},
	"in vrrp_instance/preempt_delay":              {line: "preempt_delay 5"},
	"in vrrp_instance/notify_master":              {line: "notify_master /usr/local/bin/master"},
	"in vrrp_instance/notify_backup":              {line: "notify_backup /usr/local/bin/backup"},
	"in vrrp_instance/notify_fault":               {line: "notify_fault /usr/local/bin/fault"},
	"in vrrp_instance/notify_stop":                {line: "notify_stop /usr/local/bin/stop"},
	"in vrrp_instance/notify":                     {line: "notify /usr/local/bin/notify"},
	"in vrrp_instance/lvs_sync_daemon_interface":  {line: "lvs_sync_daemon_interface eth1"},

	"in authentication/auth_type": {line: "authentication {\n    auth_type PASS\n    auth_pass secret\n}"},
	"in authentication/auth_pass": {line: "authentication {\n    auth_type PASS\n    auth_pass secret\n}"},

	"in vrrp_sync_group/group":                      {line: strings.Replace(guideSyncGroup, "@@", "", 1), in: "top"},
	"in vrrp_sync_group/track_interface":            {line: "track_interface {\n    eth1\n}"},
	"in vrrp_sync_group/track_script":               {line: "track_script {\n    chk\n}"},
	"in vrrp_sync_group/track_file":                 {line: "track_file {\n    tf\n}"},
	"in vrrp_sync_group/track_process":              {line: "track_process {\n    tp\n}"},
	"in vrrp_sync_group/notify_master":              {line: "notify_master /usr/local/bin/master"},
	"in vrrp_sync_group/notify_backup":              {line: "notify_backup /usr/local/bin/backup"},
	"in vrrp_sync_group/notify_fault":               {line: "notify_fault /usr/local/bin/fault"},
	"in vrrp_sync_group/notify_stop":                {line: "notify_stop /usr/local/bin/stop"},
	"in vrrp_sync_group/notify":                     {line: "notify /usr/local/bin/notify"},
	"in vrrp_sync_group/global_tracking":            {line: "global_tracking", in: "sync weights"},
	"in vrrp_sync_group/sync_group_tracking_weight": {line: "sync_group_tracking_weight", in: "sync weights"},

	"in vrrp_script/script":   {line: "script /usr/local/bin/other"},
	"in vrrp_script/interval": {line: "interval 3"},
	"in vrrp_script/timeout":  {line: "timeout 2"},
	"in vrrp_script/weight":   {line: "weight -10"},
	"in vrrp_script/rise":     {line: "rise 2"},
	"in vrrp_script/fall":     {line: "fall 2"},
	"in vrrp_script/user":     {line: "user nobody"},

	"in track_file/file":   {line: "file /run/other"},
	"in track_file/weight": {line: "weight 5"},

	"in vrrp_track_process/process":         {line: "process haproxy"},
	"in vrrp_track_process/param_match":     {line: "param_match initial", same: true},
	"in vrrp_track_process/weight":          {line: "weight 5"},
	"in vrrp_track_process/quorum":          {line: "quorum 2"},
	"in vrrp_track_process/quorum_max":      {line: "quorum_max 3"},
	"in vrrp_track_process/fork_delay":      {line: "fork_delay 1"},
	"in vrrp_track_process/terminate_delay": {line: "terminate_delay 1"},
	"in vrrp_track_process/delay":           {line: "delay 1"},

	"in virtual_server_group/fwmark": {line: "fwmark 7"},

	"in virtual_server/lvs_sched":               {line: "lvs_sched rr"},
	"in virtual_server/lb_algo":                 {line: "lb_algo rr"},
	"in virtual_server/flag-1":                  {line: "lvs_sched sh\nflag-1", base: "lvs_sched sh"},
	"in virtual_server/flag-2":                  {line: "lvs_sched mh\nflag-2", base: "lvs_sched mh"},
	"in virtual_server/sh-port":                 {line: "lvs_sched sh\nsh-port", base: "lvs_sched sh"},
	"in virtual_server/sh-fallback":             {line: "lvs_sched sh\nsh-fallback", base: "lvs_sched sh"},
	"in virtual_server/mh-port":                 {line: "lvs_sched mh\nmh-port", base: "lvs_sched mh"},
	"in virtual_server/mh-fallback":             {line: "lvs_sched mh\nmh-fallback", base: "lvs_sched mh"},
	"in virtual_server/ops":                     {line: "ops", in: "virtual_server udp"},
	"in virtual_server/lvs_method":              {line: "lvs_method DR"},
	"in virtual_server/lb_kind":                 {line: "lb_kind DR"},
	"in virtual_server/persistence_engine":      {line: "persistence_timeout 300\npersistence_engine sip", base: "persistence_timeout 300", in: "virtual_server udp"},
	"in virtual_server/persistence_timeout":     {line: "persistence_timeout 300"},
	"in virtual_server/persistence_granularity": {line: "persistence_timeout 300\npersistence_granularity 255.255.255.0", base: "persistence_timeout 300"},
	"in virtual_server/protocol":                {line: "protocol SCTP"},
	"in virtual_server/quorum":                  {line: "quorum 2"},
	"in virtual_server/hysteresis":              {line: "quorum 2\nhysteresis 1", base: "quorum 2"},
	"in virtual_server/quorum_up":               {line: "quorum_up /usr/local/bin/up"},
	"in virtual_server/quorum_down":             {line: "quorum_down /usr/local/bin/down"},
	"in virtual_server/ip_family":               {line: "ip_family inet", in: "virtual_server mark"},
	"in virtual_server/sorry_server":            {line: "sorry_server 192.0.2.99 80"},
	"in virtual_server/real_server":             {line: "real_server 192.0.2.22 80 {\n    TCP_CHECK {\n    }\n}"},

	sharedTable + "/delay_loop":         {line: "delay_loop 10"},
	sharedTable + "/connect_timeout":    {line: "connect_timeout 2"},
	sharedTable + "/retry":              {line: "retry 3"},
	sharedTable + "/nb_get_retry":       {line: "nb_get_retry 3"},
	sharedTable + "/delay_before_retry": {line: "delay_before_retry 2"},
	sharedTable + "/alpha":              {line: "alpha", same: true},
	sharedTable + "/virtualhost":        {line: "virtualhost www.example.com", in: "HTTP_GET"},
	sharedTable + "/inhibit_on_failure": {line: "inhibit_on_failure"},

	"in real_server/weight":      {line: "weight 5"},
	"in real_server/lvs_method":  {line: "lvs_method DR"},
	"in real_server/notify_up":   {line: "notify_up /usr/local/bin/up"},
	"in real_server/notify_down": {line: "notify_down /usr/local/bin/down"},
	"in real_server/uthreshold":  {line: "uthreshold 100"},
	"in real_server/lthreshold":  {line: "lthreshold 10"},
	"in real_server/HTTP_GET":    {line: "HTTP_GET {\n    url {\n        path /\n    }\n}"},
	"in real_server/SSL_GET":     {line: "SSL_GET {\n    url {\n        path /\n    }\n}"},
	"in real_server/TCP_CHECK":   {line: "TCP_CHECK {\n    connect_port 81\n}"},
	"in real_server/SMTP_CHECK":  {line: "SMTP_CHECK {\n}"},
	"in real_server/DNS_CHECK":   {line: "DNS_CHECK {\n}"},
	"in real_server/MISC_CHECK":  {line: "MISC_CHECK {\n    misc_path /usr/local/bin/misc\n}"},
	"in real_server/UDP_CHECK":   {line: "UDP_CHECK {\n    payload 01\n}"},
	"in real_server/PING_CHECK":  {line: "PING_CHECK {\n}"},
	"in real_server/FILE_CHECK":  {line: "FILE_CHECK {\n    track_file tf\n}"},

	"in every checker/connect_ip":   {line: "connect_ip 192.0.2.30"},
	"in every checker/connect_port": {line: "connect_port 8080"},
	"in every checker/bindto":       {line: "bindto 192.0.2.1"},

	"in HTTP_GET and SSL_GET/http_protocol": {line: "http_protocol 1.0"},
	"in HTTP_GET and SSL_GET/fast_recovery": {line: "fast_recovery", same: true},
	"in HTTP_GET and SSL_GET/url":           {line: "url {\n    path /b\n}"},

	"in url/path":           {line: "path /x"},
	"in url/digest":         {line: "digest 9b3a0c85a887a256d6939da88aabd8cd"},
	"in url/status_code":    {line: "status_code 201"},
	"in url/virtualhost":    {line: "virtualhost www.example.com"},
	"in url/regex":          {line: "regex ^OK"},
	"in url/regex_no_match": {line: "regex ^OK\nregex_no_match", base: "regex ^OK"},
	"in url/regex_options":  {line: "regex ^OK\nregex_options caseless", base: "regex ^OK"},

	"in SSL_GET/enable_sni": {line: "enable_sni", same: true},
	"in SSL_GET/sni_name":   {line: "sni_name tls.example.com"},

	"in SMTP_CHECK/helo_name": {line: "helo_name mx.example.com"},

	"in DNS_CHECK/type": {line: "type A"},
	"in DNS_CHECK/name": {line: "name www.example.com"},

	"in MISC_CHECK/misc_path":    {line: "misc_path /usr/local/bin/other"},
	"in MISC_CHECK/misc_timeout": {line: "misc_timeout 4"},
	"in MISC_CHECK/misc_dynamic": {line: "misc_dynamic"},

	"in UDP_CHECK/payload":          {line: "payload 0102"},
	"in UDP_CHECK/require_reply":    {line: "require_reply 01"},
	"in UDP_CHECK/min_reply_length": {line: "require_reply 01\nmin_reply_length 1", base: "require_reply 01"},
	"in UDP_CHECK/max_reply_length": {line: "require_reply 01\nmax_reply_length 100", base: "require_reply 01"},

	"in FILE_CHECK/track_file": {line: "track_file tf2"},
	"in FILE_CHECK/weight":     {line: "weight 5"},
}
