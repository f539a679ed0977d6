package debpkg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const apacheSample = `
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION

   1. Definitions. (the rest of the terms)

   END OF TERMS AND CONDITIONS
`

func TestShortenApache(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		want, lose []string
	}{
		{
			name: "bare terms",
			in:   apacheSample,
			want: []string{apacheRef},
			lose: []string{"TERMS AND CONDITIONS FOR USE", "1. Definitions"},
		},
		{
			name: "notice before, blank appendix after",
			in:   "Copyright 2015 Example Corp.\n" + apacheSample + "\n   APPENDIX: How to apply\n   Copyright [yyyy] [name of copyright owner]\n",
			want: []string{"Copyright 2015 Example Corp.\n\n" + apacheRef},
			lose: []string{"TERMS AND CONDITIONS FOR USE", "APPENDIX", "[yyyy]"},
		},
		{
			name: "appendix naming the holder",
			in:   apacheSample + "\n   Copyright 2019 The Holder Authors\n",
			want: []string{apacheRef, "Copyright 2019 The Holder Authors"},
			lose: []string{"TERMS AND CONDITIONS FOR USE"},
		},
	} {
		got := shortenApache(tc.in)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: result lacks %q:\n%s", tc.name, w, got)
			}
		}
		for _, l := range tc.lose {
			if strings.Contains(got, l) {
				t.Errorf("%s: result still has %q:\n%s", tc.name, l, got)
			}
		}
	}
	mit := "Permission is hereby granted, free of charge, ... (MIT)\n"
	if got := shortenApache(mit); got != mit {
		t.Errorf("an MIT license changed: %q", got)
	}
}

func TestLicenseText(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("LICENSE.md", "MIT terms\r\n")
	write("NOTICE", "Copyright Example\n")
	write("PATENTS", "Additional grant\n")
	write("README.md", "not a license\n")
	if err := os.Mkdir(filepath.Join(dir, "LICENSES"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := licenseText(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "-- LICENSE.md\n\nMIT terms\n\n-- NOTICE\n\nCopyright Example\n\n-- PATENTS\n\nAdditional grant\n\n"
	if got != want {
		t.Errorf("licenseText = %q; want %q", got, want)
	}

	if _, err := licenseText(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no LICENSE") {
		t.Errorf("a module without a license file: err = %v; want one saying so", err)
	}
}

func TestModuleDir(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "github.com/!burnt!sushi/toml@v1.0.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := moduleDir(cache, "github.com/BurntSushi/toml", "v1.0.0"); err != nil || got != dir {
		t.Errorf("moduleDir = %q, %v; want %q", got, err, dir)
	}
	if _, err := moduleDir(cache, "github.com/BurntSushi/toml", "v2.0.0"); err == nil || !strings.Contains(err.Error(), "go mod download") {
		t.Errorf("a module missing from the cache: err = %v; want one saying how to fetch it", err)
	}
	if _, err := moduleDir(cache, "../local", ""); err == nil {
		t.Error("a local replacement: want an error")
	}
}
