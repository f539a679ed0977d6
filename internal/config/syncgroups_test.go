package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const groupsBase = `
instances:
  - {name: outside, interface: eth0, vrid: 51, vips: [192.0.2.10/24]}
  - {name: inside, interface: eth1, vrid: 52, vips: [10.0.0.1/24]}
  - {name: dmz, interface: eth2, vrid: 53, vips: [10.9.0.1/24]}
`

func TestSyncGroupsParse(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(groupsBase+`
sync_groups:
  - name: nat
    instances: [outside, inside]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SyncGroups) != 1 || cfg.SyncGroups[0].Name != "nat" || !slices.Equal(cfg.SyncGroups[0].Instances, []string{"outside", "inside"}) {
		t.Fatalf("sync groups %+v", cfg.SyncGroups)
	}
	if g := cfg.GroupOf("inside"); g == nil || g.Name != "nat" {
		t.Errorf("GroupOf(inside) = %v", g)
	}
	if g := cfg.GroupOf("dmz"); g != nil {
		t.Errorf("GroupOf(dmz) = %v, want none", g)
	}
}

// A group's tracks reach every member, at weight 0, after the member's
// own; an instance outside the group gets none.
func TestSyncGroupTracks(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(groupsBase+`
scripts:
  - {name: chk_fw, command: [/bin/true]}
sync_groups:
  - name: nat
    instances: [outside, inside]
    track:
      - {script: chk_fw}
      - {interface: eth3, weight: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"outside", "inside"} {
		tr := cfg.Instances[i].Tracks()
		if len(tr) != 2 || tr[0].Script != "chk_fw" || tr[1].Interface != "eth3" {
			t.Fatalf("%s tracks %+v", name, tr)
		}
		for _, x := range tr {
			if x.Weight == nil || *x.Weight != 0 {
				t.Errorf("%s: group track %+v without weight 0", name, x)
			}
		}
	}
	if tr := cfg.Instances[2].Tracks(); len(tr) != 0 {
		t.Errorf("dmz, in no group, tracks %+v", tr)
	}
}

func TestSyncGroupsProblems(t *testing.T) {
	tests := []struct{ name, groups, want string }{
		{"one member", `
  - name: nat
    instances: [outside]`, "d.yaml:8: sync_groups[0].instances: at least two instances are needed, got 1"},
		{"unknown instance", `
  - name: nat
    instances: [outside, nope]`, `d.yaml:8: sync_groups[0].instances[1]: no instance named "nope"`},
		{"in two groups", `
  - name: nat
    instances: [outside, inside]
  - name: other
    instances: [dmz, inside]`, `d.yaml:10: sync_groups[1].instances[1]: instance "inside" is already in sync_groups[0]: an instance is in at most one sync group`},
		{"listed twice", `
  - name: nat
    instances: [outside, outside]`, `d.yaml:8: sync_groups[0].instances[1]: "outside" is listed twice`},
		{"duplicate name", `
  - name: nat
    instances: [outside, inside]
  - name: nat
    instances: [dmz, dmz2]`, `sync_groups[1].name: sync group name "nat" is already used by sync_groups[0]`},
		{"no name", `
  - instances: [outside, inside]`, "d.yaml:7: sync_groups[0].name: required"},
		{"unknown field", `
  - name: nat
    members: [outside, inside]`, "d.yaml:8: members: unknown field (misspelled?)"},
		{"group track with a weight", `
  - name: nat
    instances: [outside, inside]
    track:
      - {interface: eth3, weight: -20}`, "sync_groups[0].track[0].weight: a sync group's track puts the whole group in FAULT"},
		{"group track of nothing", `
  - name: nat
    instances: [outside, inside]
    track:
      - {script: nope}`, `sync_groups[0].track[0].script: "nope" is not the name of any of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(groupsBase+"sync_groups:"+tt.groups+"\n"))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err %v, want Problems", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("problems:\n%v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

func TestDiffSyncGroups(t *testing.T) {
	load := func(groups string) *Config {
		cfg, err := Parse("d.yaml", []byte(groupsBase+groups))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	none := load("")
	nat := load("sync_groups: [{name: nat, instances: [outside, inside]}]\n")
	nat3 := load("sync_groups: [{name: nat, instances: [outside, inside, dmz]}]\n")
	var got []string
	for _, c := range append(append(Diff(none, nat), Diff(nat, nat3)...), Diff(nat3, none)...) {
		got = append(got, c.String())
	}
	want := []string{
		"sync group nat: added with [outside inside]",
		"sync group nat: instances [outside inside] -> [outside inside dmz]",
		"sync group nat: removed (its instances fail over alone)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n%v\nwant\n%v", got, want)
	}
	if len(Diff(nat, nat)) != 0 {
		t.Error("an unchanged group is reported as a change")
	}
	if PairHash(none) == PairHash(nat) {
		t.Error("the pair hash ignores sync groups")
	}
}
