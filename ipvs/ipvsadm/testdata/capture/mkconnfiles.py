#!/usr/bin/env python3
"""Writes the synthetic /proc/net/ip_vs_conn tables of the conns-* golden
cases into the directory given as argument (default: .)."""
import ipaddress
import os
import sys

H = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"


def v6(s):
    return ipaddress.IPv6Address(s).exploded


def line(proto, c, cp, v, vp, d, dp, state, exp, pe=""):
    # the kernel's ip_vs_conn_seq_show format
    return "%-3s %s %04X %s %04X %s %04X %-11s %7u%s\n" % (proto, c, cp, v, vp, d, dp, state, exp, pe)


L = [
    line("TCP", "0A090002", 0x8B6C, "0A070001", 80, "0A080002", 8080, "ESTABLISHED", 899),
    line("TCP", "C0A80001", 65535, "FFFFFFFF", 0, "00000000", 1, "SYN_RECV", 0),
    line("UDP", "0A090002", 0, "0A070001", 5060, "0A080002", 5060, "NONE", 59, " sip a84b4c76e66710@pc33.example.com"),
    line("UDP", "0A090002", 1234, "0A070001", 5060, "0A080002", 5060, "UDP", 60, " sip x"),
    line("TCP", v6("fd00:9::2"), 0x83A4, v6("fd00:7::1"), 80, v6("2001:db8:1::5"), 8080, "SYN_RECV", 3599),
    line("TCP", v6("2001:db8:7:0:1234:5678:9abc:def0"), 65535, v6("2001:db8:7:0:1234:5678:9abc:def1"), 65535,
         v6("2001:db8:1:2:3:4:5:6"), 65535, "TIME_WAIT", 3600),
    line("TCP", "0A090002", 40000, "0A070003", 80, v6("2001:db8:1::61"), 80, "ESTABLISHED", 99999),
    line("TCP", v6("::ffff:10.9.0.2"), 1, v6("::1.2.3.4"), 2, "0A080002", 3, "CLOSE_WAIT", 7),
    line("SCTP", "0A090002", 3868, "0A070001", 3868, "0A010005", 3868, "COOKIE_ECHOED", 12),
    # ipvsadm's state buffer holds 15 characters: keep states that short
    line("SCTP", "0A090002", 3869, "0A070001", 3868, "0A010005", 3868, "SHUTDOWN_SENT", 4294967295),
    "TCP 10.9.0.2 0050 10.7.0.1 0x50 0a080002 1f90 FIN_WAIT 120\n",
    "TCP   0A090002   0051   0A070001   0050   0A080002   1F90   LAST_ACK   -5\n",
    "UDP 0A090002 0052 0A070001 0035 0A080002 1F90 UDP 30 sip\n",
    "UDP 0A090002 0053 0A070001 0035 0A080002 1F90 UDP 30 sip callid extra fields here\n",
    "IP_99 0A090002 0053 0A070001 0035 0A080002 1F90 NONE 30\n",
    "TCP 123456789 0054 FFFFFFFFF 0035 -1 1F90 NONE 30\n",
    "TCP\t0A090002\t0055\t0A070001\t0050\t0A080002\t1F90\tESTABLISHED\t61\r\n",
]

# A line longer than 255 bytes: fgets hands ipvsadm its first 255 bytes,
# then the rest as a line of its own; both halves are complete entries.
first = line("UDP", "0A090002", 0x1111, "0A070001", 5060, "0A080002", 5060, "NONE", 30, " sip ").rstrip("\n")
rest = line("UDP", "0A090003", 0x2222, "0A070001", 5060, "0A080002", 5060, "NONE", 31, " sip tail@x")
pad = 255 - len(first)
files = {
    "mixed": H + "".join(L),
    "longline": H + L[0] + first + "C" * pad + rest + L[4],
    # exactly 255 bytes before the newline: the newline alone is the next
    # piece, on which ipvsadm's sscanf returns EOF and ipvsadm exits 1
    "blank": H + L[0] + first + "D" * pad + "\n" + L[4],
    "midblank": H + L[0] + "\n" + L[4],
    "headeronly": H,
    "empty": "",
    "noeol": H + L[0] + L[4].rstrip("\n"),
}
out = sys.argv[1] if len(sys.argv) > 1 else "."
for name, text in files.items():
    with open(os.path.join(out, name + ".txt"), "w") as f:
        f.write(text)
