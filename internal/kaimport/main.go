package kaimport

import (
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: director import-keepalived [-o FILE] [-checks=false] [-config-id ID] KEEPALIVED.CONF

Converts a keepalived configuration, with its includes, into director.yaml.
Everything that is not carried over is reported on stderr as
file:line: level: keyword: message. Nothing is written if there are errors.

`

// Main runs "director import-keepalived". It returns the exit status: 0 on
// success, 1 if the conversion failed, 2 for a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	def := DefaultOptions()
	fs := flag.NewFlagSet("import-keepalived", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "write director.yaml to `FILE` (default: standard output)")
	checks := fs.Bool("checks", true, "include the health checks (checks:) in the output")
	id := fs.String("config-id", def.ConfigID, "configuration `ID` for keepalived's @ID conditional lines (keepalived -i)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Allow flags after the file name too: FILE -o out.yaml.
	var files []string
	for fs.NArg() > 0 {
		files = append(files, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if len(files) != 1 {
		fs.Usage()
		return 2
	}
	data, rep, err := ConvertWith(files[0], Options{Checks: *checks, ConfigID: *id})
	if werr := rep.Write(stderr); werr != nil {
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "import-keepalived: %v; nothing written\n", err)
		return 1
	}
	if *out == "" {
		if _, err := stdout.Write(data); err != nil {
			fmt.Fprintf(stderr, "import-keepalived: write: %v\n", err)
			return 1
		}
		return 0
	}
	// 0600: the output may hold a VRRP password.
	if err := os.WriteFile(*out, data, 0o600); err != nil {
		fmt.Fprintf(stderr, "import-keepalived: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return 0
}
