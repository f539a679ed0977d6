#!/bin/sh
# run.sh WORKDIR: boots a UML guest (Debian's user-mode-linux 6.1 kernel,
# the host's / as a read-only root) that runs guest.sh and leaves the golden
# cases in WORKDIR/out/cases. WORKDIR must not be under /tmp: the guest
# mounts a tmpfs there. Needs: user-mode-linux, kmod, ipvsadm, iproute2,
# util-linux (unshare), Go. Takes 3 to 5 minutes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
W=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$here/../../../.." && pwd)
mkdir -p "$W/bin" "$W/modroot/lib" "$W/connfiles" "$W/out"
ln -sfn /usr/lib/uml/modules "$W/modroot/lib/modules"
python3 "$here/mkconnfiles.py" "$W/connfiles"
(cd "$repo" && CGO_ENABLED=0 go build -o "$W/bin/status" "$here/status.go")
(cd "$repo" && CGO_ENABLED=0 go build -o "$W/bin/trafgen" "$here/trafgen.go")
cat > "$W/init.sh" <<INIT
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
mount -t tmpfs tmpfs /mnt
mkdir -p /mnt/out /run/netns
# load modules on demand from the UML module tree
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d $W/modroot "\$@"\n' > /run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
if mount -t hostfs -o $W/out none /mnt/out; then
	B=$W/bin M=$W/modroot CONNFILES=$W/connfiles OUT=/mnt/out/cases sh $here/guest.sh > /mnt/out/guest.log 2>&1
	echo "guest.sh exit \$?"
	sync
fi
poweroff -f
INIT
chmod 755 "$W/init.sh"
rm -rf "$W/out/cases"
timeout 900 linux.uml mem=1024M root=/dev/root rootfstype=hostfs rootflags=/ ro \
	init="$W/init.sh" con=null con0=null,fd:2 umid="ipvsadm-golden-$$" uml_dir="$W/uml" quiet \
	> "$W/console.log" 2>&1
grep -E 'capture|conncase|settled|LIVE|FAILED|live comparison' "$W/out/guest.log"
find "$W/out/cases" -name '*.our*' -delete
echo "cases in $W/out/cases; copy them to ipvs/ipvsadm/testdata/golden"
