// Package ipvsadm prints the kernel's IPVS table byte for byte as
// ipvsadm 1.31 (Debian 12's) does, for `director status`.
//
// Main implements the whole command line; the cmd/director wiring is
//
//	case "status":
//		return ipvsadm.Main(args[1:], stdout, stderr)
//
// Reading and printing are separate: a Source (KernelSource for the running
// kernel) yields a Snapshot, and WriteList, WriteService, WriteConns,
// WriteTimeouts and WriteDaemons print it. KernelSource reads services,
// destinations, counters, sync daemons, version and timeouts over generic
// netlink through package ipvsnl, and connections from
// /proc/net/ip_vs_conn. It needs no running daemon, only the ip_vs module.
//
// # Supported forms
//
// -L/-l/--list (the default) with -n, --stats, --rate, --exact,
// --thresholds, --persistent-conn, --tun-info, --nosort; one service with
// -t/-u/--sctp-service/-f (and -6); -c with or without --persistent-conn;
// --timeout; --daemon; -S/--save. Options may be clustered (-Lnc) and long
// options may take "=value". Options that change IPVS are refused.
//
// Names are never resolved: output is always that of ipvsadm -n, whether or
// not -n is given. (ipvsadm without -n does reverse DNS per address, which
// can stall a status command for seconds per entry.)
//
// # Faithfulness
//
// The output matches ipvsadm 1.31's, including its quirks, which the golden
// tests in testdata/golden (captured from the real binary on a UML kernel)
// pin down:
//
//   - Sorting uses ipvsadm's comparators, which subtract unsigned 32-bit
//     values into a signed int (so 200.0.0.1 sorts before 10.0.0.1 and the
//     order is not transitive), with glibc's merge sort, so the order is
//     the same even then.
//   - Fwmarks print with %d: marks above 2^31-1 come out negative.
//   - Counters of 10^8 and more scale to K, M, G, T (AppendLargeNum).
//   - Destination counters other than bytes keep only their low 32 bits:
//     ipvsadm reads a destination's 64-bit stats with its 32-bit parser.
//     (From the source; a real kernel cannot easily be driven that far.)
//   - IPv6 addresses print as glibc's inet_ntop does (::1.2.3.4 for
//     IPv4-compatible addresses).
//   - The connection table is read in pieces of at most 255 bytes, as
//     fgets with a 256-byte buffer does, and a blank piece ends the listing
//     with exit status 1.
//
// Known differences: for lines of /proc/net/ip_vs_conn with fewer than nine
// fields ipvsadm prints uninitialised memory; we print zero values. Error
// messages and exit statuses for bad command lines are ipvsadm's in spirit,
// not byte for byte (exit status 2, like ipvsadm's fail(2)).
//
// # JSON
//
// With --json the same data is printed as JSON, in listing order; numbers
// are exact (never scaled, never truncated) and 64-bit.
//
// Listing (-L, or one service with -t/-u/--sctp-service/-f):
//
//	{"version": "1.2.1", "conn_table_size": 4096, "services": [Service...]}
//
// Service:
//
//	family       "inet" | "inet6"
//	protocol     "tcp" | "udp" | "sctp" (absent for fwmark services)
//	address      "10.0.0.1" (absent for fwmark services)
//	port         80 (absent when 0)
//	fwmark       1 (absent unless a fwmark service)
//	scheduler    "wlc"
//	flags        raw IP_VS_SVC_F_* bits: 0x1 persistent, 0x2 hashed,
//	             0x4 one-packet, 0x8/0x10/0x20 scheduler flags 1/2/3
//	             (sh-fallback/sh-port, mh-fallback/mh-port)
//	timeout      persistence timeout, seconds
//	netmask      persistence granularity: "255.255.255.0" for IPv4,
//	             prefix length "64" for IPv6
//	pe           persistence engine, e.g. "sip" (absent when none)
//	stats        Stats
//	destinations [Destination...]
//
// Destination:
//
//	family, address, port
//	forward          "masq" | "local" | "tunnel" | "route" | "bypass"
//	weight, upper_threshold, lower_threshold
//	active_conns, inactive_conns, persist_conns
//	tunnel_type      "gue" | "gre" (absent for ipip, the default)
//	tunnel_port      GUE port (absent when 0)
//	tunnel_flags     0 no checksum, 1 checksum, 2 remote checksum (absent when 0)
//	stats            Stats
//
// Stats: conns, in_pkts, out_pkts, in_bytes, out_bytes (totals) and cps,
// in_pps, out_pps, in_bps, out_bps (the kernel's rate estimates).
//
// --timeout: {"timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300}}
//
// --daemon: {"daemons": [{"state": "master"|"backup", "interface": "eth0",
// "sync_id": 7, "max_len": 1472, "group": "224.0.0.81", "port": 8848,
// "ttl": 1}]}
//
// -c: {"connections": [{"protocol": "TCP", "client": "10.9.0.2:40000",
// "virtual": "10.7.0.1:80", "destination": "10.8.0.2:8080",
// "state": "ESTABLISHED", "expires": 899, "pe_name": "sip",
// "pe_data": "..."}]} (IPv6 endpoints as "[fd00::1]:80")
//
// --snapshot prints the raw Snapshot (all of the above, services in kernel
// order; with -c also the raw connection table text). It is what the golden
// tests replay, and useful in bug reports.
package ipvsadm
