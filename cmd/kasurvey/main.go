// Command kasurvey imports many keepalived configurations and counts how
// many convert to a configuration director loads, and why the others are
// refused: a measure of director import-keepalived on configurations it
// was not written against, such as keepalived's own samples:
//
//	git clone https://github.com/acassen/keepalived
//	go run ./cmd/kasurvey -config-id high keepalived/doc/samples
//
// A directory argument stands for its files named keepalived.conf*.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/director-lb/director/internal/config"
	"github.com/director-lb/director/internal/kaimport"
)

func main() {
	id := flag.String("config-id", "lb1", "configuration `ID` for keepalived's @ID conditional lines")
	verbose := flag.Bool("v", false, "print every finding, not only errors")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: kasurvey [-config-id ID] [-v] FILE|DIR...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	files, err := expand(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "kasurvey:", err)
		os.Exit(1)
	}
	s := survey(files, *id)
	s.write(os.Stdout, *verbose)
	if len(s.results) == 0 {
		os.Exit(1)
	}
}

// expand turns directories into their keepalived.conf* files.
func expand(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "keepalived.conf*"))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// result is one file's outcome.
type result struct {
	file     string
	loads    bool     // converted, and director's loader accepts the output
	errors   []string // why it was refused
	report   kaimport.Report
	warnings []string // keywords warned about, once each
}

type summary struct{ results []result }

func survey(files []string, id string) summary {
	var s summary
	for _, f := range files {
		data, rep, err := kaimport.ConvertWith(f, kaimport.Options{Checks: true, ConfigID: id})
		r := result{file: f, report: rep}
		if err == nil {
			// The importer promises this; the survey checks it.
			if _, perr := config.Parse(f+".yaml", data); perr != nil {
				r.errors = append(r.errors, "converted, yet refused by the loader: "+perr.Error())
			} else {
				r.loads = true
			}
		}
		for _, fd := range rep.Findings {
			switch fd.Level {
			case kaimport.Error:
				r.errors = append(r.errors, fd.String())
			case kaimport.Warning:
				if !slices.Contains(r.warnings, fd.Keyword) {
					r.warnings = append(r.warnings, fd.Keyword)
				}
			}
		}
		s.results = append(s.results, r)
	}
	return s
}

// Quoted values, numbers and list indexes vary between files; the
// reason's shape does not.
var (
	indexes   = regexp.MustCompile(`\[[0-9]+\]`)
	specifics = regexp.MustCompile(`"[^"]*"|\b[0-9][0-9a-fA-F.:/]*\b`)
)

// reason is an error finding without its place and values, for grouping.
func reason(finding string) string {
	_, msg, _ := strings.Cut(finding, ": error: ")
	msg = indexes.ReplaceAllString(cmp.Or(msg, finding), "[]")
	return specifics.ReplaceAllString(msg, "…")
}

func (s summary) write(w io.Writer, verbose bool) {
	loads := 0
	reasons := map[string][]string{}
	warned := map[string]int{}
	for _, r := range s.results {
		name := filepath.Base(r.file)
		if r.loads {
			loads++
			fmt.Fprintf(w, "ok       %s\n", name)
		} else {
			fmt.Fprintf(w, "refused  %s\n", name)
		}
		for _, e := range r.errors {
			fmt.Fprintf(w, "         %s\n", e)
			k := reason(e)
			if !slices.Contains(reasons[k], name) {
				reasons[k] = append(reasons[k], name)
			}
		}
		if verbose {
			for _, fd := range r.report.Findings {
				if fd.Level != kaimport.Error {
					fmt.Fprintf(w, "         %s\n", fd)
				}
			}
		}
		for _, k := range r.warnings {
			warned[k]++
		}
	}
	fmt.Fprintf(w, "\n%d files: %d convert to a configuration director loads, %d refused\n", len(s.results), loads, len(s.results)-loads)
	if len(reasons) > 0 {
		fmt.Fprintln(w, "\nwhy refused (files):")
		for _, k := range slices.Sorted(mapsKeys(reasons)) {
			fmt.Fprintf(w, "  %d  %s  (%s)\n", len(reasons[k]), k, strings.Join(reasons[k], ", "))
		}
	}
	if len(warned) > 0 {
		fmt.Fprintln(w, "\nwarned about, not carried over (files):")
		keys := slices.Sorted(mapsKeys(warned))
		slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(warned[b], warned[a]) })
		for _, k := range keys {
			fmt.Fprintf(w, "  %d  %s\n", warned[k], k)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
