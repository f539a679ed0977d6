#!/bin/sh
# Verifies the unit with systemd-analyze, pointing it at a built binary
# rather than installing anything on this machine. Any complaint fails:
# systemd-analyze exits 0 on some warnings ("ignoring"). Then checks that
# the sandbox stays tight: systemd-analyze security must score the unit at
# most max_exposure (README: "The systemd unit").
set -eu
max_exposure=3.0
bin=$(readlink -f "${1:?usage: verify.sh path/to/director}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/sbin/director|$bin|g" "$(dirname "$0")/director.service" > "$dir/director.service"
out=$(systemd-analyze verify "$dir/director.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
	echo "$out"
	exit 1
fi
echo "systemd/director.service: verified"

# The last line reads "→ Overall exposure level for director.service: 2.6 OK 🙂".
out=$(systemd-analyze security --offline=yes --no-pager "$dir/director.service" 2>&1) || { echo "$out"; exit 1; }
score=$(echo "$out" | sed -n 's/.*Overall exposure level for director\.service: \([0-9][0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
	echo "$out"
	echo "systemd/director.service: no exposure score in systemd-analyze security's output"
	exit 1
fi
if ! awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
	echo "$out" | grep '✗'
	echo "systemd/director.service: exposure $score is above $max_exposure: tighten the sandbox, or say in README why not"
	exit 1
fi
echo "systemd/director.service: exposure $score (at most $max_exposure)"
