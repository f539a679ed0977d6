#!/bin/sh
# Runs the built daemon as systemd runs it: the real director.service, its
# sandbox applied by a real systemd, in namespaces this script makes. It
# proves that everything the sandbox allows is enough: a VRRP instance on a
# veth becomes MASTER with a VMAC (macvlan plus /proc/sys/net writes), adds
# its VIP, tracks a script run as another user and a process of another user,
# runs its notify hook, pings the watchdog, reloads and stops cleanly.
#
# This machine's PID 1 need not be systemd: the script boots its own systemd
# as PID 1 of new PID, mount, network, UTS, IPC and cgroup namespaces
# (sandbox-init.sh: private /run, /tmp and /var state, the machine's files
# and kernel-wide sysctls read-only, a cgroup v2 tree of its own), so nothing
# it does reaches this machine. systemd-run --wait needs D-Bus, which that
# systemd lacks, so the unit file itself is installed and started with
# systemctl over systemd's private socket. Needs root, util-linux (unshare,
# nsenter, setpriv) and iproute2.
#
# usage: sandbox-test.sh path/to/director
set -eu

bin=$(readlink -f "${1:?usage: sandbox-test.sh path/to/director}")
here=$(cd "$(dirname "$0")" && pwd)
for tool in unshare nsenter setpriv ip /lib/systemd/systemd systemctl; do
	command -v "$tool" >/dev/null || { echo "sandbox-test: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/director-sandbox.XXXXXX)
cg=""
ns_pid=""
unshare_pid=""
sleeper_pid=""

fail() {
	echo "sandbox-test: FAIL: $*" >&2
	if [ -s "$work/console.log" ]; then
		echo "--- systemd's messages (last 20 lines)" >&2
		tail -n 20 "$work/console.log" >&2
	fi
	if [ -n "$ns_pid" ]; then
		echo "--- director's log (last 40 lines)" >&2
		in_ns tail -n 40 /run/dtest/director.log >&2 || true
		in_ns systemctl status --no-pager director >&2 || true
	fi
	exit 1
}

cleanup() {
	# SIGKILL to the namespace's PID 1 ends every process in it; the
	# background jobs are reaped quietly (the shell reports them "Killed").
	{
		[ -z "$ns_pid" ] || kill -KILL "$ns_pid" || true
		for pid in $unshare_pid $sleeper_pid; do wait "$pid" || true; done
	} 2>/dev/null
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		# Children first; each is empty once the namespace is gone.
		deadline=$(($(date +%s) + 10))
		while ! find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; do
			[ "$(date +%s)" -lt "$deadline" ] || { echo "sandbox-test: cannot remove $cg" >&2; break; }
			sleep 0.1
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

# in_ns runs a command in the test's mount, network and PID namespaces,
# where the test's systemd and director are.
in_ns() { nsenter -t "$ns_pid" -m -n -p -- "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
	what=$1 secs=$2
	shift 2
	deadline=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${secs}s"
		sleep 0.1
	done
}

# The daemon's files, copied into the namespace's /run (ProtectHome and
# PrivateTmp would hide a binary under /home or /tmp).
cp "$bin" "$work/director"
cp "$(command -v sleep)" "$work/director-sleep" # its name is the process's
cat > "$work/director.yaml" <<'EOF'
log_level: debug
scripts:
  - name: as_nobody
    # runs as nobody, and sees root's processes (no ProtectProc=)
    shell: 'test "$(id -u)" = 65534 && test -e /proc/1/comm'
    interval: 1s
    timeout: 10s  # a loaded machine may take long to start a shell
    user: nobody
track_processes:
  - name: sleeper
    process: director-sleep
instances:
  - name: web
    interface: veth0
    vrid: 51
    priority: 150
    advert_interval: 100ms
    vips: [10.99.0.100/24]
    vmac: true
    notify_master: [/bin/sh, -c, 'echo master > /run/director/notified']
    track:
      - script: as_nobody
      - process: sleeper
EOF
# The unit under test, with only the paths changed. A drop-in changes what
# is not the sandbox: output to a file (this systemd has no journal), and no
# default dependencies, so that starting director pulls in none of this
# machine's boot units (sysinit.target: systemd-sysctl, tmpfiles, utmp).
sed -e "s|/usr/local/sbin/director|/run/dtest/director|g" \
	-e "s|/etc/director/director.yaml|/run/dtest/director.yaml|g" \
	"$here/director.service" > "$work/director.service"
printf '%s\n' '[Unit]' 'DefaultDependencies=no' '[Service]' \
	'StandardOutput=append:/run/dtest/director.log' 'StandardError=inherit' > "$work/test.conf"
printf '%s\n' '[Unit]' 'Description=director sandbox test' 'DefaultDependencies=no' > "$work/dtest.target"

cg=/sys/fs/cgroup/unified/director-sandbox-$$
[ -d /sys/fs/cgroup/unified ] || cg=/sys/fs/cgroup/director-sandbox-$$
mkdir "$cg"
# The child moves itself into the test's cgroup before it unshares, so that
# the new cgroup namespace is rooted there.
outer_mnt=$(readlink /proc/self/ns/mnt)
sh -c 'echo $$ > "$1/cgroup.procs" && exec unshare --pid --fork --mount --propagation private --net --uts --ipc --cgroup sh "$2" "$3" "$4"' \
	sh "$cg" "$here/sandbox-init.sh" "$work" "$outer_mnt" </dev/null >"$work/init.out" 2>&1 &
unshare_pid=$!

find_pid1() {
	ns_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | tr -d ' ')
	[ -n "$ns_pid" ] && [ "$(cat "/proc/$ns_pid/comm" 2>/dev/null)" = systemd ]
}
deadline=$(($(date +%s) + 20))
until find_pid1; do
	kill -0 "$unshare_pid" 2>/dev/null || { cat "$work/init.out" >&2; ns_pid=""; fail "the namespace's init exited"; }
	[ "$(date +%s)" -lt "$deadline" ] || { ns_pid=""; fail "systemd did not start"; }
	sleep 0.1
done
system_up() { state=$(in_ns systemctl is-system-running 2>/dev/null) || true; [ "$state" = running ] || [ "$state" = degraded ]; }
wait_for "systemd in the namespace up" 30 system_up

# The network: veth0 (the instance's) and veth1, both up.
in_ns ip link set lo up
in_ns ip link add veth0 type veth peer name veth1
in_ns ip addr add 10.99.0.1/24 dev veth0
in_ns ip addr add 10.99.0.2/24 dev veth1
in_ns ip link set veth0 up
in_ns ip link set veth1 up
# A process of another user, for track_processes.
# (Its shell reports it "Killed" at the end: quiet.)
{ in_ns setpriv --reuid=65534 --regid=65534 --clear-groups /run/dtest/director-sleep 600; } 2>/dev/null &
sleeper_pid=$!
wait_for "the tracked process running" 10 in_ns pgrep -x director-sleep

in_ns systemctl start director || fail "systemctl start director"
main=$(in_ns systemctl show -P MainPID director)
[ "$main" -gt 0 ] || fail "no main PID"

# The sandbox is really applied (systemd in a container could skip some).
status=$(in_ns cat "/proc/$main/status")
echo "$status" | grep -qx 'NoNewPrivs:[[:space:]]*1' || fail "NoNewPrivs is not set"
echo "$status" | grep -qx 'Seccomp:[[:space:]]*2' || fail "no seccomp filter"
echo "$status" | grep -qx 'CapBnd:[[:space:]]*00000000000030c0' || fail "bounding set is not NET_ADMIN NET_RAW SETUID SETGID: $(echo "$status" | grep CapBnd)"
# Writable in the test's namespace, read-only in the service's
# (ProtectSystem=strict, ReadOnlyPaths=/run); the state directories not.
for dir in /run/dtest /var/cache; do
	in_ns touch "$dir/probe" || fail "cannot write $dir"
	in_ns nsenter -t "$main" -m sh -c ": > $dir/probe" 2>/dev/null && fail "$dir is writable in the sandbox"
done
for dir in /run/director /var/lib/director; do
	in_ns nsenter -t "$main" -m sh -c ": > $dir/probe && rm $dir/probe" || fail "$dir is not writable in the sandbox"
done

state_master() { in_ns /run/dtest/director state | grep -Eq '^web[[:space:]].*MASTER'; }
wait_for "instance web MASTER" 20 state_master
# The instances run in the daemon's VRRP process, under the same sandbox.
vrrp_child() {
	in_ns sh -c "for c in \$(cat /proc/$main/task/*/children); do [ \"\$(cat /proc/\$c/comm)\" = director-vrrp ] && exit 0; done; exit 1"
}
wait_for "the VRRP process (director-vrrp) under the daemon" 10 vrrp_child
vip_on_vmac() { in_ns ip -o addr show dev vrrp.51 | grep -q ' 10.99.0.100/24 '; }
wait_for "VIP 10.99.0.100 on vrrp.51" 10 vip_on_vmac
[ "$(in_ns cat /proc/sys/net/ipv4/conf/vrrp.51/arp_ignore)" = 1 ] || fail "VMAC sysctl arp_ignore not written"
notified() { [ "$(in_ns cat /run/director/notified)" = master ]; }
wait_for "notify_master hook ran" 10 notified

# The watchdog: systemd records each WATCHDOG=1.
wd0=$(in_ns systemctl show -P WatchdogTimestampMonotonic director)
wd_moved() { [ "$(in_ns systemctl show -P WatchdogTimestampMonotonic director)" != "$wd0" ]; }
wait_for "a watchdog ping" 15 wd_moved

in_ns systemctl reload director || fail "systemctl reload director"
in_ns systemctl stop director || fail "systemctl stop director"
result=$(in_ns systemctl show -P Result director)
[ "$result" = success ] || fail "director stopped with result $result"
in_ns ip -o addr show | grep -q ' 10.99.0.100/' && fail "VIP left behind after stop"
in_ns pgrep -x director-vrrp >/dev/null && fail "the VRRP process outlived the daemon's stop"
echo "systemd/director.service: the daemon ran under its sandbox (MASTER in its VRRP process, VIP on a VMAC, hook, tracks, watchdog, reload, stop)"
