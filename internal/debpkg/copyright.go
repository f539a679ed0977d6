package debpkg

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// apacheRef stands for the Apache License 2.0's terms, which Debian keeps
// in common-licenses (lintian: copyright-file-contains-full-apache-2-license).
const apacheRef = "Licensed under the Apache License, Version 2.0; its text is in\n/usr/share/common-licenses/Apache-2.0.\n"

// Copyright is the package's copyright file: header (director's own
// notice), then the license files of everything the static binary at
// binary contains: the Go standard library (from goroot) and every module
// its build information lists (from the module cache modcache). Modules
// with the same license text share one copy of it.
func Copyright(header []byte, binary, goroot, modcache string) ([]byte, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("copyright: build information of %s: %w", binary, err)
	}
	type group struct {
		modules []string
		text    string
	}
	groups := map[string]*group{}
	var order []string
	add := func(module, dir string) error {
		text, err := licenseText(dir)
		if err != nil {
			return fmt.Errorf("copyright: %s: %w", module, err)
		}
		g, ok := groups[text]
		if !ok {
			g = &group{text: text}
			groups[text] = g
			order = append(order, text)
		}
		g.modules = append(g.modules, module)
		return nil
	}
	if err := add("the Go standard library and runtime ("+bi.GoVersion+")", goroot); err != nil {
		return nil, err
	}
	deps := modulesOf(bi)
	sort.Slice(deps, func(i, j int) bool { return deps[i].path < deps[j].path })
	for _, m := range deps {
		dir, err := moduleDir(modcache, m.path, m.version)
		if err != nil {
			return nil, err
		}
		if err := add(m.path+" "+m.version, dir); err != nil {
			return nil, err
		}
	}

	var b strings.Builder
	b.Write(header)
	b.WriteString("\nGo modules in /usr/sbin/director\n--------------------------------\n\n")
	b.WriteString("/usr/sbin/director is a static binary: it contains the Go standard library\n")
	b.WriteString("and the modules listed below. Each group of modules is followed by the\n")
	b.WriteString("license files they carry.\n")
	for _, text := range order {
		g := groups[text]
		b.WriteString("\n==== " + strings.Join(g.modules, ",\n     ") + "\n\n")
		b.WriteString(text)
	}
	return []byte(b.String()), nil
}

type module struct{ path, version string }

// modulesOf lists the modules linked into the binary, replacements
// resolved.
func modulesOf(bi *buildinfo.BuildInfo) []module {
	var ms []module
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		ms = append(ms, module{d.Path, d.Version})
	}
	return ms
}

// moduleDir is where the module cache keeps path@version: upper-case
// letters are stored as '!' and the lower-case letter.
func moduleDir(modcache, path, version string) (string, error) {
	if version == "" || strings.HasPrefix(path, ".") || filepath.IsAbs(path) {
		return "", fmt.Errorf("copyright: module %s is a local replacement; its license cannot be found in the module cache", path)
	}
	dir := filepath.Join(modcache, escapeModule(path)+"@"+escapeModule(version))
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("copyright: module %s %s is not in the module cache (run go mod download): %w", path, version, err)
	}
	return dir, nil
}

func escapeModule(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// licenseText concatenates the license files at the top of dir (LICENSE,
// LICENCE, COPYING, NOTICE, PATENTS with any suffix), each under its name,
// with the Apache License's terms replaced by a reference.
func licenseText(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		up := strings.ToUpper(e.Name())
		if e.IsDir() || !hasAnyPrefix(up, "LICENSE", "LICENCE", "COPYING", "NOTICE", "PATENTS") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		text := strings.ReplaceAll(string(data), "\r\n", "\n")
		b.WriteString("-- " + e.Name() + "\n\n" + strings.TrimRight(shortenApache(text), "\n ") + "\n\n")
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("no LICENSE, COPYING or NOTICE file in %s", dir)
	}
	return b.String(), nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// shortenApache replaces the Apache License 2.0's text, from its title to
// "END OF TERMS AND CONDITIONS" (or to the end), with apacheRef, and keeps
// what surrounds it: a notice before it, or an appendix naming the
// copyright holder after it (the blank appendix is dropped).
func shortenApache(text string) string {
	const terms = "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"
	if !strings.Contains(text, terms) || !strings.Contains(text, "Version 2.0, January 2004") {
		return text
	}
	start := strings.Index(text, "Apache License")
	if start < 0 || start > strings.Index(text, terms) {
		return text
	}
	// Start at the title's line.
	start = strings.LastIndex(text[:start], "\n") + 1
	rest := ""
	const end = "END OF TERMS AND CONDITIONS"
	if i := strings.Index(text, end); i >= 0 {
		rest = strings.TrimSpace(text[i+len(end):])
	}
	// The appendix as the license prints it, with no holder filled in, says
	// nothing about this module.
	if strings.Contains(rest, "[yyyy]") {
		rest = ""
	}
	out := strings.TrimSpace(text[:start])
	if out != "" {
		out += "\n\n"
	}
	out += apacheRef
	if rest != "" {
		out += "\n" + rest + "\n"
	}
	return out
}
