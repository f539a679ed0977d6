//go:build ignore

// Command status is `director status` on its own, for the UML guest:
// go build -o status ./ipvs/ipvsadm/testdata/capture/status.go
package main

import (
	"os"

	"github.com/director-lb/director/ipvs/ipvsadm"
)

func main() { os.Exit(ipvsadm.Main(os.Args[1:], os.Stdout, os.Stderr)) }
