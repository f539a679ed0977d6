//go:build ignore

// Command trafgen makes test traffic inside the UML guest's namespaces.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("a", "", "address")
	n := fs.Int64("n", 0, "bytes per connection")
	count := fs.Int("c", 1, "connections or datagrams")
	msg := fs.String("m", "", "datagram payload (\\n = CRLF)")
	fs.Parse(os.Args[2:])
	switch mode {
	case "serve":
		for _, a := range strings.Split(*addr, ",") {
			// no keepalives: idle connections must not move the rate
			// estimates
			lc := net.ListenConfig{KeepAlive: -1}
			ln, err := lc.Listen(context.Background(), "tcp", a)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						io.Copy(io.Discard, c)
						c.Write([]byte("ok\n"))
					}()
				}
			}()
		}
		select {}
	case "send":
		buf := make([]byte, 256*1024)
		start := time.Now()
		for i := 0; i < *count; i++ {
			c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				continue
			}
			left := *n
			for left > 0 {
				k := int64(len(buf))
				if k > left {
					k = left
				}
				if _, err := c.Write(buf[:k]); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				left -= k
			}
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		}
		fmt.Printf("sent %d x %d bytes in %v\n", *count, *n, time.Since(start))
	case "hold":
		d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1}
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.Write([]byte("hello"))
		time.Sleep(time.Hour)
	case "udp":
		c, err := net.Dial("udp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p := strings.ReplaceAll(*msg, `\n`, "\r\n")
		for i := 0; i < *count; i++ {
			c.Write([]byte(p))
		}
	}
}
