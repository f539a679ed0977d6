package main

import (
	"bytes"
	"strings"
	"testing"
)

// The survey of the importer's own test inputs: the good ones load, the
// broken ones are refused, each reason grouped without its values.
func TestSurvey(t *testing.T) {
	dir := "../../internal/kaimport/testdata/"
	files, err := expand([]string{dir + "lvs-dr.conf", dir + "groups.conf", dir + "errors.conf", dir + "include"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || !strings.HasSuffix(files[3], "include/keepalived.conf") {
		t.Fatalf("files = %v, want the three files and the directory's keepalived.conf", files)
	}
	var b bytes.Buffer
	survey(files, "lb1").write(&b, false)
	out := b.String()
	for _, want := range []string{
		"ok       lvs-dr.conf\n",
		"refused  errors.conf\n",
		"4 files: 3 convert to a configuration director loads, 1 refused\n",
		"  1  status_code: want status codes or ranges like … or …-…, got …  (errors.conf)\n",
		"  1  virtual_router_id: director refuses the result: instances[].vrid: vrid … on eth0 (IPv4) is already used by instances[]  (errors.conf)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("survey lacks %q:\n%s", want, out)
		}
	}
}
