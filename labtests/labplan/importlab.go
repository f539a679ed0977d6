package labplan

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/director-lb/director/labtests/uml"
)

// The import proof (TestKeepalivedImport) runs a keepalived.conf written
// here, under keepalived and, converted by director import-keepalived,
// under director. Its LVS part is the same on both nodes:
//
//   - virtual_server_group web: VIP:80 and VIP:ImportAltPort, rr, DR,
//     HTTP_GET of / on each real server's port 80, inhibit_on_failure
//     (a failed server stays at weight 0);
//   - VIP:EchoPort (TCP): TCP_CHECK and MISC_CHECK (ImportMiscScript, true
//     while the real server's MiscOKFile exists), no inhibit_on_failure
//     (a failed server is removed);
//   - VIP:DNSPort (UDP): UDP_CHECK (a DNS query whose reply must carry its
//     id) and PING_CHECK, inhibit_on_failure.
//
// Every checker runs every second (delay_loop 1; the echo service's every
// importMiscEvery seconds) with a one-second timeout and no retry, so
// that a failure shows within a few seconds.
const (
	// ImportAltPort is the web group's second port on the VIP. Nothing
	// listens on it: with direct routing a request keeps its port, so the
	// member is there for the table, not for the client.
	ImportAltPort = 8080
	// ImportGroup names the virtual_server_group (and director's service).
	ImportGroup = "web"
	// ImportMiscScript is the MISC_CHECK script in the run directory.
	ImportMiscScript = "misc-check.sh"
	// importMiscEvery is the echo service's delay_loop and misc_timeout,
	// in seconds: starting a shell takes UML a second now and then on a
	// loaded host (both daemons' one-second MISC_CHECKs timed out).
	importMiscEvery = 3
	// importDNSID is the id of the UDP_CHECK's query, which the reply
	// must echo.
	importDNSID = 0x1234
)

// MiscOKFile is the run directory's file whose presence the MISC_CHECK of
// real server rs reports as healthy.
func MiscOKFile(rs string) string { return "misc-ok-" + rs }

// ImportFiles are the run directory's files the keepalived.conf relies
// on: the MISC_CHECK script and each real server's health file, present.
func ImportFiles() map[string]string {
	files := map[string]string{
		ImportMiscScript: "#!/bin/sh\n# MISC_CHECK of the import proof: real server $1 is up while its file exists.\n" +
			"exec test -e " + uml.GuestOut + "/misc-ok-\"$1\"\n",
	}
	for _, rs := range []string{RS1, RS2} {
		files[MiscOKFile(rs)] = "up\n"
	}
	return files
}

// ImportDNSQueryHex is the UDP_CHECK payload: a DNS query for DNSName,
// type A, with id importDNSID, in hex. The lab's DNS servers answer it.
func ImportDNSQueryHex() string {
	q := []byte{importDNSID >> 8, importDNSID & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split(DNSName, ".") {
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	q = append(q, 0, 0, 1, 0, 1) // root, type A, class IN
	return hex.EncodeToString(q)
}

// ImportKeepalivedConf renders node's keepalived.conf for the import
// proof: the lab's VRRP instance (lb1 at priority 150, lb2 at 100, VRRPv3
// every advert) and the LVS part described above.
func ImportKeepalivedConf(node string, advert time.Duration) (string, error) {
	if _, _, err := lbAddrs(node); err != nil {
		return "", err
	}
	p := DefaultParams(Keepalived)
	p.Advert = Duration(advert)
	if err := p.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "! keepalived.conf of %s for the lab's import proof.\n", node)
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version 3\n    script_user root\n}\n\n", node)
	fmt.Fprintf(&b, "vrrp_instance %s {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n", InstanceName, VRID)
	fmt.Fprintf(&b, "    priority %d\n    advert_int %s\n", p.Priority[node], strconv.FormatFloat(p.Advert.D().Seconds(), 'f', -1, 64))
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s dev eth0\n    }\n}\n", VIP4)

	vip := VIP4.Addr()
	fmt.Fprintf(&b, "\nvirtual_server_group %s {\n    %s %d\n    %s %d\n}\n", ImportGroup, vip, HTTPPort, vip, ImportAltPort)

	vs := func(head, proto string, every int, inhibit bool, rsPort int, checkers func(rs string) string) {
		fmt.Fprintf(&b, "\nvirtual_server %s {\n    delay_loop %d\n    lb_algo rr\n    lb_kind DR\n    protocol %s\n", head, every, proto)
		if inhibit {
			b.WriteString("    inhibit_on_failure\n")
		}
		for _, rs := range []string{RS1, RS2} {
			h, _ := HostByName(rs)
			fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n%s    }\n", h.IPv4.Addr(), rsPort, checkers(rs))
		}
		b.WriteString("}\n")
	}
	timers := "            connect_timeout 1\n            retry 0\n"
	vs("group "+ImportGroup, "TCP", 1, true, HTTPPort, func(string) string {
		return "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n" + timers + "        }\n"
	})
	vs(fmt.Sprintf("%s %d", vip, EchoPort), "TCP", importMiscEvery, false, EchoPort, func(rs string) string {
		return "        TCP_CHECK {\n" + timers + "        }\n" +
			fmt.Sprintf("        MISC_CHECK {\n            misc_path \"/bin/sh %s/%s %s\"\n            misc_timeout %d\n        }\n", uml.GuestOut, ImportMiscScript, rs, importMiscEvery)
	})
	vs(fmt.Sprintf("%s %d", vip, DNSPort), "UDP", 1, true, DNSPort, func(string) string {
		return fmt.Sprintf("        UDP_CHECK {\n            payload %s\n            require_reply %04x\n", ImportDNSQueryHex(), importDNSID) + timers + "        }\n" +
			"        PING_CHECK {\n" + timers + "        }\n"
	})
	return b.String(), nil
}

// ImportRuntime is what the lab adds to an imported director.yaml for
// node, as keepalived gets its pid files on its command line: the guest's
// namespaces share one /run, so each node needs its own control socket
// and IPVS state file. Debug logging shows each check's result.
func ImportRuntime(node string) string {
	return fmt.Sprintf("\n# Added by the lab: each node's own paths in the guest's shared /run.\n"+
		"log_level: debug\ncontrol_socket: /run/%s/director.sock\nipvs:\n  state_file: %s\n", node, StateFile(node))
}
