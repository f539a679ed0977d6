package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/director-lb/director/internal/pairtls"
)

// cmdPairCert makes the pair API's certificates: a small CA and a
// certificate and key per node, every file mode 0600.
func cmdPairCert(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("pair-cert", "pair-cert [-dir DIR] [-days N] NODE=ADDRESS[,ADDRESS...] ...\n\n"+
		"Pair-cert makes the certificates the pair API's mutual TLS needs: a CA (ca.crt, ca.key) and, for each\n"+
		"NODE, NODE.crt and NODE.key, valid for the addresses (or names) its api.listen is reached at. An\n"+
		"existing ca.crt and ca.key in DIR are reused, so a node can be added later; existing node files are\n"+
		"never overwritten. Copy ca.crt and each node's own .crt and .key to it; keep ca.key off the nodes.\n\n"+
		"Example: director pair-cert -dir /etc/director/pair lb1=10.0.0.11 lb2=10.0.0.12", stderr)
	dir := fs.String("dir", "/etc/director/pair", "where the files go (created, mode 0700)")
	days := fs.Int("days", 3650, "how long the certificates are valid, in days")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *days < 1 {
		fs.Usage()
		return 2
	}
	var nodes []pairtls.Node
	for _, a := range fs.Args() {
		name, hosts, ok := strings.Cut(a, "=")
		if !ok || name == "" || hosts == "" {
			fmt.Fprintf(stderr, "director pair-cert: %q: want NODE=ADDRESS[,ADDRESS...]\n", a)
			return 2
		}
		nodes = append(nodes, pairtls.Node{Name: name, Hosts: strings.Split(hosts, ",")})
	}
	pf, err := pairtls.WriteDir(*dir, nodes, time.Now(), time.Duration(*days)*24*time.Hour)
	if err != nil {
		fmt.Fprintf(stderr, "director pair-cert: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "CA: %s, %s (keep ca.key off the nodes)\n", filepath.Join(*dir, "ca.crt"), filepath.Join(*dir, "ca.key"))
	for i, n := range pf.Nodes {
		fmt.Fprintf(stdout, "%s: %s, %s for %s; SHA-256 %s\n", n.Name, filepath.Join(*dir, n.Name+".crt"), filepath.Join(*dir, n.Name+".key"),
			strings.Join(nodes[i].Hosts, ","), n.Fingerprint)
	}
	fmt.Fprintf(stdout, "On each node, with its own files:\n  api:\n    tls:\n      cert_file: %s\n      key_file: %s\n      ca_file: %s\n"+
		"      peer_sha256: <the other node's SHA-256 above> # optional: only that certificate is taken\n",
		filepath.Join(*dir, "NODE.crt"), filepath.Join(*dir, "NODE.key"), filepath.Join(*dir, "ca.crt"))
	return 0
}
