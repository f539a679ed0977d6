// Command mkdeb builds director's Debian package (`make deb`) with
// internal/debpkg and prints its path.
//
// Usage:
//
//	mkdeb -binary bin/director -version "$(git describe --tags --always --dirty)" \
//	      -time "$(git log -1 --format=%ct)" [-o DIR] [-root DIR]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/director-lb/director/internal/debpkg"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "bin/director", "the director `binary` to package")
	version := fs.String("version", "", "`git describe --tags --always --dirty` of the build")
	unix := fs.Int64("time", 0, "the commit's time in `seconds` since 1970 (git log -1 --format=%ct)")
	out := fs.String("o", ".", "output `directory`")
	root := fs.String("root", ".", "the repository `checkout`")
	goCmd := fs.String("go", "go", "the go `command`, for GOROOT and GOMODCACHE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version == "" || *unix == 0 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "mkdeb: -version and -time are required")
		fs.Usage()
		return 2
	}
	goroot, modcache, err := debpkg.GoEnv(*goCmd)
	if err != nil {
		fmt.Fprintln(stderr, "mkdeb:", err)
		return 1
	}
	path, err := debpkg.Build(debpkg.Options{
		Root:       *root,
		Binary:     *binary,
		Describe:   *version,
		CommitTime: time.Unix(*unix, 0),
		GoRoot:     goroot,
		ModCache:   modcache,
		OutDir:     *out,
	})
	if err != nil {
		fmt.Fprintln(stderr, "mkdeb:", err)
		return 1
	}
	fmt.Fprintln(stdout, path)
	return 0
}
