#!/bin/sh
# PID 1 of the namespaces sandbox-test.sh makes: it gives the test's systemd
# a private /run, /tmp, /var and cgroup tree, makes the rest of the machine
# read-only, then becomes that systemd. Not for running by hand.
#
# usage: sandbox-init.sh WORKDIR OUTER_MNT_NS
#   WORKDIR holds what sandbox-test.sh prepared; OUTER_MNT_NS is the mount
#   namespace sandbox-test.sh runs in (readlink /proc/self/ns/mnt).
set -eu
work=${1:?usage: sandbox-init.sh WORKDIR OUTER_MNT_NS}
outer=${2:?usage: sandbox-init.sh WORKDIR OUTER_MNT_NS}

# Everything below changes mounts: refuse unless this is PID 1 of a new PID
# namespace, in a mount namespace that is not the caller's. Fail closed: an
# unreadable namespace counts as the caller's.
self=$(readlink /proc/self/ns/mnt) || self=""
if [ "$$" -ne 1 ] || [ -z "$self" ] || [ "$self" = "$outer" ]; then
	echo "sandbox-init.sh: not PID 1 of new PID and mount namespaces; refusing to touch mounts" >&2
	exit 1
fi

mount --make-rprivate /
mount -t proc proc /proc
# Kernel-wide settings out of reach; this network namespace's are writable.
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,rw /proc/sys/net

mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/dtest /run/systemd/system/director.service.d
cp "$work/director" "$work/director.yaml" "$work/director-sleep" /run/dtest/
cp "$work/director.service" "$work/dtest.target" /run/systemd/system/
cp "$work/test.conf" /run/systemd/system/director.service.d/
# The unit wants network-online.target, which would start this machine's
# network units.
ln -s /dev/null /run/systemd/system/network-online.target

# systemd's messages go to the console: a file here.
: > "$work/console.log"
mount --bind "$work/console.log" /dev/console

# Whatever systemd or the daemon writes lands on tmpfs; the rest of the
# machine's files are read-only in here.
for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
for d in /var/lib /var/log /var/cache; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
mount -o remount,bind,ro /
mount -o remount,bind,ro /sys

# This cgroup namespace's root is the test's own cgroup: cgroup v2 there.
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup

exec env -i container=director-sandbox-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/lib/systemd/systemd --unit=dtest.target --log-target=console --log-level=info
