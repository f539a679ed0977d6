#!/bin/sh
# run.sh WORKDIR: boots a UML guest (the lab's kernel, chosen for this host
# by cmd/labboot) that runs guest.sh and leaves the golden cases in
# WORKDIR/cases. Needs: iproute2, util-linux (unshare), python3, Go, root;
# labboot installs the guest kernel. Takes 3 to 5 minutes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
W=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$here/../../../.." && pwd)
mkdir -p "$W/bin" "$W/connfiles"
python3 "$here/mkconnfiles.py" "$W/connfiles"
(cd "$repo" && CGO_ENABLED=0 go build -o "$W/bin/status" "$here/status.go")
(cd "$repo" && CGO_ENABLED=0 go build -o "$W/bin/trafgen" "$here/trafgen.go")
# The guest sees WORKDIR at /mnt/out, wherever it is on the host.
cp "$here/guest.sh" "$W/guest.sh"
rm -rf "$W/cases"
(cd "$repo" && go run ./cmd/labboot -out "$W" -limit 15m \
	-modules ip_vs,ip_vs_rr,ip_vs_wrr,ip_vs_wlc,ip_vs_lc,ip_vs_sh,ip_vs_mh,ip_vs_dh,ip_vs_sed,ip_vs_nq,ip_vs_lblc,ip_vs_lblcr,ip_vs_fo,ip_vs_ovf,ip_vs_pe_sip,veth,dummy,ipv6 \
	-env "B=$W/bin,CONNFILES=$W/connfiles,OUT=$W/cases" \
	-script "$W/guest.sh") > "$W/console.log" 2>&1
grep -E 'capture|conncase|settled|LIVE|FAILED|live comparison' "$W/console.log"
find "$W/cases" -name '*.our*' -delete
echo "cases in $W/cases; copy them to ipvs/ipvsadm/testdata/golden"
